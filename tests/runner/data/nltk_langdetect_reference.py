"""Reference outputs for tests/runner/nltk_langdetect_test.cc (differential tests of evalrun's
C++ ports of NLTK's Punkt / word_tokenize and of langdetect).

Usage: python3 nltk_langdetect_reference.py CORPUS.json PUNKT_TAB_DIR [N_GENERATED] > out.json
(prints {"langdetect_dir": <the package directory>, "rows": [one object per string]}; with
N_GENERATED, the strings are instead that many random concatenations of tricky fragments and
random characters from the Unicode blocks langdetect treats specially, from a fixed seed, and each
row carries its "text")

For each string of the corpus, prints the Punkt sentences (once with empty parameters, once with
the parameters in PUNKT_TAB_DIR, NLTK's punkt_tab layout), NLTKWordTokenizer tokens of the whole
string, nltk.word_tokenize's composition (Punkt sentences with the PUNKT_TAB_DIR parameters, then
NLTKWordTokenizer on each; word_tokenize itself needs NLTK's English model, which Debian does not
ship) and langdetect's detect_langs with DetectorFactory.seed = 0 (or the exception message).
"""
import json
import os
import random
import sys
from collections import defaultdict

import langdetect
from langdetect import DetectorFactory, detect_langs
from langdetect.lang_detect_exception import LangDetectException
from nltk.tokenize.destructive import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\r\n") for line in f if line.rstrip("\r\n")]


def load_params(d):
    p = PunktParameters()
    p.abbrev_types = set(read_lines(os.path.join(d, "abbrev_types.txt")))
    p.sent_starters = set(read_lines(os.path.join(d, "sent_starters.txt")))
    p.collocations = set(tuple(line.split("\t")) for line in read_lines(os.path.join(d, "collocations.tab")))
    p.ortho_context = defaultdict(int)
    for line in read_lines(os.path.join(d, "ortho_context.tab")):
        typ, flags = line.split("\t")
        p.ortho_context[typ] = int(flags)
    return p


FRAGMENTS = [
    "Dr.", "Smith", "e.g.", "U.S.", "3.14", "1,000", "$5", "50%", '"', "'", "\u201c", "\u201d",
    "\u2018", "\u2019", "(", ")", "[", "]", "{", "}", "...", "..", ".", "!", "?", "?!", ",", ";",
    ":", "--", "-", "can't", "won't", "I'm", "they'll", "you're", "'tis", "gonna", "cannot",
    "http://x.com/a.b", "a@b.org", "\n", "\n\n", " ", "  ", "\t", "Hello", "THE", "i", "I",
    "Mr.", "etc.", "J.", "The", "the", "Then", "then", "He", "he", "Fifth", "1.", "A.", "b.",
    "\u00c7a", "\u00e9cole", "Stra\u00dfe", "\u041f\u0440\u0438\u0432\u0435\u0442",
    "\u65e5\u672c\u8a9e", "\u3002", "\ud55c\uad6d\uc5b4", "\u0645\u0631\u062d\u0628\u0627",
    "\u0928\u092e\u0938\u094d\u0924\u0947", "\u00ab", "\u00bb", "*", "**", "#", "@", "&",
    "<", ">", "''", "``", "`", "analysts", "approx.", "vs.", "p.m.", "\u01c5", "\u216b",
    "\u00bd", "\u0663", "_", "a\u0300", "e\u0301", "\u0219", "\u021b", "\u06cc", "\u2014",
    "\u2026", "HELLO", "\u00dcBER",
]
BLOCKS = [(0x20, 0x7E), (0xA0, 0xFF), (0x100, 0x24F), (0x300, 0x36F), (0x370, 0x3FF),
          (0x400, 0x4FF), (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1E00, 0x1EFF),
          (0x2000, 0x206F), (0x3040, 0x30FF), (0x3100, 0x312F), (0x4E00, 0x9FFF), (0xAC00, 0xD7AF)]


def generated(n):
    rng = random.Random(20261206)
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 30)):
            if rng.random() < 0.75:
                parts.append(rng.choice(FRAGMENTS))
            else:
                lo, hi = rng.choice(BLOCKS)
                parts.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 5))))
            parts.append(rng.choice([" ", " ", " ", "", "  ", "\n", "\t"]))
        out.append("".join(parts))
    return out


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        corpus = json.load(f)
    if len(sys.argv) > 3:
        corpus = generated(int(sys.argv[3]))
    empty = PunktSentenceTokenizer()
    trained = PunktSentenceTokenizer(load_params(sys.argv[2]))
    treebank = NLTKWordTokenizer()
    DetectorFactory.seed = 0
    out = []
    for text in corpus:
        row = {
            "text": text,
            "sentences_empty": empty.tokenize(text),
            "sentences": trained.tokenize(text),
            "treebank": treebank.tokenize(text),
            "word_tokenize": [t for s in trained.tokenize(text) for t in treebank.tokenize(s)],
        }
        try:
            row["langs"] = [[l.lang, l.prob] for l in detect_langs(text)]
        except LangDetectException as e:
            row["lang_error"] = str(e)
        out.append(row)
    json.dump({"langdetect_dir": os.path.dirname(langdetect.__file__), "rows": out}, sys.stdout,
              ensure_ascii=False)


if __name__ == "__main__":
    main()

"""Reference outputs for tests/runner/nltk_langdetect_test.cc (differential tests of evalrun's
C++ ports of NLTK's Punkt / word_tokenize and of langdetect).

Usage: python3 nltk_langdetect_reference.py CORPUS.json PUNKT_TAB_DIR > out.json
(prints {"langdetect_dir": <the package directory>, "rows": [one object per string]})

For each string of the corpus, prints the Punkt sentences (once with empty parameters, once with
the parameters in PUNKT_TAB_DIR, NLTK's punkt_tab layout), NLTKWordTokenizer tokens of the whole
string, nltk.word_tokenize's composition (Punkt sentences with the PUNKT_TAB_DIR parameters, then
NLTKWordTokenizer on each; word_tokenize itself needs NLTK's English model, which Debian does not
ship) and langdetect's detect_langs with DetectorFactory.seed = 0 (or the exception message).
"""
import json
import os
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


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        corpus = json.load(f)
    empty = PunktSentenceTokenizer()
    trained = PunktSentenceTokenizer(load_params(sys.argv[2]))
    treebank = NLTKWordTokenizer()
    DetectorFactory.seed = 0
    out = []
    for text in corpus:
        row = {
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

#!/usr/bin/python3
"""Golden composed configs for tests/core/config, computed by OmegaConf itself.

Hydra is not packaged in Debian, so this script emulates the part of Hydra's composition the
reference launcher uses (a primary config with a `defaults:` list of `group: option` entries and
`_self_`, groups looked up on a search path, the primary folder first, each group config merged
under its group key, `_self_` appended at the end when absent as Hydra >= 1.1 does, struct mode
for command-line overrides) and leaves merging, interpolation, oc.env and oc.select to OmegaConf
(Debian's python3-omegaconf 2.2, at /usr/bin/python3).

Outputs, under tests/fixtures/peer-examples/golden/ (committed; CI does not run Python):
  <example>.json          every example config composed as the reference does
  scenario-<name>.json    an example plus command-line overrides
  cases.json              single-file configs exercising interpolation and YAML typing

Each composed config is OmegaConf.to_container(resolve=True, throw_on_missing=False) with a fixed
environment (ENV below); `???` stays as the string "???". Floats that JSON cannot hold are written
as {"$float": "inf"}.

Usage: /usr/bin/python3 tests/tools/compose_oracle.py
"""

import json
import math
import os
import sys

import yaml
from omegaconf import OmegaConf, open_dict
from omegaconf._utils import get_yaml_loader

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.normpath(os.path.join(HERE, "..", "fixtures", "peer-examples"))
REFERENCE_CONFIGS = os.path.join(FIXTURES, "configs")
GOLDEN = os.path.join(FIXTURES, "golden")

ENV = {
    "USER": "evald-test",
    "HOME": "/home/evald-test",
    "AWS_ACCESS_KEY_ID": "test-aws-access-key-id",
    "NV_CSS_S3_TOKEN": "test-s3-token",
    "EVALD_TEST_VALUE": "from-env",
}

SCENARIOS = {
    "set-output-dir": ("local_llama_3_1_8b_instruct.yaml", ["execution.output_dir=/tmp/evald-out"]),
    "add-mode": ("local_llama_3_1_8b_instruct.yaml", ["+execution.mode=sequential"]),
    "force-add-port": ("local_llama_3_1_8b_instruct.yaml", ["++deployment.port=9000"]),
    "force-set-existing": ("local_llama_3_1_8b_instruct.yaml",
                           ["++target.api_endpoint.model_id=other/model"]),
    "delete-overrides": ("local_llama_3_1_8b_instruct.yaml", ["~evaluation.overrides"]),
    "delete-with-value": ("local_limit_samples.yaml",
                          ["~target.api_endpoint.api_key_name=API_KEY"]),
    "list-index": ("local_llama_3_1_8b_instruct.yaml", ["evaluation.tasks.0.name=mmlu_pro"]),
    "switch-to-slurm": ("local_llama_3_1_8b_instruct.yaml",
                        ["execution=slurm/default", "execution.account=acct",
                         "execution.hostname=login-node"]),
    "switch-to-vllm": ("local_llama_3_1_8b_instruct.yaml",
                       ["deployment=vllm", "deployment.checkpoint_path=/ckpt",
                        "deployment.served_model_name=served", "deployment.port=8123"]),
    "vllm-hf-handle": ("slurm_llama_3_1_8b_instruct_hf.yaml",
                       ["execution.account=acct", "execution.hostname=login-node"]),
}

CASES = [
    ("typed-single-interpolation", "a: 5\nb: ${a}\nc: x${a}\nf: 1.0e-5\ng: ${f}\nh: a ${f} b\n"),
    ("bool-and-null-in-strings", "t: true\nn: null\ns: x${t}y${n}\n"),
    ("env-and-defaults",
     "u: ${oc.env:USER}\nd1: ${oc.env:EVALD_UNSET,fallback}\nd2: ${oc.env:EVALD_UNSET,5}\n"
     "d3: ${oc.env:EVALD_UNSET,null}\nd4: ${oc.env:EVALD_UNSET,true}\n"
     "d5: \"${oc.env:EVALD_UNSET,'a,b'}\"\nd6: ${oc.env:EVALD_UNSET, spaced }\n"
     "d7: ${oc.env:EVALD_UNSET,1.5e3}\nd8: pre-${oc.env:EVALD_TEST_VALUE}-post\n"),
    ("env-unset-error", "a: ${oc.env:EVALD_UNSET}\n"),
    ("select",
     "x:\n  y: 1\n  n: null\n  m: ???\ns1: ${oc.select:x.y,9}\ns2: ${oc.select:x.z,9}\n"
     "s3: ${oc.select:x.n,9}\ns4: ${oc.select:x.m,9}\ns5: ${oc.select:nope}\n"
     "s6: ${oc.select:x.z,/checkpoint}\ns7: ${oc.select:x.z,[1,2]}\n"),
    ("select-nested-default", "t: true\ns: ${oc.select:missing,${t}}\n"),
    ("relative", "d:\n  x: X\n  sub:\n    v: ${..x}\n    w: ${.v}\n"),
    ("list-index", "a: [10, 20]\nb: ${a[1]}\nc: ${a.0}\nd: ${a}\n"),
    ("dict-reference", "d:\n  x: X\n  sub:\n    v: ${..x}\ncopy: ${d}\n"),
    ("chain", "a: ${b}\nb: ${c}\nc: end\n"),
    ("cycle", "a: ${b}\nb: ${a}\n"),
    ("unknown-key", "a: ${nope.x}\n"),
    ("escaped", "n: 1\na: \\${n}\nb: \\\\${n}\n"),
    ("key-interpolation", "which: y\nvals: {y: picked}\nout: ${vals.${which}}\n"),
    ("missing-reference-error", "a: ???\nb: ${a}\n"),
    ("decode", "a: ${oc.decode:'1'}\nb: ${oc.decode:'[1, x]'}\nc: ${oc.decode:null}\n"),
    ("unsupported-resolver", "a: ${foo:1}\n"),
    ("yaml-1.1-typing",
     "y1: yes\ny2: No\ny3: on\ny4: OFF\no1: 0755\no2: 0x1F\no3: 1_000\ns1: 1:30\ns2: 1:00:00\n"
     "s3: 01:00:00\nf1: 1e5\nf2: .5\nf3: -.5\nf4: 1.\nf5: 6.8523015e+5\nf6: 190:20:30.15\n"
     "n1: ~\nn2: Null\nn3: nULL\nb1: tRue\nb2: True\nd1: 2024-01-01\ni1: +1\ni2: -0\ni3: 0b101\n"
     "i4: 0o17\nf7: 1_2.3_4\nq1: '5'\nq2: \"true\"\nq3: !!str 7\nq4: !!float 3\n"),
    ("merge-key", "base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  y: 3\n"),
]


def load_yaml(text):
    return yaml.load(text, Loader=get_yaml_loader())


def load_config(path):
    with open(path, encoding="utf-8") as f:
        data = load_yaml(f.read()) or {}
    defaults = data.pop("defaults", None)
    return data, defaults


def find_config(roots, rel):
    for root in roots:
        path = os.path.join(root, rel + ".yaml")
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(rel)


def group_exists(roots, group):
    return any(os.path.isdir(os.path.join(root, group)) for root in roots)


def parse_override(text):
    op = "set"
    for prefix, name in (("~", "delete"), ("++", "force_add"), ("+", "add")):
        if text.startswith(prefix):
            op, text = name, text[len(prefix):]
            break
    if "=" in text:
        key, raw = text.split("=", 1)
        value = yaml.safe_load(raw) if raw else ""
        return op, key, True, value
    return op, text, False, None


def apply_config_override(cfg, op, key, has_value, value):
    """Hydra's ConfigLoaderImpl._apply_overrides_to_config, for the operations used here."""
    if op == "delete":
        current = OmegaConf.select(cfg, key, throw_on_missing=False)
        if has_value and current != value:
            raise ValueError(f"value of {key} is {current}, not {value}")
        parent, _, last = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        with open_dict(node):
            del node[last]
    elif op == "add":
        if OmegaConf.select(cfg, key, throw_on_missing=False) is not None:
            raise ValueError(f"an item is already at {key}")
        with open_dict(cfg):
            OmegaConf.update(cfg, key, value, merge=True)
    elif op == "force_add":
        with open_dict(cfg):
            OmegaConf.update(cfg, key, value, merge=True, force_add=True)
    else:
        OmegaConf.update(cfg, key, value, merge=True)


def compose(primary, overrides=()):
    roots = [os.path.dirname(primary), REFERENCE_CONFIGS]
    body, defaults = load_config(primary)
    defaults = list(defaults or [])
    choices, config_overrides = {}, []
    for text in overrides:
        op, key, has_value, value = parse_override(text)
        if "." not in key and group_exists(roots, key) and op == "set":
            choices[key] = value
        else:
            config_overrides.append((op, key, has_value, value))
    if defaults and "_self_" not in defaults:
        defaults.append("_self_")
    cfg = OmegaConf.create({})
    for entry in defaults:
        if entry == "_self_":
            cfg = OmegaConf.merge(cfg, body)
            continue
        (group, option), = entry.items()
        option = choices.pop(group, option)
        sub, sub_defaults = load_config(find_config(roots, f"{group}/{option}"))
        assert not sub_defaults, "nested defaults lists are not used by the reference configs"
        cfg = OmegaConf.merge(cfg, {group: sub})
    if not defaults:
        cfg = OmegaConf.merge(cfg, body)
    assert not choices, f"unused group overrides {choices}"
    OmegaConf.set_struct(cfg, True)
    for override in config_overrides:
        apply_config_override(cfg, *override)
    return cfg


def jsonable(value):
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        return {"$float": repr(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def resolve(cfg):
    return jsonable(OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False))


def write(name, payload):
    path = os.path.join(GOLDEN, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print("wrote", os.path.relpath(path))


def main():
    os.environ.clear()
    os.environ.update(ENV)
    os.makedirs(GOLDEN, exist_ok=True)
    for old in os.listdir(GOLDEN):
        if old.endswith(".json"):
            os.remove(os.path.join(GOLDEN, old))
    examples = sorted(f for f in os.listdir(FIXTURES) if f.endswith(".yaml"))
    for example in examples:
        cfg = compose(os.path.join(FIXTURES, example))
        write(example[:-5] + ".json",
              {"example": example, "overrides": [], "env": ENV, "config": resolve(cfg)})
    for name, (example, overrides) in SCENARIOS.items():
        cfg = compose(os.path.join(FIXTURES, example), overrides)
        write(f"scenario-{name}.json",
              {"example": example, "overrides": overrides, "env": ENV, "config": resolve(cfg)})
    cases = []
    for name, text in CASES:
        case = {"name": name, "yaml": text}
        try:
            case["config"] = resolve(OmegaConf.create(load_yaml(text)))
            case["error"] = False
        except Exception as e:  # the reference rejects it: so must we
            case["error"] = True
            case["reference_error"] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        cases.append(case)
    write("cases.json", {"env": ENV, "cases": cases})
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes seed inputs for the analyzer-file fuzz target (scripts/fuzz.sh) into OUT_DIR, one file each.

The seeds: every analyzers/*.yaml and *.yml file, the YAML blocks of analyzers/README.md, and the YAML texts of
Tests/FlowmeterAppTests/AnalyzerLoaderTests.swift (its multi-line string literals, with the indentation Swift strips,
and the single-line literals given as `yaml:` arguments or to `loadErrors(`, with `prefix +` expanded).

    scripts/analyzer-fuzz-seeds.py OUT_DIR
"""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
seeds = []

for path in sorted((root / "analyzers").iterdir()):
    if path.suffix in (".yaml", ".yml"):
        seeds.append(path.read_bytes())

readme = (root / "analyzers" / "README.md").read_text()
seeds += [block.encode() for block in re.findall(r"```yaml\n(.*?)```", readme, re.S)]

ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "r": "\r", "0": "\0"}


def unescape(literal):
    return re.sub(r"\\(.)", lambda m: ESCAPES.get(m.group(1), m.group(0)), literal)


tests = (root / "Tests" / "FlowmeterAppTests" / "AnalyzerLoaderTests.swift").read_text()
# Multi-line literals: the closing delimiter's indentation is stripped from every line.
multi = list(re.finditer(r'#?"""\n(.*?)\n([ ]*)"""#?', tests, re.S))
prefix = ""
for match in multi:
    indent = len(match.group(2))
    text = "\n".join(line[indent:] for line in match.group(1).split("\n"))
    if not match.group(0).startswith("#"):
        text = unescape(text)
    before = tests[: match.start()].rstrip()
    if before.endswith("static let prefix ="):
        prefix = text
    seeds.append(((prefix if before.endswith("prefix +") else "") + text).encode())
# Single-line literals used as documents.
for match in re.finditer(r'(?:yaml: |loadErrors\()((?:Self\.)?prefix \+ )?"((?:[^"\\]|\\.)*)"', tests):
    text = unescape(match.group(2))
    seeds.append(((prefix if match.group(1) else "") + text).encode())

unique = list(dict.fromkeys(seeds))
for index, seed in enumerate(unique):
    (out / f"seed-{index:03d}.yaml").write_bytes(seed)
print(len(unique))

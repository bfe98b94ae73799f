#!/usr/bin/env python3
"""Spec C1's synthetic experiment over 20 seeds: `optiscope prune --preset sbm --seed S` for
S = 0..19 (a degree-corrected SBM, n = 300, three communities; a 2-layer GCN trained 200 epochs
dense and with 30, 50 and 70 % of the edges removed by TEDDY, random and reverse pruning, or UGS
with `--method ugs`), as the
mean test accuracy with its [min, max] and the mean isolated nodes with their range.

Usage: python3 scripts/prune_table.py [path/to/optiscope] [extra flags, e.g. --weights 0.5]
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "target", "release", "optiscope")
EXTRA = sys.argv[2:]
SEEDS = range(20)


def main():
    acc, iso = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in SEEDS:
            out = os.path.join(tmp, str(s))
            subprocess.run([BIN, "prune", "--preset", "sbm", "--seed", str(s), "-q", "--backend", "cpu",
                            "--out", out, *EXTRA], check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(out, "summary.json")) as f:
                for r in json.load(f):
                    key = (r["method"], r["edges_removed"])
                    acc.setdefault(key, []).append(r["test_accuracy"])
                    iso.setdefault(key, []).append(r["isolated"])
    print("| edges removed | method | test accuracy, mean [min, max] | isolated nodes, mean [min, max] |")
    print("|---:|---|---:|---:|")
    for key in sorted(acc, key=lambda k: (k[1], ["dense", "teddy", "random", "reverse", "ugs"].index(k[0]))):
        a, i = acc[key], iso[key]
        print(f"| {100 * key[1]:.0f} % | {key[0]} | {statistics.mean(a):.3f} [{min(a):.3f}, {max(a):.3f}] "
              f"| {statistics.mean(i):.1f} [{min(i)}, {max(i)}] |")


if __name__ == "__main__":
    main()

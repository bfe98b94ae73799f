#!/usr/bin/env python3
"""Spec C2's tiny MoE -> dense experiment over 20 seeds: `optiscope moe --seed S` for S = 0..19
(each seed draws a new mixture with the same roles, new tokens and new batches; k = 4, no
grouping, 400 distillation steps). Per scorer: the median relative error on the held-out tokens
before distillation under gate-mass and conditional-gate scaling and after distillation, with the
[min, max] of the post-distillation error, how often the selection keeps both members of a
near-duplicate pair, and how often the scorer has the lowest pre-distillation error of the seven
(ties count for each).

Usage: python3 scripts/moe_table.py [path/to/optiscope] [extra flags, e.g. --grouping router]
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
ORDER = ["frequency", "gate-mass", "activation-norm", "reap", "weight-norm", "random", "diversity"]
PAIRS = [(0, 1), (2, 3)]


def main():
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in SEEDS:
            out = os.path.join(tmp, str(s))
            subprocess.run([BIN, "moe", "--seed", str(s), "-q", "--backend", "cpu", "--out", out, *EXTRA],
                           check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(out, "summary.json")) as f:
                runs.append(json.load(f)["errors"])
    n = len(runs)
    print("| scoring | pre-distillation, gate-mass scaling | pre, cond-gate scaling | post-distillation [min, max] "
          "| keeps a duplicate pair | lowest pre-distillation |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in ORDER:
        pre = [r[name]["pre_distillation_by_scaling"]["gate-mass"] for r in runs]
        cond = [r[name]["pre_distillation_by_scaling"]["cond-gate"] for r in runs]
        post = [r[name]["post_distillation"] for r in runs]
        pair = sum(any(a in r[name]["selected"] and b in r[name]["selected"] for a, b in PAIRS) for r in runs)
        low = sum(all(r[name]["pre_distillation"] <= r[o]["pre_distillation"] for o in ORDER) for r in runs)
        print(f"| {name} | {statistics.median(pre):.3f} | {statistics.median(cond):.3f} "
              f"| {statistics.median(post):.3f} [{min(post):.3f}, {max(post):.3f}] | {pair}/{n} | {low}/{n} |")
    wins = sum(r[o]["pre_distillation_by_scaling"]["gate-mass"] < r[o]["pre_distillation_by_scaling"]["cond-gate"]
               for r in runs for o in ORDER)
    below = sum(r[o]["post_distillation"] < 0.2 for r in runs for o in ORDER)
    div = sum(r["diversity"]["post_distillation"] < r["frequency"]["post_distillation"] for r in runs)
    print(f"\ngate-mass scaling below cond-gate: {wins}/{n * len(ORDER)} selections; "
          f"post-distillation < 0.2: {below}/{n * len(ORDER)}; "
          f"diversity below frequency after distillation: {div}/{n} seeds")


if __name__ == "__main__":
    main()

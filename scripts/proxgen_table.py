#!/usr/bin/env python3
"""ProxGen on the digits MLP (64-128-10): test accuracy against the share of exact zeros in the
weight matrices, for the four regularizers over a grid of penalties, and AdamW (penalty 0) as the
dense baseline. Every cell is the median over seeds 0..4 with the min and max beside it.

Usage: python3 scripts/proxgen_table.py [path/to/optiscope]   (default target/release/optiscope)
Each run: optiscope train --backend cpu --optimizer proxgen --regularizer R --penalty λ
          --epochs 30 --seed S  (lr 0.01, batch 64, weight_decay 0.01: the train defaults).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "target", "release", "optiscope")
REGULARIZERS = ["l1", "l0", "l1/2", "l2/3"]
PENALTIES = [3e-5, 1e-4, 3e-4, 1e-3, 3e-3]
SEEDS = range(5)
# weights per layer of 64-128-10 (the sparsity is over all weight matrices; biases excluded)
WEIGHTS = [64 * 128, 128 * 10]


def run(reg, penalty, seed, tmp):
    out = os.path.join(tmp, f"{reg.replace('/', '_')}-{penalty}-{seed}")
    cmd = [BIN, "train", "-q", "--backend", "cpu", "--optimizer", "proxgen", "--regularizer", reg,
           "--penalty", str(penalty), "--epochs", "30", "--seed", str(seed), "--out", out]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        last = json.loads(f.read().splitlines()[-1])
    zeros = sum(l["sparsity"] * n for l, n in zip(last["layers"], WEIGHTS)) / sum(WEIGHTS)
    return last["test_accuracy"], zeros


def cell(values, pct=True):
    med = statistics.median(values)
    f = (lambda v: f"{100 * v:.1f}") if pct else (lambda v: f"{v:.3f}")
    return f"{f(med)} [{f(min(values))}, {f(max(values))}]"


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = [run("l1", 0.0, s, tmp) for s in SEEDS]
        rows.append(("AdamW (penalty 0)", "—", base))
        for reg in REGULARIZERS:
            for pen in PENALTIES:
                rows.append((f"proxgen {reg}", f"{pen:g}", [run(reg, pen, s, tmp) for s in SEEDS]))
    print("| optimizer | penalty λ | test accuracy % (median [min, max], 5 seeds) | exact zeros in the weights % |")
    print("|---|---:|---:|---:|")
    for name, pen, res in rows:
        acc = [a for a, _ in res]
        zer = [z for _, z in res]
        print(f"| {name} | {pen} | {cell(acc)} | {cell(zer)} |")


if __name__ == "__main__":
    main()

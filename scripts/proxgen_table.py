#!/usr/bin/env python3
"""ProxGen on the digits MLP (64-128-10): test accuracy against the share of exact zeros in the
weight matrices, for the four regularizers over a grid of penalties, and AdamW (penalty 0) as the
dense baseline; beside each ProxGen cell, at the same sparsity (per seed): the subgradient baseline
(AdamW on f + λR with R's subgradient, same R and λ, then magnitude-pruned to ProxGen's share of
zeros) and dense AdamW magnitude-pruned the same way. Every cell is the median over seeds 0..4 with
the min and max beside it.

Usage: python3 scripts/proxgen_table.py [path/to/optiscope]   (default target/release/optiscope)
Each run: optiscope train --backend cpu --optimizer proxgen|adamw_subgradient --regularizer R
          --penalty λ --epochs 30 --seed S  (lr 0.01, batch 64, weight_decay 0.01: the train
          defaults); pruned accuracy: optiscope eval DIR --prune F (global magnitude pruning of the
          weight matrices, biases kept).
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


def train(opt, reg, penalty, seed, tmp):
    out = os.path.join(tmp, f"{opt}-{reg.replace('/', '_')}-{penalty}-{seed}")
    if not os.path.exists(out):
        cmd = [BIN, "train", "-q", "--backend", "cpu", "--optimizer", opt, "--regularizer", reg,
               "--penalty", str(penalty), "--epochs", "30", "--seed", str(seed), "--out", out]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def evaluate(out, prune=None):
    cmd = [BIN, "eval", out] + (["--prune", repr(prune)] if prune is not None else [])
    line = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return line["test_accuracy"], line["sparsity"]


def run(reg, penalty, seed, tmp):
    """(ProxGen accuracy, its zeros, subgradient accuracy at those zeros, AdamW's at those zeros)."""
    acc, zeros = evaluate(train("proxgen", reg, penalty, seed, tmp))
    sub, _ = evaluate(train("adamw_subgradient", reg, penalty, seed, tmp), zeros)
    dense, _ = evaluate(train("proxgen", "l1", 0.0, seed, tmp), zeros)
    return acc, zeros, sub, dense


def cell(values, pct=True):
    med = statistics.median(values)
    f = (lambda v: f"{100 * v:.1f}") if pct else (lambda v: f"{v:.3f}")
    return f"{f(med)} [{f(min(values))}, {f(max(values))}]"


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = [evaluate(train("proxgen", "l1", 0.0, s, tmp)) for s in SEEDS]
        for reg in REGULARIZERS:
            for pen in PENALTIES:
                rows.append((f"proxgen {reg}", f"{pen:g}", [run(reg, pen, s, tmp) for s in SEEDS]))
    acc = [a for a, _ in base]
    print(f"Dense AdamW (penalty 0): test accuracy {cell(acc)} %, exact zeros {cell([z for _, z in base])} %.\n")
    print("| optimizer | penalty λ | test accuracy % (median [min, max], 5 seeds) | exact zeros in the weights % "
          "| subgradient baseline (same R, λ), pruned to those zeros: test accuracy % "
          "| dense AdamW pruned to those zeros: test accuracy % |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, pen, res in rows:
        cols = [cell([r[k] for r in res]) for k in range(4)]
        print(f"| {name} | {pen} | {cols[0]} | {cols[1]} | {cols[2]} | {cols[3]} |")


if __name__ == "__main__":
    main()

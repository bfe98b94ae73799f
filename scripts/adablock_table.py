#!/usr/bin/env python3
"""AdaBlock against Adam and SGD on the digits MLP (64-128-10): test accuracy after 30 epochs and
wall-clock per optimizer step, every run in this one invocation on the same machine. Each cell is the
median over seeds 0..4 with the min and max beside it.

Usage: python3 scripts/adablock_table.py [path/to/optiscope]   (default target/release/optiscope)
Each run: optiscope train --backend cpu --config C.json --seed S --epochs 30 (batch 64), C holding the
optimizer below. Time per step = the epochs' wall-clock (`seconds` in metrics.jsonl, which includes
the end-of-epoch evaluation) divided by the optimizer steps; the forward/backward pass is the same for
every optimizer, so the differences are the update's cost.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "target", "release", "optiscope")
SEEDS = range(5)
EPOCHS = 30
# (label, optimizer config)
RUNS = [
    ("SGD, momentum 0.9, lr 0.1", {"name": "sgd", "lr": 0.1, "momentum": 0.9}),
    ("Adam, lr 1e-3", {"name": "adam", "lr": 1e-3}),
    ("Adam, lr 1e-2", {"name": "adam", "lr": 1e-2}),
    ("AdaBlock g=1 (diagonal), lr 1e-3", {"name": "adablock", "lr": 1e-3, "groups": 1}),
    ("AdaBlock g=2, lr 1e-3", {"name": "adablock", "lr": 1e-3, "groups": 2}),
    ("AdaBlock g=16, lr 1e-3", {"name": "adablock", "lr": 1e-3, "groups": 16}),
    ("AdaBlock g=16, lr 1e-2", {"name": "adablock", "lr": 1e-2, "groups": 16}),
    ("AdaBlock g=32, lr 1e-3", {"name": "adablock", "lr": 1e-3, "groups": 32}),
    ("AdaBlock g=16, lr 1e-3, clipping (final_lr 0.1, γ 1e-3)",
     {"name": "adablock", "lr": 1e-3, "groups": 16, "clipping": True, "final_lr": 0.1}),
]


def run(opt, seed, tmp, idx):
    out = os.path.join(tmp, f"{idx}-{seed}")
    cfg_path = os.path.join(tmp, f"{idx}.json")
    with open(cfg_path, "w") as f:
        json.dump({"optimizer": opt, "epochs": EPOCHS}, f)
    cmd = [BIN, "train", "--backend", "cpu", "--config", cfg_path, "--seed", str(seed), "--out", out]
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    batches = int(proc.stderr.split(" batches")[0].rsplit(" ", 1)[-1]) if " batches" in proc.stderr else None
    with open(os.path.join(out, "metrics.jsonl")) as f:
        lines = [json.loads(x) for x in f.read().splitlines() if x.strip()]
    epochs = [x for x in lines if "test_accuracy" in x]
    seconds = sum(x["seconds"] for x in epochs)
    return epochs[-1]["test_accuracy"], 1000.0 * seconds / (batches * len(epochs))


def cell(values, fmt):
    return f"{fmt(statistics.median(values))} [{fmt(min(values))}, {fmt(max(values))}]"


def main():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for idx, (label, opt) in enumerate(RUNS):
            rows.append((label, [run(opt, s, tmp, idx) for s in SEEDS]))
    print("| optimizer | test accuracy % (median [min, max], 5 seeds) | ms per step (median [min, max]) |")
    print("|---|---:|---:|")
    for label, res in rows:
        acc = [a for a, _ in res]
        ms = [m for _, m in res]
        print(f"| {label} | {cell(acc, lambda v: f'{100 * v:.1f}')} | {cell(ms, lambda v: f'{v:.2f}')} |")


if __name__ == "__main__":
    main()

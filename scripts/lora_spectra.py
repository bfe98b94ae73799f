#!/usr/bin/env python3
"""LoRA's spectral growth on the character-level GPT (BENCHMARKS.md, "LoRA on the GPT"): a base
model is trained, then LoRA adapters of rank r on every block's attention and MLP matrices are
fine-tuned from it with AdamW and with Muon (each factor's gradient orthogonalized separately),
several seeds each (the seed draws the adapters' A and the batches). The table reports how evenly
the singular values of the adapter products s·B·A grow: σ_r/σ_1 and the effective rank
exp(H(σ/Σσ))/r, each the median over the adapted matrices, then the median [min, max] over seeds.

    python3 scripts/lora_spectra.py target/release/optiscope [--out runs/lora] [--seeds 3]

Resumable: runs whose folders exist are not repeated.
"""
import argparse
import json
import math
import statistics
import subprocess
from pathlib import Path

BASE = ["--n-layer", "2", "--n-head", "4", "--n-embd", "64", "--block-size", "64",
        "--batch-size", "12", "--steps", "1000", "--lr", "3e-3", "--spectra-every", "0",
        "--seed", "0"]
METHODS = [("AdamW", "adamw", "1e-3"), ("Muon", "muon", "0.02")]
STEPS = [25, 100, 300]


def run(binary, args, out):
    if (out / "model.safetensors").exists():
        return
    subprocess.run([binary, "train", "--model", "gpt", "-q", *args, "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def flatness(sv, r):
    sv = sv[:r]
    total = sum(sv)
    if total <= 0:
        return float("nan"), float("nan")
    p = [s / total for s in sv if s > 0]
    return sv[-1] / sv[0], math.exp(-sum(x * math.log(x) for x in p)) / r


def summary(values):
    return f"{statistics.median(values):.2f} [{min(values):.2f}, {max(values):.2f}]"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--out", default="runs/lora")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--rank", type=int, default=8)
    a = p.parse_args()
    out = Path(a.out)
    base = out / "base"
    run(a.binary, BASE, base)
    print(f"base: 2 layers, C 64, context 64, 1000 AdamW steps (lr 3e-3); LoRA rank {a.rank}, "
          f"alpha = rank, 300 steps, seeds 0..{a.seeds - 1}\n")
    print("| method (lr) | step | σ_r/σ_1 of s·B·A | effective rank / r | val loss |")
    print("|---|---:|---:|---:|---:|")
    for label, name, lr in METHODS:
        per_step = {s: ([], [], []) for s in STEPS}
        for seed in range(a.seeds):
            d = out / f"{name}-s{seed}"
            run(a.binary, ["--init", str(base), "--lora-rank", str(a.rank), "--optimizer", name,
                           "--lr", lr, "--steps", "300", "--spectra-every", "25",
                           "--eval-interval", "25", "--seed", str(seed)], d)
            for line in (d / "metrics.jsonl").read_text().splitlines():
                v = json.loads(line)
                if v.get("step") not in per_step:
                    continue
                ratio, erank, loss = per_step[v["step"]]
                if "singular_values" in v:
                    fl = [flatness(sv, a.rank) for sv in v["singular_values"].values()]
                    ratio.append(statistics.median(f[0] for f in fl))
                    erank.append(statistics.median(f[1] for f in fl))
                if "val_loss" in v:
                    loss.append(v["val_loss"])
        for s in STEPS:
            ratio, erank, loss = per_step[s]
            print(f"| {label} ({lr}) | {s} | {summary(ratio)} | {summary(erank)} | {summary(loss)} |")


if __name__ == "__main__":
    main()

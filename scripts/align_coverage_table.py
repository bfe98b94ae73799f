#!/usr/bin/env python3
"""Spec B2a over 20 seeds: KL(pi*||pi_hat) at the end of every run of `optiscope align --preset
coverage` (offline, on-policy T = 2 and 4, the two-round hybrid; 20 000 and 80 000 labelled pairs),
as median [min, max] with the number of seeds at which the run is not below 0.05 and at which
on-policy is not better than offline (same seed, same budget).

Usage: python3 scripts/align_coverage_table.py [path/to/optiscope]   (default target/release/optiscope)
Each run: optiscope align --preset coverage --seed S -q --out DIR, S = 0..19.
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "target", "release", "optiscope")
SEEDS = range(20)
LABELS = ["offline", "on-policy-T2", "on-policy-T4", "hybrid"]


def main():
    kl = {}
    with tempfile.TemporaryDirectory() as tmp:
        for s in SEEDS:
            out = os.path.join(tmp, str(s))
            subprocess.run([BIN, "align", "--preset", "coverage", "--seed", str(s), "-q", "--out", out],
                           check=True, stdout=subprocess.DEVNULL)
            with open(os.path.join(out, "summary.json")) as f:
                for r in json.load(f):
                    kl.setdefault((r["label"], r["n_total"]), []).append(r["kl"])
    print("| pairs | sampler | KL(π*‖π̂) median [min, max], 20 seeds | seeds with KL ≥ 0.05 | seeds not better than offline |")
    print("|---:|---|---:|---:|---:|")
    for n in (20000, 80000):
        off = kl[("offline", n)]
        for label in LABELS:
            v = kl[(label, n)]
            worse = "—" if label == "offline" else str(sum(1 for a, o in zip(v, off) if a >= o))
            print(f"| {n} | {label} | {statistics.median(v):.4f} [{min(v):.4f}, {max(v):.4f}] "
                  f"| {sum(1 for x in v if x >= 0.05)} | {worse} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Spec B2b, B3, B4, B5 and B6 over 20 seeds: the presets rich-features, degeneracy, grpo, thinksafe
and multitask of `optiscope align`, each run with --seed S for S = 0..19, summarised as
median [min, max] per run and value (the Markdown tables of BENCHMARKS.md).

Usage: python3 scripts/align_tables.py [path/to/optiscope]   (default target/release/optiscope)
Each run: optiscope align --preset NAME --seed S -q --out DIR.
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

TABLES = [
    ("rich-features", "B2b: 50 contexts, 20 arms, Gaussian features in R^5, β = 1, 4000 pairs",
     [("kl", "KL(π*‖π̂)", 4), ("c_feat", "C_feat of the last round's sampler", 1)]),
    ("degeneracy", "B3: K = 6, γ = 1, uniform reference; 12 drawn pairs with a never-winning arm",
     [("kl", "KL(π*‖π)", 3), ("entropy", "H(π) (H(π*) = 1.495)", 3), ("logit_range", "logit range", 2)]),
    ("grpo", "B4: one context, 6 Bernoulli arms (0.9 … 0.1), G = 8, 400 iterations of 4 steps",
     [("pi_best", "π(best)", 3), ("reward", "E_π[r] (best 0.9)", 3), ("kl_ref", "KL(π‖π_ref)", 3)]),
    ("thinksafe", "B5: 16 + 16 training and held-out contexts of each kind, M = 6, S = {0, 1, 2}, ω = 8, 8 accepted samples per harmful context, SFT 3000 steps",
     [("safety", "safety (held-out harmful)", 4), ("kl_harmful", "KL(p_θ‖p_ref) harmful", 3),
      ("kl_floor", "−log α_ref (floor)", 3), ("kl_benign", "KL(p_θ‖p_ref) benign", 4),
      ("refusal_benign", "refusal on benign", 3), ("generations_per_accepted", "generations per accepted", 2),
      ("accepted_excess_kl", "KL(p_gen⁺‖p_ref⁺)", 3)]),
    ("multitask", "B6: 40 contexts, 8 responses, d = 6, two tasks, 4000 pairs each, β = 0.5",
     [("kl_teacher", "KL(π_T‖π̂)", 3), ("kl_helpful", "KL(π*_helpful‖π̂)", 3), ("kl_concise", "KL(π*_concise‖π̂)", 3)]),
]


def cell(v, digits):
    s = f"{statistics.median(v):.{digits}f} [{min(v):.{digits}f}, {max(v):.{digits}f}]"
    return s.replace("-0.000", "0.000")  # a KL of -1e-17 from rounding


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for preset, title, values in TABLES:
            rows = {}
            for s in SEEDS:
                out = os.path.join(tmp, f"{preset}-{s}")
                subprocess.run([BIN, "align", "--preset", preset, "--seed", str(s), "-q", "--out", out],
                               check=True, stdout=subprocess.DEVNULL)
                with open(os.path.join(out, "summary.json")) as f:
                    for r in json.load(f):
                        for key, _, _ in values:
                            rows.setdefault(r["label"], {}).setdefault(key, []).append(r[key])
            print(f"`{preset}` — {title}; median [min, max] over {len(SEEDS)} seeds\n")
            print("| run | " + " | ".join(h for _, h, _ in values) + " |")
            print("|---|" + "---:|" * len(values))
            for label, cols in rows.items():
                print(f"| {label} | " + " | ".join(cell(cols[k], d) for k, _, d in values) + " |")
            print()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Training speed of the character-level GPT: optiscope's CPU executor (and, with --gpu, its GPU
executor) against PyTorch eager on the CPU, with the same config, batch and thread count, in one
run. Prints the Markdown table of BENCHMARKS.md ("The GPT on the CPU").

    python3 scripts/bench_gpt.py target/release/optiscope [--threads 2] [--steps 60] [--repeat 5] [--gpu]

optiscope's figure is the median of its per-interval tokens/s (metrics.jsonl, training steps
only, the first interval dropped as warm-up); PyTorch's comes from scripts/bench_gpt_torch.py
(5 warm-up steps, then --steps timed). Without torch the PyTorch column says so.

A shared machine's speed wanders between runs, so each config runs --repeat times, optiscope
and PyTorch alternating; the table gives the medians over the repeats and the median and range
of the per-pair ratios.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CONFIGS = [
    ("small (2 layers, 4 heads, C 64, context 32, batch 8)", dict(n_layer=2, n_head=4, n_embd=64, block_size=32, batch_size=8)),
    ("baby (4 layers, 4 heads, C 128, context 64, batch 12)", dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12)),
]


def optiscope(binary, cfg, steps, threads, backend):
    out = Path(tempfile.mkdtemp(prefix="optiscope-bench-gpt-")) / "run"
    env = dict(os.environ, MATMUL_NUM_THREADS=str(threads), OPTISCOPE_THREADS=str(threads))
    args = [binary, "train", "--model", "gpt", "--steps", str(steps), "--eval-interval", str(10 * steps),
            "--eval-iters", "1", "--spectra-every", "0", "--log-interval", "10", "--backend", backend,
            "--out", str(out), "-q"]
    for k, v in cfg.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    subprocess.run(args, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tps = []
    for line in (out / "metrics.jsonl").read_text().splitlines():
        v = json.loads(line)
        if "tokens_per_s" in v and v["step"] % 10 == 0 and v["step"] > 10:
            tps.append(v["tokens_per_s"])
    return statistics.median(tps)


def torch_tps(cfg, steps, threads):
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    args = [sys.executable, str(ROOT / "scripts" / "bench_gpt_torch.py"), "--steps", str(steps),
            "--threads", str(threads)]
    for k, v in cfg.items():
        args += ["--" + k.replace("_", "-"), str(v)]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["tokens_per_s"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeat", type=int, default=5, help="alternating runs per config")
    p.add_argument("--gpu", action="store_true", help="also the GPU executor (small config only)")
    a = p.parse_args()
    print(f"threads: {a.threads}; steps: {a.steps}; repeats: {a.repeat}")
    print()
    header = "| config | optiscope CPU tokens/s | PyTorch CPU tokens/s | optiscope / PyTorch (median, range) |"
    if a.gpu:
        header += " optiscope GPU tokens/s |"
    print(header)
    print("|---|---:|---:|---:|" + ("---:|" if a.gpu else ""))
    for name, cfg in CONFIGS:
        ours_runs, theirs_runs = [], []
        for _ in range(max(1, a.repeat)):
            ours_runs.append(optiscope(a.binary, cfg, a.steps, a.threads, "cpu"))
            t = torch_tps(cfg, a.steps, a.threads)
            if t:
                theirs_runs.append(t)
        ours = statistics.median(ours_runs)
        theirs = statistics.median(theirs_runs) if theirs_runs else None
        row = f"| {name} | {ours:,.0f} | "
        if theirs:
            ratios = [o / t for o, t in zip(ours_runs, theirs_runs)]
            row += f"{theirs:,.0f} | {statistics.median(ratios):.2f}× ({min(ratios):.2f}–{max(ratios):.2f}) |"
        else:
            row += "(torch not installed) | — |"
        if a.gpu:
            gpu = optiscope(a.binary, cfg, max(20, a.steps // 3), a.threads, "gpu") if name.startswith("small") else None
            row += f" {gpu:,.0f} |" if gpu else " — |"
        print(row)


if __name__ == "__main__":
    main()

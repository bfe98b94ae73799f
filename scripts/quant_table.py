#!/usr/bin/env python3
"""Runs the digits quantization table of BENCHMARKS.md: the full-precision MLP and every quantizer
at 4, 3 and 2 bits, several seeds, with `optiscope train`, and prints a markdown table of the final
test accuracy (mean ± sd over seeds, and min).

    python3 scripts/quant_table.py [--bin target/release/optiscope] [--seeds 0,1,2] [--epochs 30]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

METHODS = ["ste", "lsq", "rq", "srq", "cpq", "proxquant"]


def run(binary, out, quant, bits, seed, epochs, backend):
    cmd = [binary, "train", "--data", "digits", "--quant", quant, "--epochs", str(epochs),
           "--seed", str(seed), "--out", out, "--backend", backend, "-q"]
    if bits:
        cmd += ["--bits", str(bits)]
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    with open(os.path.join(out, "metrics.jsonl")) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    return lines[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/optiscope")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--backend", default="cpu")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",")]
    tmp = tempfile.mkdtemp(prefix="optiscope-table-")
    rows = [("full precision", "none", None)] + [
        (f"{m} {b}-bit", m, b) for b in (4, 3, 2) for m in METHODS]
    print(f"| quantizer | test accuracy, mean ± sd over seeds {a.seeds} | min | near_frac(0.1), layer 0 |")
    print("|---|---|---|---|")
    for label, quant, bits in rows:
        accs, nears = [], []
        for s in seeds:
            out = os.path.join(tmp, f"{quant}-{bits}-{s}")
            last = run(a.bin, out, quant, bits, s, a.epochs, a.backend)
            accs.append(100 * last["test_accuracy"])
            nears.append(last["layers"][0]["near_frac"])
        sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
        print(f"| {label} | {statistics.mean(accs):.2f} ± {sd:.2f} % | {min(accs):.2f} % | "
              f"{statistics.mean(nears):.3f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())

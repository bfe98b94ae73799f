#!/usr/bin/env python3
"""Seed-averaged figures for the `river-valley` preset of `optiscope run`.

Runs the preset once per seed, reads each run's `metrics.jsonl`, `summary.json` and
`config.json`, and prints Markdown tables of the mean (and median) loss over seeds at
t = 100, 200, 500, 1000, 2000 next to the numpy table of the project's optimizer spec, §4.4
("A 2-D analytic river valley for tests", copied into SPEC_TABLE below), the spec's two
ratios, and for each qualitative claim of the spec the number of seeds where it holds.

Usage:
    python3 scripts/river_valley_seeds.py [OPTISCOPE_BINARY] [--seeds 0-9] [--steps 2000]
                                          [--backend cpu]

    OPTISCOPE_BINARY  the `optiscope` executable [default: target/release/optiscope, or
                      target/debug/optiscope if there is no release build; both relative
                      to the repository root]
    --seeds SPEC      seeds: a range `A-B` (inclusive), a list `0,3,7`, or a mix `0-4,9`
                      [default: 0-9]
    --steps N         steps per run, passed to `optiscope run --steps` [default: 2000]
    --backend B       auto | cpu | gpu, passed to `optiscope run --backend` [default: cpu]

For each seed S it runs
    OPTISCOPE_BINARY run --preset river-valley --seed S --steps N --backend B --quiet \
        --out TMPDIR/seed-S
in a temporary directory that is removed afterwards. Step numbering of metrics.jsonl: the
record with step 0 is the starting point (before any update) and step t is the loss at the
evaluation point after t optimizer steps, so "t = 100" is the record whose step is 100.

Plain Python 3 standard library only. Exit status: 0 on success, 1 if the binary fails
(missing, non-zero exit, e.g. a diverged run) or writes something unexpected, 2 on bad
arguments.
"""

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMES = (100, 200, 500, 1000, 2000)

# The optimizer spec (optimizers.md) §4.4 ("A 2-D analytic river valley for tests"): measured
# mean loss at the eval point over 10 seeds, warmup 50 steps, T=2000, numpy (`amuse.py`).
# (method, loss at t=100, 200, 500, 1000, 2000), copied verbatim.
SPEC_TABLE = (
    ("GD η=0.2", (0.170, 0.099, 0.055, 0.013, 0.013)),
    ("Muon η=0.05", (0.134, 0.011, 0.027, 0.018, 0.022)),
    ("Muon η=0.01", (0.294, 0.196, 0.058, 0.0025, 0.0064)),
    ("SF-Muon η=0.05, β=0.9", (0.574, 0.201, 0.102, 0.0033, 0.0031)),
    ("AMUSE η=0.05, β1=0.6, ρ=0.3", (0.255, 0.130, 0.021, 0.0029, 0.0023)),
    ("AMUSE η=0.05, β1=0.6, ρ=0.8", (0.264, 0.206, 0.232, 0.184, 0.151)),
)
# Which spec row corresponds to which run label of the preset (spec §4.4 as well).
SPEC_ROW_OF_LABEL = {
    "gd": "GD η=0.2",
    "muon": "Muon η=0.05",
    "sf-muon": "SF-Muon η=0.05, β=0.9",
    "amuse": "AMUSE η=0.05, β1=0.6, ρ=0.3",
}
SPEC_NOTE = {"Muon η=0.05": {2000: " (oscillation floor)"}}


def die(msg, code=1):
    print(f"river_valley_seeds: error: {msg}", file=sys.stderr)
    sys.exit(code)


def parse_seeds(spec):
    seeds = []
    try:
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                a, b = part.split("-", 1)
                a, b = int(a), int(b)
                if b < a:
                    raise ValueError
                seeds.extend(range(a, b + 1))
            else:
                seeds.append(int(part))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{spec!r}: expected seeds like 0-9, 0,3,7 or 0-4,9 (non-negative integers)")
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"{spec!r}: no non-negative seeds")
    return sorted(set(seeds))


def positive_int(s):
    try:
        v = int(s)
    except ValueError:
        v = 0
    if v <= 0:
        raise argparse.ArgumentTypeError(f"{s!r}: must be a positive integer")
    return v


def find_binary(arg):
    if arg is not None:
        p = Path(arg)
        if not p.is_file():
            die(f"optiscope binary {arg} does not exist")
        return p.resolve()
    for rel in ("target/release/optiscope", "target/debug/optiscope"):
        p = REPO / rel
        if p.is_file():
            return p
    die("no optiscope binary: neither target/release/optiscope nor target/debug/optiscope "
        f"exists under {REPO}; build it (cargo build --release -p optiscope-cli) or pass its path")


def fmt(v):
    """Like the CLI's summary table: 4 decimals in [1e-3, 1e4), else 3-digit scientific."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if v == 0 or 1e-3 <= abs(v) < 1e4:
        return f"{v:.4f}"
    mantissa, exp = f"{v:.3e}".split("e")
    return f"{mantissa}e{int(exp)}"


def run_seed(binary, seed, steps, backend, tmp):
    out = tmp / f"seed-{seed}"
    cmd = [str(binary), "run", "--preset", "river-valley", "--seed", str(seed),
           "--steps", str(steps), "--backend", backend, "--quiet", "--out", str(out)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        die(f"cannot start {binary}: {e}")
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip() or "(no output)").splitlines()[-10:]
        die(f"seed {seed}: `{' '.join(cmd)}` exited with status {proc.returncode}:\n  "
            + "\n  ".join(tail))
    try:
        config = json.loads((out / "config.json").read_text())
        summary = json.loads((out / "summary.json").read_text())
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
                   if line.strip()]
    except (OSError, ValueError) as e:
        die(f"seed {seed}: cannot read the results in {out}: {e}")
    if config.get("seed") != seed or config.get("steps") != steps:
        die(f"seed {seed}: config.json says seed {config.get('seed')}, steps "
            f"{config.get('steps')}; expected seed {seed}, steps {steps}")
    adapter = next((line.strip() for line in proc.stderr.splitlines()
                    if line.startswith("backend:")), "")
    return config, summary, records, adapter


def settings(run_cfg):
    opt = run_cfg["optimizer"]
    parts = [opt["name"], f"lr={opt['lr']:g}"]
    if opt["name"] == "amuse":
        parts += [f"beta1={opt['beta1']:g}", f"rho={opt['rho']:g}",
                  f"warmup_steps={opt['warmup_steps']}"]
    if run_cfg.get("lr_warmup_steps"):
        parts.append(f"lr_warmup={run_cfg['lr_warmup_steps']}")
    return " ".join(parts)


def markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(
        description="Seed-averaged losses of `optiscope run --preset river-valley` against "
                    "spec §4.4.",
        epilog="See the module docstring for details.")
    ap.add_argument("binary", nargs="?", metavar="OPTISCOPE_BINARY",
                    help="optiscope executable [default: target/release/optiscope, else "
                         "target/debug/optiscope]")
    ap.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-9"),
                    help="seeds, e.g. 0-9, 0,3,7 [default: 0-9]")
    ap.add_argument("--steps", type=positive_int, default=2000,
                    help="steps per run [default: 2000]")
    ap.add_argument("--backend", choices=("auto", "cpu", "gpu"), default="cpu",
                    help="executor [default: cpu]")
    args = ap.parse_args()

    binary = find_binary(args.binary)
    seeds = args.seeds
    n = len(seeds)
    times = [t for t in TIMES if t <= args.steps]

    start = time.monotonic()
    labels = None
    run_cfgs = None
    # loss[label][t] -> list over seeds; tail[label] -> list over seeds
    loss = {}
    tail = {}
    step0 = set()
    adapter = ""
    with tempfile.TemporaryDirectory(prefix="river_valley_seeds-") as tmpname:
        tmp = Path(tmpname)
        for seed in seeds:
            t0 = time.monotonic()
            config, summary, records, adapter = run_seed(binary, seed, args.steps,
                                                         args.backend, tmp)
            cfg_labels = [r["label"] for r in config["runs"]]
            if labels is None:
                labels, run_cfgs = cfg_labels, config["runs"]
                loss = {lab: {t: [] for t in times} for lab in labels}
                tail = {lab: [] for lab in labels}
            elif cfg_labels != labels:
                die(f"seed {seed}: runs {cfg_labels} differ from seed {seeds[0]}'s {labels}")
            by_step = {lab: {} for lab in labels}
            for r in records:
                if r.get("run") not in by_step:
                    die(f"seed {seed}: metrics.jsonl names an unknown run {r.get('run')!r}")
                by_step[r["run"]][r["step"]] = r["loss"]
            for lab in labels:
                steps_seen = by_step[lab]
                if not steps_seen:
                    die(f"seed {seed}: no records for run {lab!r} in metrics.jsonl")
                step0.add(min(steps_seen))
                for t in times:
                    if t not in steps_seen:
                        die(f"seed {seed}: run {lab!r} has no record at step {t} "
                            f"(record_every = {config.get('record_every')})")
                    loss[lab][t].append(steps_seen[t])
            summ = {s["label"]: s for s in summary}
            for lab in labels:
                if lab not in summ:
                    die(f"seed {seed}: summary.json has no run {lab!r}")
                tail[lab].append(summ[lab]["tail_mean_loss"])
            print(f"seed {seed}: done in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    wall = time.monotonic() - start

    mean = {lab: {t: statistics.fmean(v) for t, v in loss[lab].items()} for lab in labels}
    median = {lab: {t: statistics.median(v) for t, v in loss[lab].items()} for lab in labels}
    tail_mean = {lab: statistics.fmean(tail[lab]) for lab in labels}

    if len(seeds) > 1 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        seed_text = f"{seeds[0]}-{seeds[-1]}"
    else:
        seed_text = ",".join(map(str, seeds))
    seed_word = "seed" if n == 1 else "seeds"
    first = min(step0) if step0 else None
    print(f"# river-valley preset: {n} {seed_word} ({seed_text}), {args.steps} steps, "
          f"backend {args.backend}")
    print()
    print(f"binary: {binary}")
    if adapter:
        print(f"executor, as `optiscope run` reports it on stderr: {adapter}")
    if first == 0:
        print("steps in metrics.jsonl: step 0 is the starting point (before any update), step t "
              "the loss after t optimizer steps, so the column t is the record with step = t.")
    else:
        print(f"steps in metrics.jsonl start at {first}; the column t is the record with "
              "step = t.")
    print("Losses at the evaluation point (Schedule-Free/AMUSE: the average x).")
    print()

    header = ["run", "settings (config.json)"] + [f"t={t}" for t in times] + \
        ["last-10% mean"]
    print(f"## optiscope: mean loss over {n} {seed_word}")
    print()
    rows = []
    for lab, rc in zip(labels, run_cfgs):
        rows.append([lab, settings(rc)] + [fmt(mean[lab][t]) for t in times]
                    + [fmt(tail_mean[lab])])
    print(markdown(header, rows))
    print()
    print(f"## optiscope: median loss over {n} {seed_word}")
    print()
    rows = [[lab, settings(rc)] + [fmt(median[lab][t]) for t in times]
            + [fmt(statistics.median(tail[lab]))] for lab, rc in zip(labels, run_cfgs)]
    print(markdown(["run", "settings (config.json)"] + [f"t={t}" for t in times]
                   + ["last-10% mean (median)"], rows))
    print()
    print("## spec §4.4 (numpy `amuse.py`, mean over 10 seeds, warmup 50, T=2000)")
    print()
    spec_of = dict(SPEC_TABLE)
    label_of_spec = {v: k for k, v in SPEC_ROW_OF_LABEL.items()}
    rows = []
    for method, vals in SPEC_TABLE:
        cells = [f"{v:g}{SPEC_NOTE.get(method, {}).get(t, '')}" for t, v in zip(TIMES, vals)]
        rows.append([method, label_of_spec.get(method, "–")] + cells)
    print(markdown(["method", "preset run"] + [f"t={t}" for t in TIMES], rows))
    print()

    def have(*labs):
        return all(lab in labels for lab in labs)

    print("## ratios of means")
    print()
    rows = []
    if have("muon", "amuse") and 2000 in times:
        s = spec_of[SPEC_ROW_OF_LABEL["muon"]][4] / spec_of[SPEC_ROW_OF_LABEL["amuse"]][4]
        rows.append(["mean Muon / mean AMUSE at t=2000",
                     f"{mean['muon'][2000] / mean['amuse'][2000]:.2f}", f"{s:.2f}"])
    if have("sf-muon", "amuse") and 500 in times:
        s = spec_of[SPEC_ROW_OF_LABEL["sf-muon"]][2] / spec_of[SPEC_ROW_OF_LABEL["amuse"]][2]
        rows.append(["mean SF-Muon / mean AMUSE at t=500",
                     f"{mean['sf-muon'][500] / mean['amuse'][500]:.2f}", f"{s:.2f}"])
    print(markdown(["ratio", "optiscope", "spec §4.4"], rows))
    print()

    print(f"## spec claims, per seed (out of {n})")
    print()
    rows = []

    def count(flags):
        failed = [str(seeds[i]) for i, ok in enumerate(flags) if not ok]
        return [f"{sum(flags)}/{n}", ", ".join(failed) or "–"]

    if have("muon", "amuse") and 200 in times and 2000 in times:
        others = [lab for lab in labels if lab != "muon"]
        fast = [all(loss["muon"][200][i] < loss[o][200][i] for o in others) for i in range(n)]
        plateau = [loss["muon"][2000][i] > loss["amuse"][2000][i] for i in range(n)]
        both = [a and b for a, b in zip(fast, plateau)]
        rows.append([f"Muon(η=0.05) lowest of all {len(labels)} runs at t=200"] + count(fast))
        rows.append(["Muon(η=0.05) above AMUSE at t=2000"] + count(plateau))
        rows.append(["\"Muon(η=0.05) is fastest early (t=200) but plateaus above AMUSE at "
                     "t=2000\" (both)"] + count(both))
    if have("sf-muon", "amuse") and 500 in times:
        beats = [loss["amuse"][500][i] < loss["sf-muon"][500][i] for i in range(n)]
        rows.append(["\"AMUSE beats SF-Muon at t=500\""] + count(beats))
    print(markdown(["claim", "seeds where it holds", "seeds where it fails"], rows))
    print()
    print(f"wall time: {wall:.1f} s for {n} runs of `optiscope run`")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Optimizer comparison on the character-level GPT (issue 14): AdamW, Muon, AMUSE and
Schedule-Free AdamW from the same initialisation and batches (same --seed), the learning rate
tuned per method on a small grid, then validation loss at 250/500/1000/2000 steps over several
seeds, without a schedule (constant rate) and with nanoGPT's warm-up + cosine schedule. Prints
the Markdown tables of the comparison and the folder of the best run.

    cargo build --release -p optiscope-cli
    python3 scripts/gpt_table.py target/release/optiscope --out runs/gpt_table

(defaults: 2 layers, 4 heads, C 64, context 64, batch 12, 2000 steps, eval every 250 steps on 20
fixed validation batches, seeds 0,1,2, 1 thread; runs one training at a time.)

Procedure. The grid: every method at each of its learning rates (3 to 5, --grid-*), seed 0,
constant schedule, full length; the lr is chosen by the validation loss at --tune-step (1000).
With a constant schedule nothing depends on the run's length, so that value is the one a
1000-step run would give (checked: bit-identical), and the chosen grid run doubles as the
table's seed-0 constant run. The table: the chosen lr, seeds --seeds, schedules constant (no
warm-up) and cosine (--warmup-steps 100, decay to lr/10 at the last step, nanoGPT's baby).

--lr is the optimizer's top-level `lr`. For muon and amuse that is the rate of the blocks' hidden
weight matrices only; the embeddings (the tied head), LayerNorm gains and biases go to the
auxiliary Adam(W) at its own fixed default rate (muon: aux_adam.lr 3e-4, betas 0.9/0.95; amuse:
aux.lr 3e-4, Schedule-Free), which is not tuned here. The schedule multiplies every rate, the
auxiliary one included. The Schedule-Free methods get their own internal lr warm-up of
--sf-warmup (100) steps in both conditions (AMUSE requires one, >= 1; it is also where AMUSE's
beta starts to grow); they are evaluated at their average x, as the trainer does.

Resumable: a run folder whose metrics.jsonl already has the final val_loss (and whose
model.safetensors exists) is reused; an incomplete one is deleted and run again.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

METHODS = [
    # (label, optimizer config name, lr grid). AdamW's and SF-AdamW's grids were 3 values at
    # first; their best lay at the top edge, so AdamW got 1e-2 and SF-AdamW 3e-2 (best again,
    # by a hair over 1e-2) and then 1e-1.
    ("AdamW", "adamw", "3e-4,1e-3,3e-3,1e-2"),
    ("Muon", "muon", "0.01,0.02,0.05"),
    ("AMUSE", "amuse", "0.01,0.02,0.05"),
    ("SF-AdamW", "adamw_schedulefree", "1e-3,3e-3,1e-2,3e-2,1e-1"),
]
SCHEDULE_FREE = {"amuse", "adamw_schedulefree"}


def optimizer_config(out, name, sf_warmup):
    """A config file holding only the optimizer (its defaults, plus the Schedule-Free warm-up);
    every other setting comes from the flags."""
    opt = {"name": name}
    if name in SCHEDULE_FREE:
        opt["warmup_steps"] = sf_warmup
    path = out / "configs" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"optimizer": opt}, indent=2) + "\n")
    return path


def val_losses(run):
    """{step: val_loss} of a run folder, or None when the folder holds no metrics."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return None
    vals = {}
    for line in path.read_text().splitlines():
        if line.strip():
            v = json.loads(line)
            if "val_loss" in v:
                vals[v["step"]] = v["val_loss"]
    return vals


def train(a, cfg, run, lr, schedule, seed, log):
    """Runs one training into `run` unless it is already complete; returns its val losses."""
    vals = val_losses(run)
    if vals is not None and a.steps in vals and (run / "model.safetensors").exists():
        return vals
    if run.exists():
        shutil.rmtree(run)
    run.parent.mkdir(parents=True, exist_ok=True)
    cmd = [a.binary, "train", "--model", "gpt", "--config", str(cfg),
           "--n-layer", str(a.n_layer), "--n-head", str(a.n_head), "--n-embd", str(a.n_embd),
           "--block-size", str(a.block_size), "--batch-size", str(a.batch_size),
           "--steps", str(a.steps), "--eval-interval", str(a.eval_interval),
           "--eval-iters", str(a.eval_iters), "--lr", repr(lr), "--schedule", schedule,
           "--warmup-steps", str(a.warmup_steps if schedule == "cosine" else 0),
           "--seed", str(seed), "--spectra-every", "0", "--backend", "cpu",
           "--out", str(run), "-q"]
    env = dict(os.environ, OPTISCOPE_THREADS=str(a.threads), MATMUL_NUM_THREADS=str(a.threads))
    t0 = time.time()
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.time() - t0
    log.append(dt)
    vals = val_losses(run) or {}
    print(f"  {run.name}: {dt:.0f} s, val {vals.get(a.steps, float('nan')):.4f}"
          + ("" if r.returncode == 0 else f"  (exit {r.returncode}: {r.stderr.strip()[-300:]})"),
          file=sys.stderr, flush=True)
    return vals


def fmt(x):
    return "—" if x is None else f"{x:.3f}"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("binary")
    p.add_argument("--out", default="runs/gpt_table", help="folder of the runs")
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=64)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--eval-interval", type=int, default=250)
    p.add_argument("--eval-iters", type=int, default=20)
    p.add_argument("--report-steps", default="250,500,1000,2000")
    p.add_argument("--tune-step", type=int, default=1000,
                   help="the lr is chosen by the seed-0 constant-schedule val loss at this step")
    p.add_argument("--warmup-steps", type=int, default=100, help="warm-up of the cosine schedule")
    p.add_argument("--sf-warmup", type=int, default=100,
                   help="internal lr warm-up of AMUSE and Schedule-Free AdamW (both schedules)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--threads", type=int, default=1)
    for label, name, grid in METHODS:
        p.add_argument(f"--grid-{name.replace('_', '-')}", default=grid, help=f"lr grid of {label}")
    a = p.parse_args()
    out = Path(a.out)
    seeds = [int(s) for s in a.seeds.split(",")]
    report = [int(s) for s in a.report_steps.split(",")]
    log = []
    t_start = time.time()

    # The lr grid (seed 0, constant schedule).
    chosen, grid_rows = {}, []
    for label, name, _ in METHODS:
        grid = [float(x) for x in getattr(a, "grid_" + name).split(",")]
        cfg = optimizer_config(out, name, a.sf_warmup)
        results = []
        for lr in grid:
            run = out / "runs" / f"{name}-lr{lr:g}-constant-s0"
            results.append((lr, train(a, cfg, run, lr, "constant", 0, log)))
        ok = [(v[a.tune_step], lr) for lr, v in results if a.tune_step in v]
        chosen[name] = min(ok)[1] if ok else grid[1]
        grid_rows.append((label, name, results))

    # The table runs (the seed-0 constant one is the chosen grid run).
    table = {}
    for label, name, _ in METHODS:
        cfg = optimizer_config(out, name, a.sf_warmup)
        lr = chosen[name]
        for schedule in ("constant", "cosine"):
            table[name, schedule] = []
            for s in seeds:
                run = out / "runs" / f"{name}-lr{lr:g}-{schedule}-s{s}"
                table[name, schedule].append((run, train(a, cfg, run, lr, schedule, s, log)))
    wall = time.time() - t_start

    print(f"Character-level GPT on tinyshakespeare: {a.n_layer} layers, {a.n_head} heads, "
          f"C {a.n_embd}, context {a.block_size}, batch {a.batch_size}, {a.steps} steps, "
          f"val loss on {a.eval_iters} fixed batches; gradient clip 1.0; CPU executor, "
          f"{a.threads} thread(s).")
    print()
    print(f"### Learning-rate grid (seed 0, constant schedule; chosen by val loss at step "
          f"{a.tune_step})")
    print()
    print("| method | lr | " + " | ".join(f"val@{s}" for s in report) + " | chosen |")
    print("|---|---:|" + "---:|" * len(report) + "---|")
    for label, name, results in grid_rows:
        for lr, v in results:
            mark = "**✓**" if lr == chosen[name] else ""
            print(f"| {label} | {lr:g} | " + " | ".join(fmt(v.get(s)) for s in report)
                  + f" | {mark} |")
    print()
    print(f"### Validation loss, mean ± sd over seeds {a.seeds} (tuned lr)")
    print()
    print("| method | lr | schedule | " + " | ".join(f"step {s}" for s in report) + " |")
    print("|---|---:|---|" + "---:|" * len(report))
    best = None
    for label, name, _ in METHODS:
        for schedule in ("constant", "cosine"):
            runs = table[name, schedule]
            cells = []
            for s in report:
                xs = [v[s] for _, v in runs if s in v]
                if len(xs) == len(runs) and xs:
                    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
                    cells.append(f"{statistics.mean(xs):.3f} ± {sd:.3f}")
                else:
                    cells.append(f"— ({len(xs)}/{len(runs)} runs)")
            sched = "constant" if schedule == "constant" else f"cosine, warm-up {a.warmup_steps}"
            print(f"| {label} | {chosen[name]:g} | {sched} | " + " | ".join(cells) + " |")
            for run, v in runs:
                if a.steps in v and (best is None or v[a.steps] < best[0]):
                    best = (v[a.steps], run)
    print()
    if best:
        print(f"Best run (lowest val loss at step {a.steps}): `{best[1]}` ({best[0]:.4f}).")
        print(f"Sample: `{a.binary} sample --checkpoint {best[1]} --tokens 300 --seed 0`")
    print()
    print(f"{len(log)} trainings run now, {sum(log):.0f} s of training; {wall:.0f} s wall in all.")


if __name__ == "__main__":
    sys.exit(main())

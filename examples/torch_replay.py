"""Record gradients from a PyTorch training run, replay them with `optiscope replay`, compare.

    pip install torch numpy
    python3 examples/torch_replay.py target/release/optiscope [--optimizer adamw|adam|sgd]

A small MLP is trained for a few steps with a torch optimizer. Before each `opt.step()` the
gradients are recorded; after it, the parameters. The gradients become an optiscope trace
(trace.json, the schema in the README), `optiscope replay` runs them through optiscope's
optimizer with the same hyperparameters, and the script prints the largest relative difference
between torch's parameters and optiscope's after every step (f32 on both sides: expect ~1e-6).
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

# torch optimizer and the optiscope config with the same hyperparameters.
OPTIMIZERS = {
    "adamw": (lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.01),
              {"name": "adamw", "lr": 0.01, "weight_decay": 0.01}),
    "adam": (lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.001, amsgrad=True),
             {"name": "adam", "lr": 0.01, "weight_decay": 0.001, "amsgrad": True}),
    "sgd": (lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
            {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
}


def flat(t):
    return t.detach().reshape(-1).tolist()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("optiscope", help="path to the optiscope binary")
    ap.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adamw")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    make_opt, config = OPTIMIZERS[args.optimizer]
    opt = make_opt(model.parameters())
    x, y = torch.randn(64, 8), torch.randn(64, 1)

    trace = {"optimizer": config,
             "params": {n: {"shape": list(p.shape), "data": flat(p)} for n, p in model.named_parameters()},
             "grads": []}
    torch_params = []
    for _ in range(args.steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        trace["grads"].append({n: flat(p.grad) for n, p in model.named_parameters()})
        opt.step()
        torch_params.append({n: flat(p) for n, p in model.named_parameters()})

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "trace.json"
        path.write_text(json.dumps(trace))
        out = subprocess.run([args.optiscope, "replay", str(path)], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"optiscope replay failed: {out.stderr.strip()}")
    steps = json.loads(out.stdout)["steps"]

    worst = 0.0
    for t, (ours, theirs) in enumerate(zip(steps, torch_params), 1):
        errs = {n: float(np.max(np.abs(np.array(ours["params"][n]) - np.array(v))) / max(np.max(np.abs(v)), 1e-12))
                for n, v in theirs.items()}
        worst = max(worst, *errs.values())
        print(f"step {t:2d}: max relative difference " + "  ".join(f"{n} {e:.1e}" for n, e in errs.items()))
    print(f"{args.optimizer}: largest relative difference over {args.steps} steps: {worst:.2e}")
    sys.exit(0 if worst < 1e-5 else 1)


if __name__ == "__main__":
    main()

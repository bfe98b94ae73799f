"""Record gradients from PyTorch training runs, replay them with `optiscope replay`, compare.

    pip install torch numpy
    python3 examples/torch_replay.py target/release/optiscope            # every optimizer, one table
    python3 examples/torch_replay.py target/release/optiscope --optimizer muon-f32   # one, step by step
    options: --optimizer all|sgd|adam|adamw|muon|muon-f32|muon-f32-eps0  --steps N  --backend cpu|gpu|auto  --verbose

For each optimizer that torch and optiscope both have, a small tanh MLP (8-16-16-1, 64 random
samples, MSE loss, seed 0) is trained for --steps steps with the torch optimizer. Before each
`opt.step()` the gradients are recorded; after it, the parameters. The gradients become an optiscope
trace (trace.json, the schema in the README), `optiscope replay` runs them through optiscope's
optimizer, and the parameters after every step are compared with torch's. optiscope's config is
copied field by field from the torch optimizer's `param_groups[0]` (defaults included, so betas,
eps, dampening... are the values torch actually used, not two libraries' defaults that happen to
agree).

Rows of the table:

    sgd            torch.optim.SGD   momentum 0.9, nesterov, L2 weight decay
    adam           torch.optim.Adam  amsgrad, L2 weight decay (added to the gradient)
    adamw          torch.optim.AdamW decoupled weight decay
    muon           torch.optim.Muon as shipped: Newton-Schulz runs in bfloat16
    muon-f32       torch.optim.Muon with its module-level `_zeropower_via_newtonschulz` replaced by
                   the same function minus the bfloat16 cast (float32 throughout); everything else
                   is torch's own code. muon vs muon-f32 is the bfloat16 effect.
    muon-f32-eps0  as muon-f32, but optiscope gets eps 0 (torch keeps its eps 1e-7): see below.
                   muon-f32 vs muon-f32-eps0 is the effect of the two eps conventions.

Muon. torch.optim.Muon accepts 2-D parameters only, so the Muon rows use the MLP without biases:
every parameter (16x8, 16x16, 1x16) is a matrix, and optiscope orthogonalizes all of them too (role
`auto`: rank >= 2 is a matrix), so its aux_adam is unused. Field mapping torch -> optiscope: lr,
momentum, nesterov, ns_steps, ns_coefficients, eps, weight_decay carry over as they are;
adjust_lr_fn None -> "original" (torch treats None as "original": lr * sqrt(max(1, rows/cols)));
orthogonalizer "newton_schulz". Both sides keep the momentum buffer in the EMA form
`B <- lerp(B, g, 1 - mu)`, Nesterov input `lerp(g, B, mu)` (so says torch's code,
torch/optim/_muon.py `_single_tensor_muon`; its docstring writes `B <- mu B + g`). The two forms
differ by the factor 1 - mu, which the Frobenius normalization in Newton-Schulz removes except
through eps, whose weight eps / ||X||_F the factor changes. One semantic difference is left: torch
normalizes by max(||X||_F, eps) (`norm().clamp(min=eps)`), optiscope by ||X||_F + eps. Mapping
eps -> eps therefore scales optiscope's Newton-Schulz input by 1 - eps/||X||_F (about 1e-5 for the
update norms here, 0.014..0.05); the quintic iteration does not preserve scale, so this shifts the
update by several times 1e-5 of its size, about as much as f32 rounding does. optiscope's eps 0 is
exactly torch's clamp whenever ||X||_F > eps, which the script checks before every step of that
row, so muon-f32-eps0 is the row that measures f32 rounding alone. Newton-Schulz amplifies rounding
along small singular directions (the 16x16 update's smallest singular value is ~1e-4 of its norm):
in f32 one call is off by up to ~1e-5 of max|O| on either side, so the Muon rows' `step` column sits
above the other optimizers'; in bfloat16 the muon row differs by a large fraction of one update.

Differences, per parameter tensor a (optiscope) and b (torch) after step t, computed in float64 from
the exact f32 values of both sides:

    abs_t  = max_i |a_i - b_i|
    rel_t  = max_i |a_i - b_i| / max(max_i |b_i|, 1e-30)      (relative to the tensor's size)
    step_t = max_i |a_i - b_i| / max(max_i |b_i - b0_i|, 1e-30) (b0: torch's parameters before the
                                                                step; relative to the update size)

The table shows the largest of each over all tensors and all steps. `step` is the sterner measure
(parameters are much larger than one step's update, so `rel` dilutes an error in the update; and
differences accumulate over the steps while the denominator is a single step). Its floor in f32 is
about ulp(|param|) / |update|, a few 1e-6 here.
The check column is "ok" when rel < 1e-5 (f32 rounding on both sides gives ~1e-7..1e-6) and "FAIL"
otherwise; the bfloat16 Muon row is reported without a check, since torch's own bfloat16 rounding
(8-bit mantissa, ~4e-3 relative per element) is the expected difference there. The exit status is
1 when any checked row fails.
"""
import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.optim._muon as torch_muon

TOLERANCE = 1e-5
TINY = 1e-30


def _newton_schulz_f32(grad, ns_coefficients, ns_steps, eps):
    """torch.optim._muon._zeropower_via_newtonschulz (torch 2.15) with float32 instead of bfloat16."""
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(grad.shape) != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    a, b, c = ns_coefficients
    ortho_grad = grad.to(dtype=torch.float32, copy=True)
    if grad.size(0) > grad.size(1):
        ortho_grad = ortho_grad.T
    ortho_grad.div_(ortho_grad.norm().clamp(min=eps))
    for _ in range(ns_steps):
        gram_matrix = ortho_grad @ ortho_grad.T
        gram_update = torch.addmm(gram_matrix, gram_matrix, gram_matrix, beta=b, alpha=c)
        ortho_grad = torch.addmm(ortho_grad, gram_update, ortho_grad, beta=a)
    if grad.size(0) > grad.size(1):
        ortho_grad = ortho_grad.T
    return ortho_grad


@contextlib.contextmanager
def float32_newton_schulz():
    """Runs torch.optim.Muon with Newton-Schulz in float32 (its step looks the function up in the
    module's globals on every call, so replacing the module attribute takes effect)."""
    original = torch_muon._zeropower_via_newtonschulz
    torch_muon._zeropower_via_newtonschulz = _newton_schulz_f32
    try:
        yield
    finally:
        torch_muon._zeropower_via_newtonschulz = original


def _copy(group, keys):
    out = {}
    for k in keys:
        v = group[k]
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


def sgd_config(group):
    return {"name": "sgd", **_copy(group, ["lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"])}


def adam_config(name):
    return lambda group: {"name": name, **_copy(group, ["lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"])}


def muon_config(group):
    cfg = {"name": "muon", **_copy(group, ["lr", "momentum", "nesterov", "ns_steps", "ns_coefficients", "eps",
                                           "weight_decay"])}
    # torch: None means "original" (_adjust_lr); "spectral_unclamped" has no optiscope counterpart.
    adjust = group["adjust_lr_fn"] or "original"
    if adjust not in ("original", "match_rms_adamw"):
        raise SystemExit(f"torch adjust_lr_fn {adjust!r} has no optiscope counterpart")
    cfg["adjust_lr_fn"] = adjust
    cfg["orthogonalizer"] = "newton_schulz"
    return cfg


@dataclass
class Case:
    name: str
    torch_cls: type
    kwargs: dict
    to_optiscope: object  # param_groups[0] -> optiscope optimizer config
    bias: bool = True  # torch.optim.Muon takes 2-D parameters only
    checked: bool = True
    context: object = contextlib.nullcontext
    note: str = ""
    optiscope_overrides: dict = None  # fields set differently from the field-by-field copy


MUON_KWARGS = dict(lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.01, adjust_lr_fn=None)
CASES = [
    Case("sgd", torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3), sgd_config),
    Case("adam", torch.optim.Adam, dict(lr=0.01, weight_decay=1e-3, amsgrad=True), adam_config("adam")),
    Case("adamw", torch.optim.AdamW, dict(lr=0.01, weight_decay=0.01), adam_config("adamw")),
    Case("muon", torch.optim.Muon, MUON_KWARGS, muon_config, bias=False, checked=False, note="NS in bf16"),
    Case("muon-f32", torch.optim.Muon, MUON_KWARGS, muon_config, bias=False, context=float32_newton_schulz,
         note="NS patched to f32"),
    Case("muon-f32-eps0", torch.optim.Muon, MUON_KWARGS, muon_config, bias=False, context=float32_newton_schulz,
         note="NS patched to f32; optiscope eps 0", optiscope_overrides={"eps": 0.0}),
]
BY_NAME = {c.name: c for c in CASES}


def check_eps_equivalence(opt, name):
    """Before a Muon step: optiscope's `||X|| + 0` equals torch's `max(||X||, eps)` only if every
    Newton-Schulz input X (the Nesterov blend of the updated buffer and g) has ||X||_F > eps."""
    group = opt.param_groups[0]
    mu, eps = group["momentum"], group["eps"]
    for p in group["params"]:
        buf = opt.state[p]["momentum_buffer"] if p in opt.state else torch.zeros_like(p)
        buf = buf.lerp(p.grad, 1 - mu)
        x = p.grad.lerp(buf, mu) if group["nesterov"] else buf
        if not x.norm() > eps:
            sys.exit(f"{name}: ||X||_F = {x.norm():.3g} <= eps {eps:g}: optiscope eps 0 is not torch's clamp")


def cpu_name():
    """The CPU model (Linux /proc/cpuinfo; platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU unknown"


def flat(t):
    return t.detach().reshape(-1).tolist()


def describe(case):
    args = ", ".join(f"{k}={v}" for k, v in case.kwargs.items())
    text = f"{case.torch_cls.__name__}({args})"
    return f"{text} [{case.note}]" if case.note else text


def run_case(case, binary, steps, backend, verbose):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16, bias=case.bias), torch.nn.Tanh(),
                                torch.nn.Linear(16, 16, bias=case.bias), torch.nn.Tanh(),
                                torch.nn.Linear(16, 1, bias=case.bias))
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    opt = case.torch_cls(model.parameters(), **case.kwargs)
    config = {**case.to_optiscope(opt.param_groups[0]), **(case.optiscope_overrides or {})}

    trace = {"optimizer": config,
             "params": {n: {"shape": list(p.shape), "data": flat(p)} for n, p in model.named_parameters()},
             "grads": []}
    torch_params = [{n: flat(p) for n, p in model.named_parameters()}]
    with case.context():
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            trace["grads"].append({n: flat(p.grad) for n, p in model.named_parameters()})
            if case.optiscope_overrides and "eps" in case.optiscope_overrides:
                check_eps_equivalence(opt, case.name)
            opt.step()
            torch_params.append({n: flat(p) for n, p in model.named_parameters()})

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "trace.json"
        path.write_text(json.dumps(trace))
        out = subprocess.run([binary, "replay", str(path), "--backend", backend], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{case.name}: optiscope replay failed: {out.stderr.strip()}")
    replayed = json.loads(out.stdout)["steps"]
    if len(replayed) != steps:
        sys.exit(f"{case.name}: optiscope replayed {len(replayed)} steps, expected {steps}")

    worst = {"rel": 0.0, "abs": 0.0, "step": 0.0}
    if verbose:
        print(f"{case.name}: optiscope config {json.dumps(config)}")
    for t in range(1, steps + 1):
        per = {}
        for n, theirs in torch_params[t].items():
            a = np.asarray(replayed[t - 1]["params"][n], dtype=np.float64)
            b = np.asarray(theirs, dtype=np.float64)
            b0 = np.asarray(torch_params[t - 1][n], dtype=np.float64)
            d = float(np.max(np.abs(a - b)))
            per[n] = {"abs": d,
                      "rel": d / max(float(np.max(np.abs(b))), TINY),
                      "step": d / max(float(np.max(np.abs(b - b0))), TINY)}
        for k in worst:
            worst[k] = max(worst[k], *(e[k] for e in per.values()))
        if verbose:
            print(f"  step {t:2d}: rel " + "  ".join(f"{n} {e['rel']:.1e}" for n, e in per.items())
                  + f"   | vs step {max(e['step'] for e in per.values()):.1e}")
    return config, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("optiscope", help="path to the optiscope binary")
    ap.add_argument("--optimizer", choices=["all", *BY_NAME], default="all")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--backend", choices=["cpu", "gpu", "auto"], default="cpu",
                    help="optiscope replay --backend (default cpu)")
    ap.add_argument("--verbose", action="store_true", help="print every step (implied by a single --optimizer)")
    args = ap.parse_args()
    if args.steps < 1:
        ap.error("--steps must be at least 1")

    cases = CASES if args.optimizer == "all" else [BY_NAME[args.optimizer]]
    verbose = args.verbose or len(cases) == 1
    rows = []
    for case in cases:
        _, worst = run_case(case, args.optiscope, args.steps, args.backend, verbose)
        check = ("ok" if worst["rel"] < TOLERANCE else "FAIL") if case.checked else "-"
        rows.append((case.name, describe(case), f"{worst['rel']:.2e}", f"{worst['abs']:.2e}",
                     f"{worst['step']:.2e}", check))

    print(f"torch {torch.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"machine: {platform.platform()} ({platform.machine()}, {cpu_name()}, {os.cpu_count()} CPUs); "
          f"torch on CPU, float32; optiscope replay --backend {args.backend}")
    print(f"largest difference over {args.steps} steps, optiscope vs torch "
          f"(rel: /max|torch param|, step: /max|torch update|; check: rel < {TOLERANCE:g})")
    header = ("optimizer", "torch config", "max rel", "max abs", "max vs step", "check")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*header))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print(fmt.format(*r))
    sys.exit(1 if any(r[5] == "FAIL" for r in rows) else 0)


if __name__ == "__main__":
    main()

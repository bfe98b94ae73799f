#!/usr/bin/env python3
"""Replay check: optiscope's `replay` subcommand against the independent float64 reference.

Usage:
    python3 tests/replay/check_replay.py [OPTISCOPE_BIN] [extra args passed to `replay`, e.g. --backend cpu]
    OPTISCOPE_BIN=target/debug/optiscope python3 tests/replay/check_replay.py --backend cpu

The binary is argv[1] when it does not start with '-', else $OPTISCOPE_BIN, else
<repo>/target/debug/optiscope. Every remaining argument is appended to `BIN replay TRACE.json`.
Set OPTISCOPE_KEEP_TRACES=DIR to write the traces (and the binary's outputs) there.

What it does:
  0. runs reference.py's self-test against the spec's published numbers (one check);
  1. for every optimizer, replays random traces (fixed seed; random hyperparameters covering the
     config flags; params [7], [5,3] tall, [3,6] wide, [4,2,3] 3-D, [2] role diagonal, ...; 3-6
     gradient steps of magnitude 0.1-1) and compares params and eval_params after every step with the
     reference: per tensor max|a-b| / max(max|b|, 1e-12) <= 1e-5 (AdaBlock, whose f32 eigendecompositions
     meet float64 eigh: 1e-4);
  1b. replays tensors of rank >= 3 whose answer depends on how they are read (a stack [b, m, n] as b
     matrices, a conv filter [o, i, kh, kw] as one [o, i*kh*kw] matrix with that shape's factor),
     each checked to differ from the wrong reading, so that the case can catch it;
  2. replays the spec's vectors (baselines, Muon two-step, SpecGD tiny, Schedule-Free 3 steps, AMUSE 3
     steps, ProxGen two Adam-prox steps per regularizer, AdaBlock two steps for groups 1/2/4 and clipping) and compares the binary with the published numbers to 1e-6 relative.
Prints the worst error per optimizer, every failure, and finally `N passed, M failed`; exits 1 on failure.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import reference as ref  # noqa: E402

TOL_RANDOM = 1e-5
TOL_SPEC = 1e-6
SEED = 20260521
TRACES_PER_OPTIMIZER = 8
OPTIMIZERS = ["sgd", "adam", "adamw", "muon", "specgd", "sgd_schedulefree", "adamw_schedulefree", "amuse",
              "proxgen", "prox_sgd", "adamw_subgradient", "adablock"]
# Methods without parameter groups.
NO_GROUPS = {"proxgen", "prox_sgd", "adamw_subgradient", "adablock"}
# AdaBlock's f32 eigendecompositions against float64 eigh: the 1e-4 (steps along near-null
# eigen-directions amplify f32 rounding of m).
TOL_BY_OPTIMIZER = {"adablock": 1e-4}
MATRIX_METHODS = {"muon", "specgd", "amuse"}


# ----------------------------------------------------------------------------------------------
# Random traces

def _choice(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _u(rng, lo, hi):
    return float(rng.uniform(lo, hi))


def _aux_adam(rng):
    return {"lr": _u(rng, 1e-3, 0.05), "betas": [_u(rng, 0.8, 0.95), _choice(rng, [0.9, 0.95, 0.999])],
            "eps": _choice(rng, [1e-10, 1e-8, 1e-3]), "weight_decay": _choice(rng, [0.0, 0.01, 0.1])}


def _ns_fields(rng, cfg, allow_svd=True):
    kinds = ["newton_schulz", "polar_express"] + (["svd"] if allow_svd else [])
    cfg["orthogonalizer"] = _choice(rng, kinds)
    cfg["ns_steps"] = int(_choice(rng, [3, 5, 5, 7]))
    # NS coefficient sets: the default (as JSON numbers) or f32-exact alternatives (classic cubic, quintic)
    coeffs = _choice(rng, [None, None, [1.5, -0.5, 0.0], [1.875, -1.25, 0.375]])
    if coeffs is not None:
        cfg["ns_coefficients"] = coeffs
    if rng.random() < 0.3:
        cfg["eps"] = 1e-6
    cfg["rank_tol"] = _choice(rng, [1e-6, 1e-4, 1e-3])


def random_config(name, rng, i):
    """A valid random config for optimizer `name` (trace index i steers some flags for coverage)."""
    c = {"name": name}
    if name == "sgd":
        c["lr"] = _u(rng, 0.01, 0.3)
        c["momentum"] = _choice(rng, [0.0, 0.5, 0.9]) if i > 0 else 0.9
        c["nesterov"] = bool(c["momentum"] > 0 and (i % 2 == 0))
        c["dampening"] = 0.0 if c["nesterov"] or c["momentum"] == 0 else _choice(rng, [0.0, 0.1, 0.3])
        c["weight_decay"] = _choice(rng, [0.0, 0.01, 0.1])
        c["maximize"] = bool(i % 3 == 1)
    elif name in ("adam", "adamw"):
        c["lr"] = _u(rng, 1e-3, 0.05)
        c["betas"] = [_u(rng, 0.8, 0.95), _choice(rng, [0.9, 0.99, 0.999])]
        c["eps"] = _choice(rng, [1e-8, 1e-3, 0.05])
        c["weight_decay"] = _choice(rng, [0.0, 0.01, 0.1])
        c["amsgrad"] = bool(i % 2 == 1)
        c["maximize"] = bool(i % 4 == 2)
        c["eps_mode"] = "before_bias_correction" if (i // 2) % 2 == 1 else "after_bias_correction"
    elif name == "muon":
        c["lr"] = _u(rng, 0.01, 0.1)
        c["momentum"] = _choice(rng, [0.0, 0.5, 0.9, 0.95])
        c["nesterov"] = bool(i % 2 == 0)
        c["weight_decay"] = _choice(rng, [0.0, 0.01, 0.1])
        c["adjust_lr_fn"] = ["original", "match_rms_adamw", "none"][i % 3]
        _ns_fields(rng, c)
        c["orthogonalizer"] = ["newton_schulz", "polar_express", "svd", "newton_schulz"][i % 4]
        c["aux_adam"] = _aux_adam(rng)
    elif name == "specgd":
        c["lr"] = _u(rng, 0.01, 0.1)
        c["weight_decay"] = _choice(rng, [0.0, 0.01, 0.1])
        c["rank_tol"] = _choice(rng, [1e-6, 1e-4, 1e-3])
        if i % 4 != 0:
            c["adjust_lr_fn"] = ["original", "match_rms_adamw", "none"][i % 3]
        if i % 2 == 0:
            c["aux_adam"] = _aux_adam(rng)
    elif name == "sgd_schedulefree":
        c["lr"] = _u(rng, 0.05, 1.0)
        c["momentum"] = _choice(rng, [0.5, 0.8, 0.9, 0.98, 1.0])
        c["weight_decay"] = _choice(rng, [0.0, 0.01, 0.1])
        c["warmup_steps"] = int(_choice(rng, [0, 1, 2, 4]))
        c["r"] = _choice(rng, [0.0, 1.0, 2.0])
        c["weight_lr_power"] = _choice(rng, [0.0, 1.0, 2.0])
    elif name == "adamw_schedulefree":
        c["lr"] = _u(rng, 0.005, 0.1)
        c["betas"] = [_choice(rng, [0.5, 0.8, 0.9, 0.95, 1.0]), _choice(rng, [0.9, 0.99, 0.999])]
        c["eps"] = _choice(rng, [1e-8, 1e-3])
        c["weight_decay"] = _choice(rng, [0.0, 0.01, 0.1])
        c["warmup_steps"] = int(_choice(rng, [0, 1, 2, 4]))
        c["r"] = _choice(rng, [0.0, 1.0, 2.0])
        c["weight_lr_power"] = _choice(rng, [0.0, 1.0, 2.0])
        c["variant"] = "paper" if i % 2 == 1 else "current"
    elif name == "amuse":
        c["lr"] = _u(rng, 0.01, 0.1)
        c["momentum"] = _choice(rng, [0.5, 0.9, 0.95])
        c["weight_decay"] = _choice(rng, [0.0, 0.01, 0.1])
        c["beta1"] = _u(rng, 0.5, 0.9)
        c["rho"] = _choice(rng, [0.0, 0.3, 0.8, 1.0])
        c["warmup_steps"] = [2, 3, 1, 2][i % 4]               # T0 = 1: c_T0 = 1, so beta jumps to 1 (rho > 0)
        c["r"] = _choice(rng, [0.0, 1.0])
        c["weight_lr_power"] = _choice(rng, [1.0, 2.0, 2.0])
        c["weight_decay_at_y"] = _choice(rng, [0.0, 0.0, 0.05])
        c["explicit_x"] = bool(i % 2 == 1)
        if i % 3 != 0:
            c["adjust_lr_fn"] = ["original", "match_rms_adamw", "none"][i % 3]
        _ns_fields(rng, c)
        c["orthogonalizer"] = ["newton_schulz", "polar_express", "svd", "newton_schulz"][i % 4]
        c["aux"] = {"lr": _u(rng, 1e-3, 0.05), "beta2": _choice(rng, [0.9, 0.99, 0.999]),
                    "eps": _choice(rng, [1e-10, 1e-3]), "weight_decay": _choice(rng, [0.0, 0.01, 0.1])}
    elif name in ("proxgen", "adamw_subgradient"):
        c["lr"] = _u(rng, 1e-3, 0.05)
        c["betas"] = [_u(rng, 0.8, 0.95), _choice(rng, [0.9, 0.99, 0.999])]
        c["eps"] = _choice(rng, [1e-8, 1e-3])
        c["weight_decay"] = _choice(rng, [0.0, 0.01, 0.1])
        c["regularizer"] = ["l1", "l0", "l1/2", "l2/3"][i % 4]
        c["penalty"] = _choice(rng, [0.0, 0.05, 0.3, 1.0]) if i >= 4 else 0.3
    elif name == "adablock":
        c["lr"] = _u(rng, 1e-3, 0.05)
        c["betas"] = [_u(rng, 0.8, 0.95), _choice(rng, [0.9, 0.99, 0.999])]
        c["delta"] = _choice(rng, [1e-4, 1e-3])
        c["eps"] = _choice(rng, [1e-8, 1e-4])
        c["weight_decay"] = _choice(rng, [0.0, 0.01, 0.1])
        c["groups"] = [2, 3, 4, 1, 6, 32, 2, 5, 3][i % 9]
        c["jitter"] = _choice(rng, [1e-6, 1e-4])
        c["clipping"] = bool(i % 3 == 2)
        if c["clipping"]:
            c["final_lr"] = _u(rng, 0.005, 0.05)
            c["gamma"] = _choice(rng, [1e-3, 0.3, 1.0])
    elif name == "prox_sgd":
        c["lr"] = _u(rng, 0.01, 0.3)
        c["momentum"] = _choice(rng, [0.0, 0.5, 0.9])
        c["weight_decay"] = _choice(rng, [0.0, 0.01, 0.1])
        c["regularizer"] = ["l1", "l0", "l1/2", "l2/3"][i % 4]
        c["penalty"] = _choice(rng, [0.05, 0.3, 1.0])
    return c


def adablock_shapes(groups):
    """Shapes whose output size the block size divides (or is below): two blocks per input unit, one,
    fewer outputs than groups, a rank-3 tensor read as [shape[0], rest], a one-row weight, vectors."""
    return {"vec7": ([7], None), "two": ([2 * groups, 3], None), "one": ([groups, 5], None),
            "few": ([min(groups, 3) if groups > 3 else 2 * groups, 4], None), "cube": ([groups, 2, 3], None),
            "row": ([1, 4], None), "diag": ([2], "diagonal")}


def random_params(name, rng, i, scalar=False, cfg=None):
    """(params dict, gradient shaping dict name -> callable(rng, step) -> array)."""
    shapes = {"vec7": ([7], None), "tall": ([5, 3], None), "wide": ([3, 6], None), "cube": ([4, 2, 3], None),
              "diag": ([2], "diagonal")}
    if name in MATRIX_METHODS:
        shapes["diag3"] = ([3], "diagonal")           # one component gets ~1e-5 gradients (svd drops it)
        if i % 2 == 0:
            shapes["col5"] = ([5, 1], "matrix")       # an explicit [5, 1] column matrix
            shapes["matvec"] = ([3, 2], "vector")     # a matrix forced to the auxiliary/fallback optimizer
        else:
            shapes["gain4"] = ([4], "auto")
        if name == "specgd" or i % 4 == 2:
            shapes["lowrank"] = ([4, 3], None)        # rank-1 gradients (svd keeps one direction)
    if name == "adablock":
        shapes = adablock_shapes(cfg["groups"])
    if scalar:
        shapes = {"scalar": ([], None), "vec7": ([7], None), "tall": ([5, 3], None)}
        if name == "adablock":
            shapes["tall"] = ([5 * cfg["groups"], 3], None)
    params = {}
    for n, (shape, role) in shapes.items():
        entry = {"shape": shape, "data": (rng.standard_normal(int(np.prod(shape, dtype=np.int64))) * 0.5).tolist()}
        if role is not None:
            entry["role"] = role
        params[n] = entry
    return params


def random_grads(params, rng, steps, zero_step=None):
    grads = []
    for s in range(steps):
        g = {}
        for n, e in params.items():
            shape = e["shape"]
            size = int(np.prod(shape, dtype=np.int64))
            scale = _u(rng, 0.1, 1.0)
            if n == "lowrank":
                a = rng.standard_normal(shape[0])
                b = rng.standard_normal(int(np.prod(shape[1:])))
                v = np.outer(a, b).ravel()
                v = v / np.abs(v).max() * scale
            else:
                v = rng.standard_normal(size) * scale
            if n == "diag3":
                v[1] *= 1e-5
            if zero_step is not None and s == zero_step and n == "wide":
                v = np.zeros(size)
            g[n] = v.tolist()
        grads.append(g)
    return grads


def random_param_groups(name, rng, params, i):
    groups = []
    names = list(params)
    if i % 2 == 1 or rng.random() < 0.3:
        sub = [n for n in names if rng.random() < 0.5] or [names[0]]
        g = {"params": sub}
        if rng.random() < 0.8:
            g["lr"] = _u(rng, 0.005, 0.05)
        if rng.random() < 0.7:
            g["weight_decay"] = _choice(rng, [0.0, 0.05])
        groups.append(g)
    if name in MATRIX_METHODS and i % 4 in (1, 2) and "vec7" in params and "tall" in params:
        groups.append({"params": ["vec7"], "use_muon": True})       # 1-D param orthogonalized as diag(v)
        groups.append({"params": ["tall"], "use_muon": False, "lr": _u(rng, 0.005, 0.05)})  # matrix -> aux
    return groups


def random_traces():
    rng = np.random.default_rng(SEED)
    out = []
    for name in OPTIMIZERS:
        for i in range(TRACES_PER_OPTIMIZER + 1):
            scalar = i == TRACES_PER_OPTIMIZER                   # last trace: includes a 0-D parameter
            cfg = random_config(name, rng, i)
            params = random_params(name, rng, i, scalar=scalar, cfg=cfg)
            if "lowrank" in params and cfg.get("rank_tol", 1e-6) < 1e-4:
                # rank-1 gradients: keep the threshold well above f32 round-off of the null singular values
                cfg["rank_tol"] = 1e-4
            groups = [] if name in NO_GROUPS else random_param_groups(name, rng, params, i)
            if groups:
                cfg["param_groups"] = groups
            steps = int(rng.integers(3, 7))
            zero_step = 1 if name == "specgd" and i % 2 == 0 and not scalar else None
            grads = random_grads(params, rng, steps, zero_step)
            label = f"{name} #{i}" + (" (with a 0-D param)" if scalar else "")
            out.append((name, label, {"optimizer": cfg, "params": params, "grads": grads}))
    return out


def reading_traces():
    """Traces whose answer depends on how a matrix method reads a tensor of rank >= 3: a stack
    [b, m, n] is b matrices (not one [b, m*n]); a conv filter [o, i, kh, kw] is one [o, i*kh*kw]
    matrix with the shape factor of that flattened shape (not kh/kw). Each comes with the trace of
    the wrong reading, which must give a different answer (else the case could not catch the bug)."""
    rng = np.random.default_rng(SEED + 1)
    out = []
    for name, cfg in [("muon", {"name": "muon", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.01}),
                      ("amuse", {"name": "amuse", "lr": 0.05, "warmup_steps": 2, "beta1": 0.6, "rho": 0.3}),
                      ("specgd", {"name": "specgd", "lr": 0.05, "adjust_lr_fn": "original"})]:
        for label, shape, wrong_shape, wrong_cfg in [
            ("stack [3, 4, 2]", [3, 4, 2], [3, 8], {}),
            ("conv [16, 1, 3, 3]", [16, 1, 3, 3], [16, 9], {"adjust_lr_fn": "none"}),
        ]:
            size = int(np.prod(shape))
            data = (rng.standard_normal(size) * 0.5).tolist()
            grads = [{"w": (rng.standard_normal(size) * 0.3).tolist()} for _ in range(3)]
            trace = {"optimizer": dict(cfg), "params": {"w": {"shape": shape, "data": data}}, "grads": grads}
            wrong = {"optimizer": dict(cfg, **wrong_cfg),
                     "params": {"w": {"shape": wrong_shape, "data": data}}, "grads": grads}
            out.append((f"{name} {label}", trace, wrong))
    return out


# ----------------------------------------------------------------------------------------------
# Running the binary and comparing

def run_binary(binary, extra, trace_path, timeout=60):
    try:
        proc = subprocess.run([binary, "replay", trace_path] + extra, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return None, f"binary not found: {binary}"
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout}s"
    except OSError as e:
        return None, f"could not run {binary}: {e}"
    if proc.returncode != 0:
        return None, f"exit status {proc.returncode}: {proc.stderr.strip()[-2000:]}"
    try:
        return json.loads(proc.stdout), None
    except json.JSONDecodeError as e:
        return None, f"stdout is not JSON ({e}): {proc.stdout[:500]!r}"


def compare(got, want, names_by_step, tol):
    """Compares binary output `got` with `want` (lists of steps). Returns (worst error, list of problems)."""
    problems = []
    worst = 0.0
    steps = got.get("steps") if isinstance(got, dict) else None
    if not isinstance(steps, list) or len(steps) != len(want):
        n = len(steps) if isinstance(steps, list) else "no"
        return float("inf"), [f"expected {len(want)} steps, got {n}"]
    for si, (gs, ws) in enumerate(zip(steps, want)):
        for kind in ("params", "eval_params"):
            for n in names_by_step(ws, kind):
                b = ws[kind][n]
                a = (gs.get(kind) or {}).get(n)
                if a is None:
                    problems.append(f"step {si + 1} {kind}.{n}: missing")
                    worst = float("inf")
                    continue
                try:
                    e = ref.rel_err(a, b)
                except (TypeError, ValueError):
                    e = float("inf")
                if not e <= tol:                     # also catches NaN
                    problems.append(f"step {si + 1} {kind}.{n}: rel err {e:.3e} (tol {tol:g})")
                worst = max(worst, e) if e == e else float("inf")
    return worst, problems


def all_names(step, kind):
    return list(step.get(kind, {}))


def main(argv):
    args = argv[1:]
    if args and not args[0].startswith("-"):
        binary, extra = args[0], args[1:]
    else:
        binary = os.environ.get("OPTISCOPE_BIN") or os.path.join(HERE, "..", "..", "target", "debug", "optiscope")
        extra = args
    t0 = time.time()
    keep = os.environ.get("OPTISCOPE_KEEP_TRACES")
    workdir = keep or tempfile.mkdtemp(prefix="optiscope-replay-")
    os.makedirs(workdir, exist_ok=True)
    passed = failed = 0
    failures = []
    print(f"binary: {binary} {' '.join(extra)}".rstrip())
    print(f"traces: {workdir}")

    # 0. the reference itself against the spec
    sp, sf, msgs = ref.self_test(verbose=False)
    if sf == 0:
        passed += 1
        print(f"ok   reference self-test ({sp} spec checks)")
    else:
        failed += 1
        failures.append("reference self-test:\n    " + "\n    ".join(msgs))
        print(f"FAIL reference self-test ({sf} of {sp + sf} spec checks failed)")

    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"warning: {binary} is not an executable file; every replay will fail")

    def write(fname, obj):
        path = os.path.join(workdir, fname)
        with open(path, "w") as f:
            json.dump(obj, f)
        return path

    # 1. random traces vs the reference
    worst_by_opt = {}
    for idx, (name, label, trace) in enumerate(random_traces()):
        want = ref.replay(trace)["steps"]
        path = write(f"random_{idx:03d}_{name}.json", trace)
        got, err = run_binary(binary, extra, path)
        if err is None:
            if keep:
                write(f"random_{idx:03d}_{name}.out.json", got)
            worst, problems = compare(got, want, all_names, TOL_BY_OPTIMIZER.get(name, TOL_RANDOM))
        else:
            worst, problems = float("inf"), [err]
        w = worst_by_opt.setdefault(name, [0.0, ""])
        if worst > w[0] or not w[1]:
            worst_by_opt[name] = [worst, label]
        if problems:
            failed += 1
            failures.append(f"{label} [{path}]\n    config: {json.dumps(trace['optimizer'])}\n    "
                            + "\n    ".join(problems[:12]) + ("\n    ..." if len(problems) > 12 else ""))
        else:
            passed += 1

    # 1b. tensors of rank >= 3 read as the spec says (stacks per matrix, conv filters flattened)
    for idx, (label, trace, wrong) in enumerate(reading_traces()):
        want = ref.replay(trace)["steps"]
        other = ref.replay(wrong)["steps"]
        gap = max(ref.rel_err(np.ravel(w["params"]["w"]).tolist(), np.ravel(o["params"]["w"]).tolist())
                  for w, o in zip(want, other))
        path = write(f"reading_{idx:02d}.json", trace)
        got, err = run_binary(binary, extra, path)
        problems = [err] if err is not None else compare(got, want, all_names, TOL_RANDOM)[1]
        if not gap > 100 * TOL_RANDOM:
            problems.append(f"the wrong reading differs by only {gap:.2e}: the case cannot catch it")
        if problems:
            failed += 1
            failures.append(f"reading: {label} [{path}]\n    " + "\n    ".join(problems[:12]))
        else:
            passed += 1
            print(f"ok   reading {label} (the wrong reading differs by {gap:.2e})")

    # 2. spec vectors vs the published numbers
    spec_worst = {}
    for idx, (label, trace, expected) in enumerate(ref.spec_vector_traces()):
        path = write(f"spec_{idx:02d}.json", trace)
        got, err = run_binary(binary, extra, path)
        if err is None:
            if keep:
                write(f"spec_{idx:02d}.out.json", got)
            worst, problems = compare(got, expected, all_names, TOL_SPEC)
        else:
            worst, problems = float("inf"), [err]
        spec_worst[label] = worst
        if problems:
            failed += 1
            failures.append(f"spec vector: {label} [{path}]\n    config: {json.dumps(trace['optimizer'])}\n    "
                            + "\n    ".join(problems[:12]))
        else:
            passed += 1

    print("\nworst relative error per optimizer (random traces, tol %g unless stated):" % TOL_RANDOM)
    for name in OPTIMIZERS:
        w, label = worst_by_opt.get(name, [float("nan"), ""])
        tol = f", tol {TOL_BY_OPTIMIZER[name]:g}" if name in TOL_BY_OPTIMIZER else ""
        print(f"  {name:20s} {w:.3e}  ({label}{tol})")
    print("spec vectors (tol %g):" % TOL_SPEC)
    for label, w in spec_worst.items():
        print(f"  {w:.3e}  {label}")
    if failures:
        print("\nFAILURES:")
        for f in failures:
            print("- " + f)
        tensors = {}
        for f in failures:
            for n in sorted(set(re.findall(r"(?:eval_)?params\.([A-Za-z0-9_]+):", f))):
                tensors[n] = tensors.get(n, 0) + 1
        if tensors:
            print("failing tensors (number of failed traces): "
                  + ", ".join(f"{n} ({k})" for n, k in sorted(tensors.items(), key=lambda kv: -kv[1])))
    if not keep and not failures:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\n(took {time.time() - t0:.1f}s)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

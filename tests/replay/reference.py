#!/usr/bin/env python3
"""Independent float64 numpy reference of optiscope's optimizers, for replay checks.

Written from docs/spec `optimizers.md` (sections 0-4 and 9), the numpy vector scripts in
`spec/vectors/`, and the documented JSON config schema of the Rust config structs (field names,
defaults, enum spellings). It deliberately does not follow the Rust executor code.

Methods (tag "name" of the config):
    sgd, adam, adamw                    PyTorch semantics (spec 0)
    muon, specgd                        orthogonalized updates + auxiliary AdamW (spec 1, 2)
    sgd_schedulefree, adamw_schedulefree memory-efficient Schedule-Free form (spec 3.5)
    amuse                               official AMUSE semantics (spec 4.2)

Usage:
    python3 reference.py --self-test      check against the spec's published numbers
    python3 reference.py TRACE.json       replay a trace, print {"steps": [...]} like `optiscope replay`

Trace schema:
    {"optimizer": {"name": ..., ...config},
     "params": {"NAME": {"shape": [...], "data": [...flat row-major...], "role": "auto|matrix|vector|diagonal"}},
     "grads": [{"NAME": [...flat...]}, ...]}
Only numpy and the standard library are used.
"""
import json
import math
import sys

import numpy as np

# ----------------------------------------------------------------------------------------------
# Constants

MUON_NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)

# Polar Express per-iteration coefficients (spec 1.1, modded-nanogpt); iterations past the 5th reuse the last.
POLAR_EXPRESS_COEFFICIENTS = (
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)
POLAR_EXPRESS_NORM_FACTOR = 1.02
POLAR_EXPRESS_NORM_EPS = 1e-6

# ----------------------------------------------------------------------------------------------
# Config schema: defaults of every field (serde `default` + `deny_unknown_fields`)

AUX_ADAM_DEFAULTS = {"lr": 3e-4, "betas": [0.9, 0.95], "eps": 1e-10, "weight_decay": 0.0}
AMUSE_AUX_DEFAULTS = {"lr": 3e-4, "beta2": 0.999, "eps": 1e-10, "weight_decay": 0.0}

DEFAULTS = {
    "sgd": {"lr": 1e-3, "momentum": 0.0, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False,
            "maximize": False, "param_groups": []},
    "adam": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0, "amsgrad": False,
             "maximize": False, "eps_mode": "after_bias_correction", "param_groups": []},
    "adamw": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-2, "amsgrad": False,
              "maximize": False, "eps_mode": "after_bias_correction", "param_groups": []},
    "muon": {"lr": 0.02, "momentum": 0.95, "nesterov": True, "ns_steps": 5,
             "ns_coefficients": list(MUON_NS_COEFFICIENTS), "eps": 1e-7, "weight_decay": 0.0,
             "adjust_lr_fn": "original", "orthogonalizer": "newton_schulz", "rank_tol": 1e-6,
             "aux_adam": AUX_ADAM_DEFAULTS, "param_groups": []},
    "specgd": {"lr": 0.02, "weight_decay": 0.0, "rank_tol": 1e-6, "adjust_lr_fn": "none",
               "aux_adam": AUX_ADAM_DEFAULTS, "param_groups": []},
    "sgd_schedulefree": {"lr": 1.0, "momentum": 0.9, "weight_decay": 0.0, "warmup_steps": 0, "r": 0.0,
                         "weight_lr_power": 2.0, "param_groups": []},
    "adamw_schedulefree": {"lr": 0.0025, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0,
                           "warmup_steps": 0, "r": 0.0, "weight_lr_power": 2.0, "variant": "current",
                           "param_groups": []},
    "amuse": {"lr": 0.02, "momentum": 0.95, "weight_decay": 0.0, "beta1": 0.9, "rho": 1.0, "warmup_steps": 0,
              "r": 0.0, "weight_lr_power": 2.0, "weight_decay_at_y": 0.0, "adjust_lr_fn": "match_rms_adamw",
              "orthogonalizer": "newton_schulz", "ns_steps": 5, "ns_coefficients": list(MUON_NS_COEFFICIENTS),
              "eps": 1e-7, "rank_tol": 1e-6, "explicit_x": False, "aux": AMUSE_AUX_DEFAULTS,
              "param_groups": []},
    # ProxGen (abcdxyzpqrst/proxgen opt.py) and its C = I member; no parameter groups.
    "proxgen": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-2, "regularizer": "l1",
                "penalty": 0.0},
    "prox_sgd": {"lr": 1e-3, "momentum": 0.0, "weight_decay": 0.0, "regularizer": "l1", "penalty": 0.0},
    # ProxGen's subgradient baseline: AdamW on f + penalty * R with R's subgradient, no prox.
    "adamw_subgradient": {"lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 1e-2,
                          "regularizer": "l1", "penalty": 0.0},
    # AdaBlockW (AdaBlock's official optimizer file); final_lr/gamma from its randomized variant.
    "adablock": {"lr": 1e-3, "betas": [0.9, 0.999], "delta": 1e-4, "eps": 1e-4, "weight_decay": 0.0, "groups": 10,
                 "jitter": 1e-6, "clipping": False, "final_lr": 0.5, "gamma": 1e-3},
}
REGULARIZERS = ("l1", "l0", "l1/2", "l2/3")
NESTED = {"aux_adam": AUX_ADAM_DEFAULTS, "aux": AMUSE_AUX_DEFAULTS}
GROUP_KEYS = {"params", "lr", "weight_decay", "use_muon"}
ROLES = ("auto", "matrix", "vector", "diagonal")


class ConfigError(ValueError):
    pass


def resolve_config(config):
    """Fill defaults, reject unknown fields and invalid values. Returns a new dict."""
    config = dict(config)
    name = config.pop("name", None)
    if name not in DEFAULTS:
        raise ConfigError(f"unknown optimizer name {name!r}")
    out = {}
    for k, v in DEFAULTS[name].items():
        out[k] = json.loads(json.dumps(v))
    for k, v in config.items():
        if k not in out:
            raise ConfigError(f"{name}: unknown field {k!r}")
        if k in NESTED:
            sub = dict(NESTED[k])
            for kk, vv in v.items():
                if kk not in sub:
                    raise ConfigError(f"{name}.{k}: unknown field {kk!r}")
                sub[kk] = vv
            out[k] = sub
        else:
            out[k] = v
    for g in out.get("param_groups", []):
        if set(g) - GROUP_KEYS:
            raise ConfigError(f"param_groups: unknown field(s) {sorted(set(g) - GROUP_KEYS)}")
    out["name"] = name
    _validate(out)
    return out


def _validate(c):
    name = c["name"]

    def req(cond, msg):
        if not cond:
            raise ConfigError(f"{name}: {msg}")

    def unit(v):
        return 0.0 <= v < 1.0

    req(c["lr"] > 0 and math.isfinite(c["lr"]), "lr must be > 0")
    req(c["weight_decay"] >= 0, "weight_decay must be >= 0")
    for g in c.get("param_groups", []):
        req(g.get("lr") is None or g["lr"] > 0, "group lr must be > 0")
        req(g.get("weight_decay") is None or g["weight_decay"] >= 0, "group weight_decay must be >= 0")
    if name == "sgd":
        req(c["momentum"] >= 0 and c["dampening"] >= 0, "momentum, dampening >= 0")
        req(not c["nesterov"] or (c["momentum"] > 0 and c["dampening"] == 0), "nesterov needs momentum > 0, dampening 0")
    if name in ("adam", "adamw"):
        req(unit(c["betas"][0]) and unit(c["betas"][1]), "betas in [0, 1)")
        req(c["eps_mode"] in ("after_bias_correction", "before_bias_correction"), "eps_mode")
    if name in ("muon", "amuse"):
        req(unit(c["momentum"]), "momentum in [0, 1)")
        req(1 <= c["ns_steps"] <= 100, "ns_steps in 1..=100")
    if name in ("muon", "specgd", "amuse"):
        req(0 <= c["rank_tol"] < 1, "rank_tol in [0, 1)")
        req(c["adjust_lr_fn"] in ("original", "match_rms_adamw", "none"), "adjust_lr_fn")
    if name in ("muon", "amuse"):
        req(c["orthogonalizer"] in ("newton_schulz", "polar_express", "svd"), "orthogonalizer")
    if name in ("muon", "specgd"):
        a = c["aux_adam"]
        req(a["lr"] > 0 and unit(a["betas"][0]) and unit(a["betas"][1]) and a["eps"] >= 0 and a["weight_decay"] >= 0, "aux_adam")
    if name == "sgd_schedulefree":
        req(0 < c["momentum"] <= 1, "momentum in (0, 1]")
    if name == "adamw_schedulefree":
        req(0 < c["betas"][0] <= 1 and unit(c["betas"][1]), "betas")
        req(c["variant"] in ("current", "paper"), "variant")
    if name in ("proxgen", "prox_sgd", "adamw_subgradient"):
        req(c["regularizer"] in REGULARIZERS, "regularizer")
        req(c["penalty"] >= 0, "penalty must be >= 0")
    if name in ("proxgen", "adamw_subgradient"):
        req(unit(c["betas"][0]) and unit(c["betas"][1]) and c["eps"] > 0, "betas, eps")
    if name == "prox_sgd":
        req(c["momentum"] >= 0, "momentum must be >= 0")
    if name == "adablock":
        req(unit(c["betas"][0]) and unit(c["betas"][1]), "betas in [0, 1)")
        req(isinstance(c["groups"], int) and 1 <= c["groups"] <= 32, "groups in 1..=32")
        req(c["delta"] >= 0 and c["jitter"] >= 0 and c["eps"] > 0, "delta, jitter >= 0, eps > 0")
        req(c["delta"] > 0 or c["jitter"] > 0, "delta and jitter cannot both be 0")
        req(c["final_lr"] > 0 and c["gamma"] > 0, "final_lr, gamma > 0")
    if name == "amuse":
        req(c["warmup_steps"] >= 1, "warmup_steps must be >= 1")
        req(0 < c["beta1"] < 1, "beta1 in (0, 1)")
        a = c["aux"]
        req(a["lr"] > 0 and unit(a["beta2"]) and a["eps"] >= 0 and a["weight_decay"] >= 0, "aux")


def resolve_groups(groups, names):
    """Per-parameter overrides {name: {"lr", "weight_decay", "use_muon"}} (later groups win)."""
    out = {n: {"lr": None, "weight_decay": None, "use_muon": None} for n in names}
    for g in groups:
        for n in g["params"]:
            if n not in out:
                raise ConfigError(f"param_groups names parameter {n!r}, which does not exist")
            for k in ("lr", "weight_decay", "use_muon"):
                if g.get(k) is not None:
                    out[n][k] = g[k]
    return out


def _pick(override, default):
    return default if override is None else override


# ----------------------------------------------------------------------------------------------
# Orthogonalizers (all float64)

def newton_schulz(G, coeffs=MUON_NS_COEFFICIENTS, steps=5, eps=1e-7):
    a, b, c = (float(x) for x in coeffs)
    X = np.array(G, dtype=np.float64)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    X = X / (np.linalg.norm(X) + eps)
    for _ in range(steps):
        A = X @ X.T
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    return X.T if tall else X


def polar_express(G, steps=5):
    X = np.array(G, dtype=np.float64)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    X = X / (np.linalg.norm(X) * POLAR_EXPRESS_NORM_FACTOR + POLAR_EXPRESS_NORM_EPS)
    for i in range(steps):
        a, b, c = POLAR_EXPRESS_COEFFICIENTS[min(i, len(POLAR_EXPRESS_COEFFICIENTS) - 1)]
        A = X @ X.T
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    return X.T if tall else X


def svd_polar(G, rank_tol=1e-6):
    G = np.array(G, dtype=np.float64)
    if not np.any(G):
        return np.zeros_like(G)
    U, S, Vt = np.linalg.svd(G, full_matrices=False)
    keep = S > rank_tol * S.max()
    return U[:, keep] @ Vt[keep, :]


def orthogonalize(G, cfg):
    kind = cfg["orthogonalizer"]
    if kind == "newton_schulz":
        return newton_schulz(G, cfg["ns_coefficients"], cfg["ns_steps"], cfg["eps"])
    if kind == "polar_express":
        return polar_express(G, cfg["ns_steps"])
    if kind == "svd":
        return svd_polar(G, cfg["rank_tol"])
    raise ConfigError(kind)


def _scalar_poly(x, coeff_seq):
    for a, b, c in coeff_seq:
        x = a * x + b * x ** 3 + c * x ** 5
    return x


def orthogonalize_diagonal(v, cfg):
    """The diagonal of orth(diag(v)), computed elementwise (NS acts on each singular value)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    kind = cfg["orthogonalizer"]
    if kind == "newton_schulz":
        x = v / (np.linalg.norm(v) + cfg["eps"])
        return _scalar_poly(x, [tuple(float(c) for c in cfg["ns_coefficients"])] * cfg["ns_steps"])
    if kind == "polar_express":
        x = v / (np.linalg.norm(v) * POLAR_EXPRESS_NORM_FACTOR + POLAR_EXPRESS_NORM_EPS)
        seq = [POLAR_EXPRESS_COEFFICIENTS[min(i, 4)] for i in range(cfg["ns_steps"])]
        return _scalar_poly(x, seq)
    if kind == "svd":
        m = np.abs(v).max() if v.size else 0.0
        if m == 0:
            return np.zeros_like(v)
        return np.where(np.abs(v) > cfg["rank_tol"] * m, np.sign(v), 0.0)
    raise ConfigError(kind)


def shape_scale(adjust_lr_fn, rows, cols):
    if adjust_lr_fn == "original":
        return math.sqrt(max(1.0, rows / cols))
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    if adjust_lr_fn == "none":
        return 1.0
    raise ConfigError(adjust_lr_fn)


def matrix_stack_shape(shape):
    """(batch, rows, cols): how the matrix methods read a tensor of rank >= 2 (optimizers.md 1.1, 1.2, 8).

    [m, n] is one matrix; a conv filter [out, in, kh, kw] is flattened to one [out, in*kh*kw]
    matrix (KellerJordan/Muon #60/#63), whose shape sets the shape factor; [b, m, n] and rank >= 5
    are stacks of m x n matrices over the leading dims, each orthogonalized on its own."""
    shape = [int(d) for d in shape]
    if len(shape) == 2:
        return 1, shape[0], shape[1]
    if len(shape) == 4:
        return 1, shape[0], shape[1] * shape[2] * shape[3]
    if len(shape) >= 3:
        return int(np.prod(shape[:-2], dtype=np.int64)), shape[-2], shape[-1]
    raise ValueError(f"no matrix reading for shape {shape}")


def route_of(shape, role, use_muon):
    """'matrix' | 'diagonal' | 'aux' for the matrix methods.

    role auto: ndim >= 2 -> matrix, else aux; role matrix needs ndim >= 2. use_muon (param group)
    overrides the role: false -> aux; true -> matrix for ndim >= 2, diagonal otherwise."""
    role = role or "auto"
    if role == "auto":
        base = "matrix" if len(shape) >= 2 else "aux"
    elif role == "matrix":
        if len(shape) < 2:
            raise ConfigError(f"role 'matrix' needs a tensor of rank >= 2, got shape {list(shape)}")
        base = "matrix"
    elif role == "diagonal":
        base = "diagonal"
    elif role == "vector":
        base = "aux"
    else:
        raise ConfigError(f"role {role!r}")
    if use_muon is None:
        return base
    if not use_muon:
        return "aux"
    return "matrix" if len(shape) >= 2 else "diagonal"


def orth_update(u, shape, route, cfg, adjust_lr_fn):
    """Scaled orthogonalized update for a matrix/diagonal parameter, in the parameter's shape."""
    if route == "matrix":
        batch, rows, cols = matrix_stack_shape(shape)
        stack = u.reshape(batch, rows, cols)
        O = np.stack([orthogonalize(m, cfg) for m in stack]) * shape_scale(adjust_lr_fn, rows, cols)
        return O.reshape(shape)
    n = u.size
    return (orthogonalize_diagonal(u, cfg) * shape_scale(adjust_lr_fn, n, n)).reshape(shape)


# ----------------------------------------------------------------------------------------------
# Optimizers. Each holds a dict name -> np.ndarray (float64, param shape).

class _Base:
    def __init__(self, cfg, params):
        self.cfg = cfg
        self.names = list(params)
        self.shapes = {n: tuple(params[n]["shape"]) for n in self.names}
        self.roles = {n: params[n].get("role", "auto") for n in self.names}
        self.p = {}
        for n in self.names:
            data = np.array(params[n]["data"], dtype=np.float64)
            if data.size != int(np.prod(self.shapes[n], dtype=np.int64)):
                raise ValueError(f"param {n}: {data.size} values for shape {self.shapes[n]}")
            self.p[n] = data.reshape(self.shapes[n])
        self.groups = resolve_groups(cfg.get("param_groups", []), self.names)
        self.t = 0

    def lr_of(self, n, default=None):
        return _pick(self.groups[n]["lr"], self.cfg["lr"] if default is None else default)

    def wd_of(self, n, default=None):
        return _pick(self.groups[n]["weight_decay"], self.cfg["weight_decay"] if default is None else default)

    def step(self, grads):
        self.t += 1
        for n in self.names:
            g = np.array(grads[n], dtype=np.float64).reshape(self.shapes[n])
            self._step_param(n, g)

    def params(self):
        return {n: self.p[n].copy() for n in self.names}

    def eval_params(self):
        return self.params()


class SGD(_Base):
    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        self.buf = {}

    def _step_param(self, n, g):
        c = self.cfg
        if c["maximize"]:
            g = -g
        wd = self.wd_of(n)
        if wd != 0:
            g = g + wd * self.p[n]
        mu = c["momentum"]
        if mu != 0:
            if n not in self.buf:
                self.buf[n] = g.copy()
            else:
                self.buf[n] = mu * self.buf[n] + (1 - c["dampening"]) * g
            g = g + mu * self.buf[n] if c["nesterov"] else self.buf[n]
        self.p[n] = self.p[n] - self.lr_of(n) * g


def adam_update(state, p, g, t, lr, beta1, beta2, eps, wd, decoupled, amsgrad=False,
                eps_mode="after_bias_correction"):
    """One torch-style Adam/AdamW step on p; state dict holds m, v, vmax. Returns the new p."""
    if wd != 0:
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
    if "m" not in state:
        state["m"] = np.zeros_like(p)
        state["v"] = np.zeros_like(p)
        state["vmax"] = np.zeros_like(p)
    state["m"] = beta1 * state["m"] + (1 - beta1) * g
    state["v"] = beta2 * state["v"] + (1 - beta2) * g * g
    v = state["v"]
    if amsgrad:
        state["vmax"] = np.maximum(state["vmax"], v)
        v = state["vmax"]
    bc1 = 1 - beta1 ** t
    bc2 = 1 - beta2 ** t
    if eps_mode == "after_bias_correction":
        return p - (lr / bc1) * state["m"] / (np.sqrt(v) / math.sqrt(bc2) + eps)
    return p - (lr * math.sqrt(bc2) / bc1) * state["m"] / (np.sqrt(v) + eps)


class Adam(_Base):
    def __init__(self, cfg, params, decoupled):
        super().__init__(cfg, params)
        self.decoupled = decoupled
        self.state = {n: {} for n in self.names}

    def _step_param(self, n, g):
        c = self.cfg
        if c["maximize"]:
            g = -g
        self.p[n] = adam_update(self.state[n], self.p[n], g, self.t, self.lr_of(n), c["betas"][0], c["betas"][1],
                                c["eps"], self.wd_of(n), self.decoupled, c["amsgrad"], c["eps_mode"])


class Muon(_Base):
    """Muon (and SpecGD via specgd_as_muon): orthogonalized momentum for matrices, AdamW aux for the rest."""

    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        self.route = {n: route_of(self.shapes[n], self.roles[n], self.groups[n]["use_muon"]) for n in self.names}
        self.buf = {n: np.zeros(self.shapes[n]) for n in self.names}
        self.adam = {n: {} for n in self.names}

    def _step_param(self, n, g):
        c = self.cfg
        if self.route[n] == "aux":
            a = c["aux_adam"]
            self.p[n] = adam_update(self.adam[n], self.p[n], g, self.t, self.lr_of(n, a["lr"]), a["betas"][0],
                                    a["betas"][1], a["eps"], self.wd_of(n, a["weight_decay"]), True)
            return
        beta = c["momentum"]
        self.buf[n] = self.buf[n] + (1 - beta) * (g - self.buf[n])          # lerp(buf, g, 1-beta)
        u = g + beta * (self.buf[n] - g) if c["nesterov"] else self.buf[n]  # lerp(g, buf, beta)
        O = orth_update(u, self.shapes[n], self.route[n], c, c["adjust_lr_fn"])
        lr, wd = self.lr_of(n), self.wd_of(n)
        self.p[n] = self.p[n] * (1 - lr * wd) - lr * O


def specgd_as_muon(cfg):
    m = resolve_config({"name": "muon"})
    m.update(lr=cfg["lr"], momentum=0.0, nesterov=False, weight_decay=cfg["weight_decay"],
             adjust_lr_fn=cfg["adjust_lr_fn"], orthogonalizer="svd", rank_tol=cfg["rank_tol"],
             aux_adam=cfg["aux_adam"], param_groups=cfg["param_groups"])
    return m


def sf_weight_step(st, lr_k, r, weight_lr_power):
    """Schedule-Free averaging weight (spec 3.2): st holds k, lr_max, wsum. Returns c_{k+1}."""
    st["lr_max"] = max(st["lr_max"], lr_k)
    w = float(st["k"] + 1) ** r * st["lr_max"] ** weight_lr_power
    st["wsum"] += w
    st["k"] += 1
    return w / st["wsum"] if st["wsum"] != 0 else 0.0


def warmup_factor(k, warmup_steps):
    return (k + 1) / warmup_steps if k < warmup_steps else 1.0


class ScheduleFree(_Base):
    """Memory-efficient form (spec 3.5): self.p holds y, self.z holds z. A reference x/y/z copy runs
    alongside and is asserted equal."""

    def __init__(self, cfg, params, kind):
        super().__init__(cfg, params)
        self.kind = kind
        self.z = {n: self.p[n].copy() for n in self.names}
        self.v = {n: np.zeros(self.shapes[n]) for n in self.names}
        self.sched = {n: {"k": 0, "lr_max": -1.0, "wsum": 0.0} for n in self.names}
        # reference form (x, y, z explicit)
        self.ref = {n: {"x": self.p[n].copy(), "y": self.p[n].copy(), "z": self.p[n].copy()} for n in self.names}
        self.beta = cfg["momentum"] if kind == "sgd" else cfg["betas"][0]

    def _direction(self, n, g, y, k):
        """(γ_k, ĝ) for parameter n at step k (0-based); updates v."""
        c = self.cfg
        sched = warmup_factor(k, c["warmup_steps"])
        lr = self.lr_of(n)
        wd = self.wd_of(n)
        if self.kind == "sgd":
            gamma = lr * sched
            d = g + wd * y if wd != 0 else g
            return gamma, d
        b2, eps = c["betas"][1], c["eps"]
        bc2 = 1 - b2 ** (k + 1)
        self.v[n] = b2 * self.v[n] + (1 - b2) * g * g
        if c["variant"] == "current":
            gamma = lr * sched
            d = g / (np.sqrt(self.v[n] / bc2) + eps)
        else:
            gamma = lr * sched * math.sqrt(bc2)
            d = g / (np.sqrt(self.v[n]) + eps)
        if wd != 0:
            d = d + wd * y
        return gamma, d

    def _step_param(self, n, g):
        c = self.cfg
        st = self.sched[n]
        k = st["k"]
        y, z = self.p[n], self.z[n]
        gamma, d = self._direction(n, g, y, k)
        ck = sf_weight_step(st, gamma, c["r"], c["weight_lr_power"])
        beta = self.beta
        y = y + ck * (z - y)
        y = y + gamma * (beta * (1 - ck) - 1) * d
        z = z - gamma * d
        self.p[n], self.z[n] = y, z
        # reference form with the same direction (d depends on y only through the decay term, and the
        # reference y equals the efficient y up to rounding, asserted below)
        R = self.ref[n]
        R["z"] = R["z"] - gamma * d
        R["x"] = (1 - ck) * R["x"] + ck * R["z"]
        R["y"] = beta * R["x"] + (1 - beta) * R["z"]
        scale = max(1.0, float(np.abs(R["y"]).max()), float(np.abs(R["z"]).max()))
        err = max(float(np.abs(R["y"] - y).max()), float(np.abs(R["z"] - z).max()),
                  float(np.abs(R["x"] - self._x(n)).max()))
        assert err <= 1e-12 * scale / min(beta, 1.0), f"SF reference/efficient mismatch {err:.3e} for {n}"

    def _x(self, n):
        y, z = self.p[n], self.z[n]
        return y + (1 - 1 / self.beta) * (z - y)

    def eval_params(self):
        return {n: self._x(n) for n in self.names}


class Amuse(_Base):
    """AMUSE, official semantics (spec 4.2): self.p holds y; per-parameter z, momentum/v, scalars."""

    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        self.route = {n: route_of(self.shapes[n], self.roles[n], self.groups[n]["use_muon"]) for n in self.names}
        self.z = {n: None for n in self.names}
        self.x = {n: None for n in self.names}
        self.buf = {n: np.zeros(self.shapes[n]) for n in self.names}
        self.v = {n: np.zeros(self.shapes[n]) for n in self.names}
        self.sc = {n: {"k": 0, "wsum": 0.0, "c_T0": None, "beta": cfg["beta1"], "c": None, "lr": None}
                   for n in self.names}

    def _lr_wd(self, n):
        c = self.cfg
        if self.route[n] == "aux":
            return self.lr_of(n, c["aux"]["lr"]), self.wd_of(n, c["aux"]["weight_decay"])
        return self.lr_of(n), self.wd_of(n)

    def _schedule(self, n, base_lr):
        c = self.cfg
        s = self.sc[n]
        t = s["k"] + 1
        T0 = c["warmup_steps"]
        gamma = base_lr * min(1.0, t / T0)
        w = float(t) ** c["r"] * gamma ** c["weight_lr_power"]
        s["wsum"] += w
        ck = w / s["wsum"] if s["wsum"] > 0 else 1.0
        if t <= T0:
            if t == T0:
                s["c_T0"] = ck
            beta = c["beta1"]
        else:
            cw = s["c_T0"]
            S = (ck * (1 - cw)) / (cw * (1 - ck))
            beta = 1.0 - S ** c["rho"] * (1.0 - c["beta1"])
        s["k"] = t
        s["beta"], s["c"], s["lr"] = beta, ck, gamma
        return t, gamma, ck, beta

    def _step_param(self, n, g):
        c = self.cfg
        base_lr, wd = self._lr_wd(n)
        t, gamma, ck, beta = self._schedule(n, base_lr)
        y = self.p[n]
        if self.z[n] is None:
            self.z[n] = y.copy()
            if c["explicit_x"]:
                self.x[n] = y.copy()
        z = self.z[n]
        lam_y = c["weight_decay_at_y"]
        if lam_y != 0:
            z = z - gamma * lam_y * y
            y = y * (1 - gamma * lam_y * (1 - beta))
        if c["explicit_x"]:
            x = self.x[n]
        else:
            x = y + (1 - 1 / beta) * (z - y)            # y -> x with the NEW beta (official quirk)
        if self.route[n] == "aux":
            a = c["aux"]
            self.v[n] = a["beta2"] * self.v[n] + (1 - a["beta2"]) * g * g
            u = g / (np.sqrt(self.v[n] / (1 - a["beta2"] ** t)) + a["eps"])
            if wd != 0:
                u = u + wd * z
            z = z - gamma * u
        else:
            mu = c["momentum"]
            self.buf[n] = self.buf[n] + (1 - mu) * (g - self.buf[n])
            u = g + mu * (self.buf[n] - g)                 # Nesterov always on
            O = orth_update(u, self.shapes[n], self.route[n], c, c["adjust_lr_fn"])
            if wd != 0:
                z = z * (1 - gamma * wd)
            z = z - gamma * O
        x = x + ck * (z - x)
        y = x + (1 - beta) * (z - x)
        self.p[n], self.z[n] = y, z
        if c["explicit_x"]:
            self.x[n] = x

    def eval_params(self):
        out = {}
        for n in self.names:
            if self.z[n] is None:
                out[n] = self.p[n].copy()
            elif self.cfg["explicit_x"]:
                out[n] = self.x[n].copy()
            else:
                y, z = self.p[n], self.z[n]
                out[n] = y + (1 - 1 / self.sc[n]["beta"]) * (z - y)
        return out


def prox_lq(z, lam, reg):
    """argmin_x lam*|x|^q + (x - z)^2 / 2 per coordinate (lam > 0 elementwise), written from the
    closed forms of spec 5.3 in float64 (lam2 = 2*lam, the official code's parameterisation)."""
    z = np.asarray(z, dtype=np.float64)
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), z.shape)
    az = np.abs(z)
    if reg == "l1":
        return np.sign(z) * np.maximum(az - lam, 0.0)
    if reg == "l0":
        return np.where(az > np.sqrt(2.0 * lam), z, 0.0)
    lam2 = 2.0 * lam
    out = np.zeros_like(z)
    if reg == "l1/2":
        m = az > 1.5 * lam ** (2.0 / 3.0)
        phi = np.arccos((lam2[m] / 8.0) * (az[m] / 3.0) ** -1.5)
        out[m] = (2.0 / 3.0) * z[m] * (1.0 + np.cos((2.0 / 3.0) * (np.pi - phi)))
        return out
    m = az > 2.0 * (2.0 * lam / 3.0) ** 0.75
    phi = np.arccosh((27.0 / 16.0) * z[m] ** 2 * lam2[m] ** -1.5)
    a = (2.0 / np.sqrt(3.0)) * lam2[m] ** 0.25 * np.sqrt(np.cosh(phi / 3.0))
    out[m] = np.sign(z[m]) * ((a + np.sqrt(2.0 * az[m] / a - a * a)) / 2.0) ** 3
    return out


def subgradient_lq(x, reg):
    """d|x|^q/dx away from 0, and 0 at x = 0 (and everywhere for l0)."""
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    safe = np.where(ax == 0.0, 1.0, ax)
    if reg == "l1":
        return np.sign(x)
    if reg == "l0":
        return np.zeros_like(x)
    q = 0.5 if reg == "l1/2" else 2.0 / 3.0
    return np.where(ax == 0.0, 0.0, q * np.sign(x) * safe ** (q - 1.0))


class ProxGen(_Base):
    """ProxGen's Adam instance (adam=True) or proximal SGD: the prox acts on weight tensors only
    (role matrix, or auto with rank >= 2); other parameters take the plain step."""

    def __init__(self, cfg, params, adam, subgradient=False):
        super().__init__(cfg, params)
        self.adam = adam
        self.subgradient = subgradient
        self.m = {n: np.zeros(self.shapes[n]) for n in self.names}
        self.v = {n: np.zeros(self.shapes[n]) for n in self.names}

    def _regularized(self, n):
        role = self.roles[n]
        return role == "matrix" or (role == "auto" and len(self.shapes[n]) >= 2)

    def _step_param(self, n, g):
        c = self.cfg
        lr = c["lr"]
        if self.subgradient and self._regularized(n):
            g = g + c["penalty"] * subgradient_lq(self.p[n], c["regularizer"])
        p = self.p[n] * (1.0 - lr * c["weight_decay"])
        if self.adam:
            b1, b2 = c["betas"]
            self.m[n] = b1 * self.m[n] + (1.0 - b1) * g
            self.v[n] = b2 * self.v[n] + (1.0 - b2) * g * g
            denom = np.sqrt(self.v[n]) / math.sqrt(1.0 - b2 ** self.t) + c["eps"]
            z = p - (lr / (1.0 - b1 ** self.t)) * self.m[n] / denom
            lam = lr * c["penalty"] / denom
        else:
            self.m[n] = c["momentum"] * self.m[n] + g
            z = p - lr * self.m[n]
            lam = np.full(z.shape, lr * c["penalty"])
        if self._regularized(n) and c["penalty"] > 0 and not self.subgradient:
            z = prox_lq(z, lam, c["regularizer"])
        self.p[n] = z


class AdaBlock(_Base):
    """AdaBlockW in float64 with numpy's eigh: weights (role matrix, or auto with rank >= 2, read as
    [shape[0], rest]) get blocks of g = min(groups, out) consecutive output units per input unit
    (W.T.reshape(-1, g)), V_b + jitter*I eigendecomposed, steps step/(sqrt(max(s,0)) + delta);
    vectors get diagonal Adam with eps. Clipping clamps every step into
    [final_lr (1 - 1/(gamma t + 1)), final_lr (1 + 1/(gamma t))] (constant lr: eta/eta_base = 1)."""

    def __init__(self, cfg, params):
        super().__init__(cfg, params)
        self.m = {n: np.zeros(self.shapes[n]) for n in self.names}
        self.V = {}
        self.g = {}
        for n in self.names:
            shape = self.shapes[n]
            size = int(np.prod(shape, dtype=np.int64))
            role = self.roles[n]
            if (role == "matrix" or (role == "auto" and len(shape) >= 2)) and size > 0:
                out = shape[0]
                g = min(cfg["groups"], out)
                if out % g != 0:
                    raise ConfigError(f"adablock: groups {cfg['groups']} does not divide the output size {out} of {n}")
                self.g[n] = g
                self.V[n] = np.zeros((size // g, g, g))
            else:
                self.V[n] = np.zeros(shape)

    def _clip(self, e):
        c = self.cfg
        if not c["clipping"]:
            return e
        lo = c["final_lr"] * (1.0 - 1.0 / (c["gamma"] * self.t + 1.0))
        hi = c["final_lr"] * (1.0 + 1.0 / (c["gamma"] * self.t))
        return np.clip(e, lo, hi)

    def _step_param(self, n, g):
        c = self.cfg
        lr = c["lr"]
        b1, b2 = c["betas"]
        p = self.p[n] * (1.0 - lr * c["weight_decay"])
        self.m[n] = b1 * self.m[n] + (1.0 - b1) * g
        step = lr * math.sqrt(1.0 - b2 ** self.t) / (1.0 - b1 ** self.t)
        if n not in self.g:
            self.V[n] = b2 * self.V[n] + (1.0 - b2) * g * g
            self.p[n] = p - self._clip(step / (np.sqrt(self.V[n]) + c["eps"])) * self.m[n]
            return
        k = self.g[n]
        out = self.shapes[n][0]
        inp = g.size // out
        gb = g.reshape(out, inp).T.reshape(-1, k)
        mb = self.m[n].reshape(out, inp).T.reshape(-1, k)
        self.V[n] = b2 * self.V[n] + (1.0 - b2) * np.einsum("bi,bj->bij", gb, gb)
        S, Q = np.linalg.eigh(self.V[n] + c["jitter"] * np.eye(k))
        eff = self._clip(step / (np.sqrt(np.maximum(S, 0.0)) + c["delta"]))
        upd = np.einsum("bij,bj,bkj,bk->bi", Q, eff, Q, mb)
        self.p[n] = p - upd.reshape(inp, out).T.reshape(self.shapes[n])


def build(config, params):
    cfg = resolve_config(config)
    name = cfg["name"]
    if name == "sgd":
        return SGD(cfg, params)
    if name == "adam":
        return Adam(cfg, params, decoupled=False)
    if name == "adamw":
        return Adam(cfg, params, decoupled=True)
    if name == "muon":
        return Muon(cfg, params)
    if name == "specgd":
        return Muon(specgd_as_muon(cfg), params)
    if name == "sgd_schedulefree":
        return ScheduleFree(cfg, params, "sgd")
    if name == "adamw_schedulefree":
        return ScheduleFree(cfg, params, "adamw")
    if name == "amuse":
        return Amuse(cfg, params)
    if name == "proxgen":
        return ProxGen(cfg, params, adam=True)
    if name == "prox_sgd":
        return ProxGen(cfg, params, adam=False)
    if name == "adamw_subgradient":
        return ProxGen(cfg, params, adam=True, subgradient=True)
    if name == "adablock":
        return AdaBlock(cfg, params)
    raise ConfigError(name)


def replay(trace):
    """Replays a trace dict; returns {"steps": [{"params": {...}, "eval_params": {...}}, ...]} (flat lists)."""
    opt = build(trace["optimizer"], trace["params"])
    steps = []
    for g in trace["grads"]:
        opt.step(g)
        steps.append({"params": {n: a.ravel().tolist() for n, a in opt.params().items()},
                      "eval_params": {n: a.ravel().tolist() for n, a in opt.eval_params().items()}})
    return {"steps": steps}


def run_with_grad_fn(config, params, grad_fn, steps):
    """Runs `steps` steps with gradients computed at the current params (y for SF/AMUSE).
    Returns (grads list of flat dicts, list of (params, eval_params) dicts)."""
    opt = build(config, params)
    grads, states = [], []
    for _ in range(steps):
        g = {n: np.asarray(v, dtype=np.float64) for n, v in grad_fn(opt.params()).items()}
        grads.append({n: v.ravel().tolist() for n, v in g.items()})
        opt.step(g)
        states.append((opt.params(), opt.eval_params()))
    return grads, states


def P(arr, role=None):
    """A trace parameter entry from a nested list / array."""
    a = np.asarray(arr, dtype=np.float64)
    d = {"shape": list(a.shape), "data": a.ravel().tolist()}
    if role is not None:
        d["role"] = role
    return d


# ----------------------------------------------------------------------------------------------
# Published spec vectors (optimizers.md and vectors/*.out.txt, 10 significant digits)

BASE_P0 = [1.0, -2.0, 0.5]
BASE_GRADS = [[0.1, -0.2, 0.3], [-0.05, 0.4, 0.1], [0.2, 0.0, -0.3]]
BASELINE_CASES = [
    ("SGD lr=0.1", {"name": "sgd", "lr": 0.1},
     [[0.99, -1.98, 0.47], [0.995, -2.02, 0.46], [0.975, -2.02, 0.49]]),
    ("SGD lr=0.1 momentum=0.9", {"name": "sgd", "lr": 0.1, "momentum": 0.9},
     [[0.99, -1.98, 0.47], [0.986, -2.002, 0.433], [0.9624, -2.0218, 0.4297]]),
    ("SGD lr=0.1 momentum=0.9 dampening=0.1", {"name": "sgd", "lr": 0.1, "momentum": 0.9, "dampening": 0.1},
     [[0.99, -1.98, 0.47], [0.9855, -1.998, 0.434], [0.96345, -2.0142, 0.4286]]),
    ("SGD lr=0.1 momentum=0.9 nesterov", {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True},
     [[0.981, -1.962, 0.443], [0.9824, -2.0218, 0.3997], [0.94116, -2.03962, 0.42673]]),
    ("SGD lr=0.1 momentum=0.9 nesterov weight_decay=0.01",
     {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
     [[0.9791, -1.9582, 0.44205], [0.97782971, -2.01265942, 0.397505105],
      [0.9332097626, -2.023611225, 0.4230572848]]),
    ("Adam lr=0.01", {"name": "adam", "lr": 0.01},
     [[0.990000001, -1.990000001, 0.4900000003], [0.9873366309, -1.993661036, 0.4812893612],
      [0.9807555154, -1.996491026, 0.4808054915]]),
    ("Adam lr=0.01 weight_decay=0.1 (L2)", {"name": "adam", "lr": 0.01, "weight_decay": 0.1},
     [[0.9900000005, -1.99, 0.4900000003], [0.9817204807, -1.987355927, 0.4809193092],
      [0.9728278473, -1.982894175, 0.4785978715]]),
    ("AdamW lr=0.01 weight_decay=0.1", {"name": "adamw", "lr": 0.01, "weight_decay": 0.1},
     [[0.989000001, -1.988000001, 0.4895000003], [0.9853476309, -1.989673036, 0.4802998612],
      [0.9777811678, -1.990513353, 0.4793356917]]),
    ("AdamW lr=0.01 weight_decay=0.01 amsgrad", {"name": "adamw", "lr": 0.01, "weight_decay": 0.01, "amsgrad": True},
     [[0.989900001, -1.989800001, 0.4899500003], [0.9871376409, -1.993262056, 0.4811903662],
      [0.9804578117, -1.995891305, 0.4806583775]]),
]

NS_G = [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.25]]
NS_G_OUT = [[0.2402777446, 0.3859755769, 0.5978793478], [-0.880268485, 0.3455543301, 0.09711323517]]
NS_G_POLAR = [[0.3054499733, 0.5197460395, 0.7978498407], [-0.9222580783, 0.369975132, 0.1120644403]]

MUON_P0 = [[0.5, -0.25], [0.1, 0.2], [-0.3, 0.4]]
MUON_GRADS = [[[0.2, -0.1], [0.05, 0.3], [-0.4, 0.1]], [[-0.1, 0.2], [0.3, -0.05], [0.1, 0.1]]]
MUON_CASES = [
    ("keller", {"name": "muon", "lr": 0.02, "momentum": 0.95, "nesterov": True, "weight_decay": 0.1,
                "adjust_lr_fn": "original"},
     [[[0.4876533233, -0.243854998], [0.09712909884, 0.1829965302], [-0.2767576521, 0.393452987]],
      [[0.4871217614, -0.2549696679], [0.07125880965, 0.1756153576], [-0.269600293, 0.3816986589]]]),
    ("moonlight", {"name": "muon", "lr": 0.02, "momentum": 0.95, "nesterov": True, "weight_decay": 0.1,
                   "adjust_lr_fn": "match_rms_adamw"},
     [[[0.4957906752, -0.2479033523], [0.09904455507, 0.1949038296], [-0.2929957769, 0.3975744992]],
      [[0.4949246038, -0.2506891942], [0.09158418771, 0.1925298295], [-0.2905419363, 0.3936772948]]]),
    ("none", {"name": "muon", "lr": 0.02, "momentum": 0.95, "nesterov": True, "weight_decay": 0.1,
              "adjust_lr_fn": "none"},
     [[[0.4897354772, -0.2448908752], [0.09761921833, 0.1860433237], [-0.2809126003, 0.3945075835]],
      [[0.4891183224, -0.253874397], [0.07645958838, 0.1799433669], [-0.2749587593, 0.3847637057]]]),
    ("nesterov-false", {"name": "muon", "lr": 0.02, "momentum": 0.95, "nesterov": False, "weight_decay": 0.0,
                        "adjust_lr_fn": "original"},
     [[[0.4886532511, -0.2443549685], [0.09732911919, 0.1833965184], [-0.2773575196, 0.3942529338]],
      [[0.4834272161, -0.2502114946], [0.07727553417, 0.170182155], [-0.2614805181, 0.3837037632]]]),
]
MUON_BUF_AFTER_2 = [[0.0045, 0.00525], [0.017375, 0.01175], [-0.014, 0.00975]]

# SpecGD tiny vector: loss 1/2||BA - M||^2, M = diag(2,1,0), lr 0.1, exact polar (spec used tol 1e-12).
SPECGD_M = np.diag([2.0, 1.0, 0.0])
SPECGD_B0 = [[0.1, 0.0], [0.0, 0.05], [0.02, -0.01]]
SPECGD_A0 = [[0.1, 0.02, 0.0], [-0.03, 0.05, 0.01]]
SPECGD_CONFIG = {"name": "specgd", "lr": 0.1, "rank_tol": 1e-12}
SPECGD_EXPECTED = [
    {"B": [[0.1952102193, -0.03057778192], [0.03057781497, 0.1452102783], [0.01989332094, -0.009953571939]],
     "A": [[0.1999999292, 0.01988104252, 1.015389955e-06], [-0.02988104201, 0.1499999157, 0.009947867934]]},
    {"B": [[0.2941899237, -0.04482455513], [0.04482485709, 0.2441901197], [0.01969356572, -0.009810556074]],
     "A": [[0.2985526418, 0.03683281991, -8.21573292e-06], [-0.04683281424, 0.2485525172, 0.009799071596]]},
]


def specgd_grads(p):
    B, A = p["B"], p["A"]
    R = B @ A - SPECGD_M
    return {"B": R @ A.T, "A": B.T @ R}


# Schedule-Free: f(w) = 1/2 sum h w^2, gradient at y; w0 = [1, -1, 2]. Entries: (x, y, z) per step.
SF_H = np.array([1.0, 10.0, 0.1])
SF_W0 = [1.0, -1.0, 2.0]
SF_CASES = [
    ("SF-SGD", {"name": "sgd_schedulefree", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.01, "warmup_steps": 2},
     [([0.97475, -0.74975, 1.9945], [0.97475, -0.74975, 1.9945], [0.97475, -0.74975, 1.9945]),
      ([0.9353701, -0.4495501, 1.9857242], [0.9343856025, -0.4420451025, 1.985504805],
       [0.925525125, -0.374500125, 1.98353025]),
      ([0.9100227898, -0.3178640783, 1.979895655], [0.906854376, -0.3014033256, 1.979167087],
       [0.8783386521, -0.1532565512, 1.972609974])]),
    ("SF-AdamW current", {"name": "adamw_schedulefree", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8,
                          "weight_decay": 0.01, "warmup_steps": 2, "variant": "current"},
     [([0.9949500001, -0.99495, 1.9949], [0.9949500001, -0.99495, 1.9949], [0.9949500001, -0.99495, 1.9949]),
      ([0.9868906707, -0.9868906706, 1.986750623], [0.9866891875, -0.9866891874, 1.986546889],
       [0.9848758384, -0.9848758383, 1.984713279]),
      ([0.9815390947, -0.9815390946, 1.981328612], [0.9808701477, -0.9808701476, 1.98065086],
       [0.9748496247, -0.9748496245, 1.974551097])]),
    ("SF-AdamW paper", {"name": "adamw_schedulefree", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8,
                        "weight_decay": 0.01, "warmup_steps": 2, "variant": "paper"},
     [([0.9949984204, -0.994998419, 1.994996846], [0.9949984204, -0.994998419, 1.994996846],
       [0.9949984204, -0.994998419, 1.994996846]),
      ([0.9861283739, -0.9861283707, 1.986111665], [0.9860174429, -0.9860174396, 1.986000545],
       [0.9850190635, -0.98501906, 1.985000462]),
      ([0.9798227031, -0.9798226988, 1.979779688], [0.9793495149, -0.9793495106, 1.979304526],
       [0.9750908215, -0.9750908165, 1.975028066])]),
]
SF_C_WARMUP4 = [1.0, 0.8, 0.642857, 0.533333, 0.347826, 0.258065]


def sf_grads(p):
    return {"w": SF_H * p["w"]}


# AMUSE 3-step vector: Muon group "W" (lr 0.02, momentum 0.95, wd 0.1), fallback "b" (aux lr 0.01, wd 0.1).
AMUSE_W0 = [[0.5, -0.25, 0.1], [0.2, -0.3, 0.4]]
AMUSE_T = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]])
AMUSE_B0 = [1.0, -1.0, 2.0]
AMUSE_HB = np.array([1.0, 10.0, 0.1])
AMUSE_CONFIG = {"name": "amuse", "lr": 0.02, "momentum": 0.95, "weight_decay": 0.1, "beta1": 0.6, "rho": 0.8,
                "warmup_steps": 2, "r": 0.0, "weight_lr_power": 2.0,
                "aux": {"lr": 0.01, "beta2": 0.999, "eps": 1e-10, "weight_decay": 0.1}}
AMUSE_EXPECTED = [  # per step: lr, c, beta, W_y, W_z, W_x, b_y, b_z, b_x
    (0.01, 1.0, 0.6,
     [[0.5010115842, -0.2489722366, 0.09660020438], [0.2006847045, -0.2973774067, 0.3998520856]],
     [[0.5010115842, -0.2489722366, 0.09660020438], [0.2006847045, -0.2973774067, 0.3998520856]],
     [[0.5010115842, -0.2489722366, 0.09660020438], [0.2006847045, -0.2973774067, 0.3998520856]],
     [0.9945, -0.9945, 1.994], [0.9945, -0.9945, 1.994], [0.9945, -0.9945, 1.994]),
    (0.02, 0.8, 0.6,
     [[0.5027923623, -0.2471658608, 0.09062222552], [0.2018893468, -0.2927672874, 0.39959331]],
     [[0.5030351956, -0.2469195368, 0.08980704658], [0.2020536162, -0.2921386348, 0.3995580224]],
     [[0.5026304733, -0.2473300768, 0.09116567814], [0.2017798338, -0.2931863892, 0.399616835]],
     [0.984849128, -0.984849128, 1.983458503], [0.9835331, -0.9835331, 1.982021026],
     [0.98572648, -0.98572648, 1.984416821]),
    (0.02, 0.4444444444, 0.8896216271,
     [[0.5039235631, -0.2460208534, 0.08683077382], [0.2026539724, -0.2898444702, 0.3994302988]],
     [[0.5050584147, -0.2448720869, 0.08302693175], [0.2034210811, -0.2869120729, 0.3992667259]],
     [[0.5037827582, -0.2461633848, 0.08730272941], [0.2025587946, -0.2902083027, 0.3994505938]],
     [0.9787513086, -0.9787513086, 1.97678246], [0.9726329591, -0.9726329591, 1.970084345],
     [0.979510433, -0.979510433, 1.977613518]),
]
# beta_t table: beta1 0.6, rho 0.8, W 4 (t, c_t, beta_t), 6 decimals
AMUSE_BETA_TABLE = [(1, 1.0, 0.6), (2, 0.8, 0.6), (3, 0.642857, 0.6), (4, 0.533333, 0.6), (5, 0.347826, 0.782597),
                    (6, 0.258065, 0.845561), (7, 0.205128, 0.878368), (8, 0.170213, 0.898775),
                    (9, 0.145455, 0.912811), (10, 0.126984, 0.923114)]


def amuse_grads(p):
    return {"W": p["W"] - AMUSE_T, "b": AMUSE_HB * p["b"]}


# spec 5.2-5.3 (proxgen.out.txt): two ProxGen-Adam steps, lr 0.1, weight_decay 0, penalty 0.05,
# on the vector as a weight tensor [5, 1]
PROXGEN_P0 = [0.5, -0.02, 0.3, -0.8, 0.05]
PROXGEN_GRADS = [[0.1, 0.01, -0.2, 0.05, 0.3], [0.2, -0.01, -0.1, 0.0, 0.2]]
PROXGEN_CASES = [
    ("l1", [[0.350000015, 0.0, 0.3749999963, -0.8, -0.03333333056],
            [0.2218637886, 0.0, 0.4365904328, -0.7255491039, -0.1107550399]]),
    ("l0", [[0.40000001, 0.0, 0.399999995, -0.89999998, 0.0],
            [0.3034818135, 0.0, 0.493217953, -0.9670057865, 0.0]]),
    ("l1/2", [[0.358230571, 0.0, 0.379714702, -0.8456273414, 0.0],
              [0.2286512173, 0.0, 0.4493416338, -0.8352427317, 0.0]]),
    ("l2/3", [[0.3528272453, 0.0, 0.3769274154, -0.8290338314, 0.0],
              [0.221469524, 0.0, 0.4424752624, -0.7942068268, -0.06441667853]]),
]
PROX_Z = [-3.0, -1.2, -0.7, -0.2, 0.0, 0.15, 0.5, 0.9, 1.3, 2.5]
PROX_Z_OUT = {
    "l1": [-2.6, -0.8, -0.3, 0, 0, 0, 0.1, 0.5, 0.9, 2.1],
    "l0": [-3, -1.2, 0, 0, 0, 0, 0, 0.9, 1.3, 2.5],
    "l1/2": [-2.882193728, -1, 0, 0, 0, 0, 0, 0.6523842524, 1.110184145, 2.370088464],
    "l2/3": [-2.811050454, -0.9264560422, 0, 0, 0, 0, 0, 0.5802922698, 1.036501098, 2.297919794],
}


# spec 6 (adablock.out.txt): two AdaBlockW steps on W[4, 3], lr 0.01, for groups 1, 2, 4 and with
# spectrum clipping (final_lr 0.5; gamma 1e-3 does not bite, gamma 1 does at step 2)
ADABLOCK_W0 = [[0.5, -0.2, 0.1], [0.3, 0.4, -0.6], [-0.1, 0.2, 0.3], [0.0, -0.5, 0.25]]
ADABLOCK_GRADS = [[[0.1, -0.3, 0.2], [0.05, 0.2, -0.1], [-0.2, 0.1, 0.0], [0.3, -0.05, 0.1]],
                  [[-0.1, 0.1, 0.1], [0.2, -0.1, 0.05], [0.1, 0.1, -0.2], [0.0, 0.2, 0.1]]]
_ADABLOCK_G2 = [[[0.4916214068, -0.1917831069, 0.09126614951], [0.2958107034, 0.3945220712, -0.5956330748],
                 [-0.09452207125, 0.1916214068, 0.3], [-0.008216893131, -0.4958107034, 0.2407444397]],
                [[0.4892571281, -0.1857338855, 0.08171713442], [0.2865045894, 0.3969878146, -0.5968941922],
                 [-0.09754403979, 0.1827579484, 0.3049992452], [-0.01699617183, -0.4995029489, 0.2325106858]]]
ADABLOCK_CASES = [
    ("groups=1", {"groups": 1},
     [[[0.4907444397, -0.1901582662, 0.09027458943], [0.2919772894, 0.3902745894, -0.5907444397],
       [-0.09027458943, 0.1907444397, 0.3], [-0.009841733759, -0.4919772894, 0.2407444397]],
      [[0.4912470938, -0.1862152127, 0.08117221681], [0.2833663366, 0.3876739115, -0.5882496122],
       [-0.08767391154, 0.1811940123, 0.3072370361], [-0.01643619858, -0.497425035, 0.2311940123]]]),
    ("groups=2", {"groups": 2}, _ADABLOCK_G2),
    ("groups=4", {"groups": 4},
     [[[0.497382036, -0.1921461079, 0.09200460721], [0.298691018, 0.3947640719, -0.5960023036],
       [-0.09476407191, 0.197382036, 0.3], [-0.007853892135, -0.498691018, 0.2460023036]],
      [[0.4986099052, -0.1880820601, 0.08506071946], [0.2911452657, 0.3932871715, -0.595055357],
       [-0.09395593559, 0.1910974942, 0.3050499945], [-0.01396190877, -0.504792233, 0.2412678611]]]),
    ("clipping gamma=1e-3", {"groups": 2, "clipping": True, "final_lr": 0.5, "gamma": 1e-3}, _ADABLOCK_G2),
    ("clipping gamma=1", {"groups": 2, "clipping": True, "final_lr": 0.5, "gamma": 1.0},
     [_ADABLOCK_G2[0],
      [[0.4893408716, -0.1853354091, 0.08117590947], [0.2863371025, 0.3929636382, -0.5964584166],
       [-0.09499828743, 0.1826742049, 0.3054291112], [-0.01948233419, -0.4996704358, 0.2324082519]]]),
]


def spec_vector_traces():
    """The spec's vectors as replay traces: list of (label, trace, expected) where expected is a list
    (per step) of {"params": {name: flat}, "eval_params": {name: flat}} holding the published numbers
    (eval_params only where the spec gives them). Iterate-dependent gradients come from this reference."""
    out = []
    for label, cfg, ps in BASELINE_CASES:
        trace = {"optimizer": cfg, "params": {"p": P(BASE_P0)}, "grads": [{"p": g} for g in BASE_GRADS]}
        out.append((f"baseline {label}", trace, [{"params": {"p": p}, "eval_params": {"p": p}} for p in ps]))
    for label, cfg, ps in MUON_CASES:
        trace = {"optimizer": cfg, "params": {"W": P(MUON_P0)},
                 "grads": [{"W": np.ravel(g).tolist()} for g in MUON_GRADS]}
        out.append((f"muon two-step {label}", trace,
                    [{"params": {"W": np.ravel(p).tolist()}, "eval_params": {"W": np.ravel(p).tolist()}} for p in ps]))
    params = {"B": P(SPECGD_B0), "A": P(SPECGD_A0)}
    grads, _ = run_with_grad_fn(SPECGD_CONFIG, params, specgd_grads, 2)
    out.append(("specgd tiny B1/A1/B2/A2", {"optimizer": SPECGD_CONFIG, "params": params, "grads": grads},
                [{"params": {k: np.ravel(v).tolist() for k, v in e.items()},
                  "eval_params": {k: np.ravel(v).tolist() for k, v in e.items()}} for e in SPECGD_EXPECTED]))
    for label, cfg, rows in SF_CASES:
        params = {"w": P(SF_W0)}
        grads, _ = run_with_grad_fn(cfg, params, sf_grads, 3)
        out.append((f"schedulefree {label} 3 steps", {"optimizer": cfg, "params": params, "grads": grads},
                    [{"params": {"w": y}, "eval_params": {"w": x}} for (x, y, z) in rows]))
    params = {"W": P(AMUSE_W0), "b": P(AMUSE_B0)}
    grads, _ = run_with_grad_fn(AMUSE_CONFIG, params, amuse_grads, 3)
    out.append(("amuse 3-step (Muon group W + aux group b)", {"optimizer": AMUSE_CONFIG, "params": params, "grads": grads},
                [{"params": {"W": np.ravel(e[3]).tolist(), "b": e[6]},
                  "eval_params": {"W": np.ravel(e[5]).tolist(), "b": e[8]}} for e in AMUSE_EXPECTED]))
    for reg, ps in PROXGEN_CASES:
        cfg = {"name": "proxgen", "lr": 0.1, "weight_decay": 0.0, "regularizer": reg, "penalty": 0.05}
        trace = {"optimizer": cfg, "params": {"w": {"shape": [5, 1], "data": PROXGEN_P0}},
                 "grads": [{"w": g} for g in PROXGEN_GRADS]}
        out.append((f"proxgen two Adam-prox steps {reg}", trace,
                    [{"params": {"w": p}, "eval_params": {"w": p}} for p in ps]))
    for label, extra, ws in ADABLOCK_CASES:
        cfg = dict({"name": "adablock", "lr": 0.01}, **extra)
        trace = {"optimizer": cfg, "params": {"W": {"shape": [4, 3], "data": np.ravel(ADABLOCK_W0).tolist()}},
                 "grads": [{"W": np.ravel(g).tolist()} for g in ADABLOCK_GRADS]}
        out.append((f"adablock two steps {label}", trace,
                    [{"params": {"W": np.ravel(w).tolist()}, "eval_params": {"W": np.ravel(w).tolist()}} for w in ws]))
    return out


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-12))


# ----------------------------------------------------------------------------------------------
# Self-test against the spec's numbers

def self_test(verbose=True):
    """Returns (passed, failed, messages)."""
    results = []

    def check(label, got, want, tol=1e-8):
        e = rel_err(got, want)
        results.append((label, e <= tol, e))

    # NS5 / polar on the 2x3 vector, transpose symmetry, diagonal == matrix route
    check("NS5(G) 2x3", newton_schulz(NS_G), NS_G_OUT)
    check("NS5(G^T) = NS5(G)^T", newton_schulz(np.array(NS_G).T), np.array(NS_G_OUT).T)
    check("svd polar(G)", svd_polar(NS_G, 1e-12), NS_G_POLAR)
    check("polar express(G^T) = polar express(G)^T", polar_express(np.array(NS_G).T, 7), polar_express(NS_G, 7).T, 1e-14)
    rng = np.random.default_rng(7)
    R = rng.standard_normal((64, 32))
    sv = np.linalg.svd(polar_express(R), compute_uv=False)
    results.append(("polar express 64x32 Gaussian: singular values in [0.8, 1.2]", 0.8 <= sv.min() and sv.max() <= 1.2,
                    float(max(0.8 - sv.min(), sv.max() - 1.2, 0.0))))
    sv = np.linalg.svd(newton_schulz(R), compute_uv=False)
    results.append(("NS5 64x32 Gaussian: singular values in [0.68, 1.135] (spec 1.1 band)", 0.68 <= sv.min() and sv.max() <= 1.135,
                    float(max(0.68 - sv.min(), sv.max() - 1.135, 0.0))))
    check("NS5 scalar phi(0.3) = 1.079592",
          [_scalar_poly(0.3, [MUON_NS_COEFFICIENTS] * 5)], [1.079592], 1e-6)
    for kind in ("newton_schulz", "polar_express", "svd"):
        cfg = {"orthogonalizer": kind, "ns_coefficients": MUON_NS_COEFFICIENTS, "ns_steps": 6, "eps": 1e-7,
               "rank_tol": 1e-3}
        v = np.array([0.3, -1.2, 0.0, 2e-4, 0.7])
        check(f"diagonal route == matrix route ({kind})", orthogonalize_diagonal(v, cfg),
              np.diag(orthogonalize(np.diag(v), cfg)), 1e-12)
    # ProxGen's closed forms on the spec vector (lam' = 0.4)
    for reg, want in PROX_Z_OUT.items():
        check(f"prox {reg} on the spec vector", prox_lq(PROX_Z, 0.4, reg), want, 1e-9)
    for reg, ps in PROXGEN_CASES:
        opt = build({"name": "proxgen", "lr": 0.1, "weight_decay": 0.0, "regularizer": reg, "penalty": 0.05},
                    {"w": {"shape": [5, 1], "data": PROXGEN_P0}})
        for t, g in enumerate(PROXGEN_GRADS):
            opt.step({"w": g})
            check(f"proxgen {reg} p{t + 1}", np.ravel(opt.params()["w"]), ps[t], 1e-8)
    # AdaBlock: the official block layout and the two-step vectors
    W = np.arange(12.0).reshape(4, 3)
    check("adablock block layout W[4,3] g=2", W.T.reshape(-1, 2), [[0, 3], [6, 9], [1, 4], [7, 10], [2, 5], [8, 11]], 0.0)
    for label, extra, ws in ADABLOCK_CASES:
        opt = build(dict({"name": "adablock", "lr": 0.01}, **extra),
                    {"W": {"shape": [4, 3], "data": np.ravel(ADABLOCK_W0).tolist()}})
        for t, g in enumerate(ADABLOCK_GRADS):
            opt.step({"W": np.ravel(g).tolist()})
            check(f"adablock {label} W{t + 1}", opt.params()["W"], ws[t], 1e-8)
    # zero matrices
    check("svd polar(0) = 0", svd_polar(np.zeros((3, 2))), np.zeros((3, 2)), 0.0)
    check("NS5(0) = 0", newton_schulz(np.zeros((3, 2))), np.zeros((3, 2)), 0.0)

    # baselines
    for label, cfg, ps in BASELINE_CASES:
        opt = build(cfg, {"p": P(BASE_P0)})
        for i, g in enumerate(BASE_GRADS):
            opt.step({"p": g})
            check(f"baseline {label} p{i + 1}", opt.params()["p"], ps[i])
    # Muon two-step
    for label, cfg, ps in MUON_CASES:
        opt = build(cfg, {"W": P(MUON_P0)})
        for i, g in enumerate(MUON_GRADS):
            opt.step({"W": g})
            check(f"muon {label} p{i + 1}", opt.params()["W"], ps[i])
        if label != "nesterov-false":
            check(f"muon {label} momentum buffer", opt.buf["W"], MUON_BUF_AFTER_2, 1e-12)
    # SpecGD tiny vector
    _, states = run_with_grad_fn(SPECGD_CONFIG, {"B": P(SPECGD_B0), "A": P(SPECGD_A0)}, specgd_grads, 2)
    for i, (p, _) in enumerate(states):
        check(f"specgd B{i + 1}", p["B"], SPECGD_EXPECTED[i]["B"])
        check(f"specgd A{i + 1}", p["A"], SPECGD_EXPECTED[i]["A"])
    # Schedule-Free (the efficient/reference equality is asserted inside every step)
    for label, cfg, rows in SF_CASES:
        opt = build(cfg, {"w": P(SF_W0)})
        for i, (x, y, z) in enumerate(rows):
            opt.step(sf_grads(opt.params()))
            check(f"{label} step {i + 1} y", opt.params()["w"], y)
            check(f"{label} step {i + 1} x", opt.eval_params()["w"], x)
            check(f"{label} step {i + 1} z", opt.z["w"], z)
    opt = build({"name": "sgd_schedulefree", "lr": 0.05, "warmup_steps": 4}, {"w": P(SF_W0)})
    cs = []
    for _ in range(6):
        st = dict(opt.sched["w"])
        cs.append(sf_weight_step(st, 0.05 * warmup_factor(st["k"], 4), 0.0, 2.0))
        opt.step(sf_grads(opt.params()))
    check("SF c_t sequence, warmup 4", np.round(cs, 6), SF_C_WARMUP4, 1e-12)
    # Schedule-Free eval/train round trip x -> y -> x
    y, z, beta = opt.params()["w"], opt.z["w"], opt.beta
    x = opt.eval_params()["w"]
    check("SF round trip train(eval(y)) = y", x + (1 - beta) * (z - x), y, 1e-14)
    # AMUSE 3-step
    opt = build(AMUSE_CONFIG, {"W": P(AMUSE_W0), "b": P(AMUSE_B0)})
    for i, e in enumerate(AMUSE_EXPECTED):
        opt.step(amuse_grads(opt.params()))
        s = opt.sc["W"]
        check(f"amuse step {i + 1} lr/c/beta", [s["lr"], s["c"], s["beta"]], e[:3])
        check(f"amuse step {i + 1} W_y", opt.params()["W"], e[3])
        check(f"amuse step {i + 1} W_z", opt.z["W"], e[4])
        check(f"amuse step {i + 1} W_x", opt.eval_params()["W"], e[5])
        check(f"amuse step {i + 1} b_y", opt.params()["b"], e[6])
        check(f"amuse step {i + 1} b_z", opt.z["b"], e[7])
        check(f"amuse step {i + 1} b_x", opt.eval_params()["b"], e[8])
    opt = build({"name": "amuse", "lr": 1.0, "beta1": 0.6, "rho": 0.8, "warmup_steps": 4,
                 "aux": {"lr": 1.0}}, {"v": P([0.0])})
    table = []
    for _ in range(10):
        opt.step({"v": [0.0]})
        table.append((opt.sc["v"]["k"], round(opt.sc["v"]["c"], 6), round(opt.sc["v"]["beta"], 6)))
    check("amuse beta_t table (beta1 0.6, rho 0.8, W 4)", table, AMUSE_BETA_TABLE, 1e-12)
    # AMUSE explicit_x: before beta starts moving, recovered and stored x agree
    cfg2 = dict(AMUSE_CONFIG, explicit_x=True, warmup_steps=3)
    a1 = build(dict(AMUSE_CONFIG, warmup_steps=3), {"W": P(AMUSE_W0), "b": P(AMUSE_B0)})
    a2 = build(cfg2, {"W": P(AMUSE_W0), "b": P(AMUSE_B0)})
    for _ in range(3):
        g = amuse_grads(a1.params())
        a1.step(g)
        a2.step(g)
    check("amuse explicit_x == recovered x during warmup", a2.eval_params()["W"], a1.eval_params()["W"], 1e-13)

    passed = sum(1 for r in results if r[1])
    failed = len(results) - passed
    msgs = []
    for label, ok, e in results:
        if verbose or not ok:
            msgs.append(f"{'ok  ' if ok else 'FAIL'} {label}: rel err {e:.2e}")
    return passed, failed, msgs


def main(argv):
    if len(argv) >= 2 and argv[1] == "--self-test":
        passed, failed, msgs = self_test()
        print("\n".join(msgs))
        print(f"{passed} passed, {failed} failed")
        return 1 if failed else 0
    if len(argv) >= 2:
        with open(argv[1]) as f:
            trace = json.load(f)
        json.dump(replay(trace), sys.stdout)
        print()
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Checks `optiscope moe`'s files as a Hugging Face user would read them: Python's safetensors
loads the teacher and the dense FFNs under the Qwen-MoE / Mixtral names and shapes, and a numpy
forward pass written from those tensors alone (SwiGLU: down(silu(gate(x)) * up(x))) confirms the block concatenation's identity
dense(x) = sum_j c_j E_{selected_j}(x) with summary.json's `selected` and `scales`.

    python3 tests/moe/check_moe.py target/debug/optiscope
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file


def swiglu(x, gate, up, down):
    a = x @ gate.T
    return ((a / (1.0 + np.exp(-a))) * (x @ up.T)) @ down.T


def main():
    binary = sys.argv[1]
    out = os.path.join(tempfile.mkdtemp(prefix="optiscope-moe-"), "run")
    subprocess.run([binary, "moe", "--preset", "tiny", "--scoring", "reap", "--k", "3",
                    "--steps", "40", "--seed", "2", "--out", out, "--backend", "cpu", "-q"],
                   check=True, stdout=subprocess.DEVNULL)
    summary = json.load(open(os.path.join(out, "summary.json")))
    teacher = load_file(os.path.join(out, "teacher.safetensors"))
    dense = load_file(os.path.join(out, "dense.safetensors"))
    distilled = load_file(os.path.join(out, "dense-distilled.safetensors"))
    E, d, h, k = 8, 16, 8, 3
    want = {"mlp.gate.weight": (E, d)}
    for e in range(E):
        want[f"mlp.experts.{e}.gate_proj.weight"] = (h, d)
        want[f"mlp.experts.{e}.up_proj.weight"] = (h, d)
        want[f"mlp.experts.{e}.down_proj.weight"] = (d, h)
    assert {n: t.shape for n, t in teacher.items()} == want, sorted(teacher)
    dense_want = {"mlp.gate_proj.weight": (k * h, d), "mlp.up_proj.weight": (k * h, d),
                  "mlp.down_proj.weight": (d, k * h)}
    for f in (dense, distilled):
        assert {n: t.shape for n, t in f.items()} == dense_want, sorted(f)
        assert all(t.dtype == np.float32 for t in f.values())
    with safe_open(os.path.join(out, "dense.safetensors"), "np") as f:
        meta = f.metadata()
    assert meta["kind"] == "dense" and json.loads(meta["config"])["k"] == k, meta

    sel, scales = summary["selected"], summary["scales"]
    assert summary["scoring"] == "reap" and len(sel) == k and sel == sorted(sel), summary
    assert sel == summary["errors"]["reap"]["selected"]
    assert set(summary["errors"]) == {"frequency", "gate-mass", "activation-norm", "reap",
                                      "weight-norm", "random", "diversity"}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, d)) * 2.0
    f64 = lambda n, f=teacher: f[n].astype(np.float64)
    lhs = swiglu(x, f64("mlp.gate_proj.weight", dense), f64("mlp.up_proj.weight", dense),
                 f64("mlp.down_proj.weight", dense))
    rhs = sum(c * swiglu(x, f64(f"mlp.experts.{e}.gate_proj.weight"),
                         f64(f"mlp.experts.{e}.up_proj.weight"),
                         f64(f"mlp.experts.{e}.down_proj.weight"))
              for e, c in zip(sel, scales))
    err = np.abs(lhs - rhs).max() / np.abs(rhs).max()
    assert err < 1e-5, f"concatenation identity: relative error {err:.2e}"
    # The construction's roles are in the teacher's tensors: experts 1 and 3 are 5 % copies of
    # 0 and 2; unrelated experts are not close.
    def dist(a, b, part="gate_proj"):
        wa, wb = f64(f"mlp.experts.{a}.{part}.weight"), f64(f"mlp.experts.{b}.{part}.weight")
        return np.linalg.norm(wa - wb) / np.linalg.norm(wa)
    for a, b in [(0, 1), (2, 3)]:
        for part in ("gate_proj", "up_proj", "down_proj"):
            assert 0.02 < dist(a, b, part) < 0.1, (a, b, part, dist(a, b, part))
    assert dist(0, 2) > 0.5 and dist(4, 5) > 0.5
    post, pre = summary["post_distillation"], summary["pre_distillation"]
    assert post < pre, (pre, post)
    assert not np.array_equal(dense["mlp.down_proj.weight"], distilled["mlp.down_proj.weight"])
    print(f"moe files: {len(teacher)} teacher tensors, identity error {err:.1e}, "
          f"pre {pre:.3f} -> post {post:.3f} after 40 steps")


if __name__ == "__main__":
    main()

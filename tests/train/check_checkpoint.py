#!/usr/bin/env python3
"""Checks that Python's `safetensors` reads an `optiscope train` checkpoint: every tensor is
float32 with the model's shapes, the metadata holds the resolved config, and the weights give the
digits (a forward pass in numpy from the tensors alone).

    python3 tests/train/check_checkpoint.py target/debug/optiscope
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open


def main():
    binary = sys.argv[1]
    out = os.path.join(tempfile.mkdtemp(prefix="optiscope-ckpt-"), "run")
    subprocess.run([binary, "train", "--data", "digits", "--hidden", "32", "--epochs", "3",
                    "--out", out, "--backend", "cpu", "-q"], check=True)
    path = os.path.join(out, "checkpoint.safetensors")
    t = load_file(path)
    with safe_open(path, "np") as f:
        meta = f.metadata()
    assert meta["format"] == "optiscope-checkpoint-v1", meta.get("format")
    cfg = json.loads(meta["config"])
    assert cfg["hidden"] == [32] and cfg["epochs"] == 3, cfg
    assert t["model.w0"].shape == (32, 64) and t["model.w0"].dtype == np.float32
    assert t["model.b1"].shape == (10,)
    assert "optim.0.exp_avg_sq" in t, sorted(t)

    # The weights alone, in numpy, classify the digits: checks the documented layout
    # (w: [out, in] row-major, ReLU hidden layers). The model saw 80 % of these images.
    data = np.loadtxt("data/digits.csv.gz", delimiter=",")
    x, y = (data[:, :64] / 16.0).astype(np.float32), data[:, 64].astype(int)
    h = np.maximum(x @ t["model.w0"].T + t["model.b0"], 0)
    pred = np.argmax(h @ t["model.w1"].T + t["model.b1"], axis=1)
    acc = float(np.mean(pred == y))
    with open(os.path.join(out, "metrics.jsonl")) as f:
        last = [json.loads(l) for l in f][-1]
    assert acc > 0.9, acc
    print(f"safetensors read {len(t)} tensors from {path}; config and metadata intact; "
          f"numpy forward on all digits {acc:.4f} (run's test accuracy {last['test_accuracy']:.4f})")


if __name__ == "__main__":
    main()

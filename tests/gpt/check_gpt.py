#!/usr/bin/env python3
"""Checks `optiscope train --model gpt`'s model.safetensors as its users read it.

1. Python's safetensors loads it: nanoGPT's state_dict names and shapes, lm_head.weight equal to
   transformer.wte.weight, the metadata vocab (a JSON list of characters), n_layer, n_head,
   n_embd, block_size.
2. A forward pass written here in numpy (float64) from those tensors alone — nanoGPT's GPT with
   GELU in its tanh form — gives the loss `optiscope eval` reports on the same text, window by
   window (relative difference below 1e-5).
3. When PyTorch is importable: `GPT(config).load_state_dict(load_file(path))` with nanoGPT's
   definition (tests/gpt/nanogpt.py, strict) gives that loss too, and nanoGPT's literal exact-erf
   GELU is reported beside it. Without torch this part prints why it is skipped.

    python3 tests/gpt/check_gpt.py target/debug/optiscope
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

HERE = Path(__file__).resolve().parent


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * w + b


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def forward_loss(sd, meta, x, y):
    """Mean next-token cross-entropy of windows x -> y ([N, T] int arrays) in float64."""
    L, H, C = int(meta["n_layer"]), int(meta["n_head"]), int(meta["n_embd"])
    p = {k: v.astype(np.float64) for k, v in sd.items()}
    n, t = x.shape
    h = p["transformer.wte.weight"][x] + p["transformer.wpe.weight"][:t]
    mask = np.tril(np.ones((t, t), dtype=bool))
    d = C // H
    for i in range(L):
        g = lambda s: p[f"transformer.h.{i}.{s}"]
        a = layer_norm(h, g("ln_1.weight"), g("ln_1.bias"))
        qkv = a @ g("attn.c_attn.weight").T + g("attn.c_attn.bias")
        q, k, v = (qkv[..., j * C:(j + 1) * C].reshape(n, t, H, d).transpose(0, 2, 1, 3) for j in range(3))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d)
        s = np.where(mask, s, -np.inf)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        att = (s @ v).transpose(0, 2, 1, 3).reshape(n, t, C)
        h = h + att @ g("attn.c_proj.weight").T + g("attn.c_proj.bias")
        m = layer_norm(h, g("ln_2.weight"), g("ln_2.bias"))
        m = gelu_tanh(m @ g("mlp.c_fc.weight").T + g("mlp.c_fc.bias"))
        h = h + m @ g("mlp.c_proj.weight").T + g("mlp.c_proj.bias")
    h = layer_norm(h, p["transformer.ln_f.weight"], p["transformer.ln_f.bias"])
    logits = h @ p["lm_head.weight"].T
    mx = logits.max(-1, keepdims=True)
    lse = mx[..., 0] + np.log(np.exp(logits - mx).sum(-1))
    picked = np.take_along_axis(logits, y[..., None], -1)[..., 0]
    return float((lse - picked).mean())


def windows(text, vocab, t):
    index = {c: i for i, c in enumerate(vocab)}
    tok = np.array([index[c] for c in text], dtype=np.int64)
    n = (len(tok) - 1) // t
    x = np.stack([tok[i * t:i * t + t] for i in range(n)])
    y = np.stack([tok[i * t + 1:i * t + t + 1] for i in range(n)])
    return x, y


def main():
    binary = sys.argv[1]
    work = Path(tempfile.mkdtemp(prefix="optiscope-gpt-"))
    run = work / "run"
    subprocess.run([binary, "train", "--model", "gpt", "--n-layer", "2", "--n-head", "2",
                    "--n-embd", "32", "--block-size", "32", "--batch-size", "8", "--steps", "40",
                    "--eval-interval", "20", "--eval-iters", "2", "--lr", "0.01",
                    "--out", str(run), "--backend", "cpu", "-q"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = run / "model.safetensors"
    sd = load_file(str(path))
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    assert set(meta) == {"vocab", "n_layer", "n_head", "n_embd", "block_size"}, meta
    vocab = json.loads(meta["vocab"])
    assert vocab == sorted(set(vocab)) and all(len(c) == 1 for c in vocab), vocab
    L, C, T = int(meta["n_layer"]), int(meta["n_embd"]), int(meta["block_size"])
    assert (L, C, T) == (2, 32, 32), meta
    shapes = {"transformer.wte.weight": (len(vocab), C), "transformer.wpe.weight": (T, C),
              "transformer.ln_f.weight": (C,), "transformer.ln_f.bias": (C,),
              "lm_head.weight": (len(vocab), C)}
    for i in range(L):
        for name, shape in [("ln_1.weight", (C,)), ("ln_1.bias", (C,)),
                            ("attn.c_attn.weight", (3 * C, C)), ("attn.c_attn.bias", (3 * C,)),
                            ("attn.c_proj.weight", (C, C)), ("attn.c_proj.bias", (C,)),
                            ("ln_2.weight", (C,)), ("ln_2.bias", (C,)),
                            ("mlp.c_fc.weight", (4 * C, C)), ("mlp.c_fc.bias", (4 * C,)),
                            ("mlp.c_proj.weight", (C, 4 * C)), ("mlp.c_proj.bias", (C,))]:
            shapes[f"transformer.h.{i}.{name}"] = shape
    assert {k: v.shape for k, v in sd.items()} == shapes, sorted(sd)
    assert all(v.dtype == np.float32 for v in sd.values())
    assert np.array_equal(sd["lm_head.weight"], sd["transformer.wte.weight"])

    # A text of characters from the vocabulary: a passage made of the vocabulary itself, 20 times.
    text = "".join(vocab) * 20
    text_file = work / "text.txt"
    text_file.write_text(text, encoding="utf-8")
    out = subprocess.run([binary, "eval", str(run), "--text", str(text_file)],
                         check=True, capture_output=True, text=True).stdout
    ours = json.loads(out)
    x, y = windows(text, vocab, T)
    assert ours["windows"] == len(x), (ours, len(x))
    ref = forward_loss(sd, meta, x, y)
    rel = abs(ours["loss"] - ref) / ref
    assert rel < 1e-5, f"optiscope eval {ours['loss']} vs numpy {ref} (relative {rel:.1e})"
    print(f"model.safetensors: names, shapes, tied head and metadata as nanoGPT's; loss on "
          f"{len(x)} windows: optiscope {ours['loss']:.6f}, numpy float64 {ref:.6f} "
          f"(relative {rel:.1e})")

    try:
        import torch
        from safetensors.torch import load_file as load_torch
    except ImportError as e:
        print(f"SKIPPED the PyTorch part (torch is not importable: {e}); pip install torch runs it")
        return
    sys.path.insert(0, str(HERE))
    from nanogpt import from_metadata

    xs, ys = torch.tensor(x), torch.tensor(y)
    losses = {}
    for gelu in ["tanh", "none"]:
        model, _ = from_metadata(meta, gelu=gelu)
        model.load_state_dict(load_torch(str(path)), strict=True)
        model = model.double()
        with torch.no_grad():
            _, loss = model(xs, ys)
        losses[gelu] = loss.item()
    rel = abs(ours["loss"] - losses["tanh"]) / losses["tanh"]
    assert rel < 1e-5, f"optiscope eval {ours['loss']} vs PyTorch {losses['tanh']}"
    print(f"PyTorch GPT (nanoGPT's definition) loads it strictly: loss {losses['tanh']:.6f} "
          f"(relative {rel:.1e}); with nanoGPT's exact-erf nn.GELU() {losses['none']:.6f}")


if __name__ == "__main__":
    main()

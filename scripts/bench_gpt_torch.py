"""PyTorch's training speed for optiscope's GPT benchmarks (BENCHMARKS.md, "GPT on the CPU" and
"A real GPU"): nanoGPT's GPT (tests/gpt/nanogpt.py, GELU tanh form, as optiscope) trained with
AdamW on random windows of tiny Shakespeare, eager mode, float32, the same config, batch and
thread count as the optiscope run it is compared with. Prints one JSON line: {"tokens_per_s",
"steps", "threads", ...}.

    python3 scripts/bench_gpt_torch.py --n-layer 4 --n-head 4 --n-embd 128 --block-size 64 \
        --batch-size 12 --steps 50 --threads 2 [--device cuda]

The loss is read back once, after the timed steps (optiscope reads it every log interval), so
on a GPU the steps queue without a host synchronisation each; TF32 stays off (float32 products).
"""

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "gpt"))
from nanogpt import GPT  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    for name, default in [("n-layer", 4), ("n-head", 4), ("n-embd", 128), ("block-size", 64),
                          ("batch-size", 12), ("steps", 50), ("warmup", 5), ("threads", 2)]:
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--device", default="cpu")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(a.device)
    text = gzip.open(ROOT / "data" / "tinyshakespeare.txt.gz", "rt", encoding="utf-8").read()
    chars = sorted(set(text))
    index = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([index[c] for c in text[: int(len(text) * 0.9)]], dtype=torch.long)
    model = GPT(len(chars), a.block_size, a.n_layer, a.n_head, a.n_embd).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)

    def step():
        # Windows drawn on the host and copied over, as nanoGPT's get_batch.
        ix = torch.randint(len(data) - a.block_size, (a.batch_size,))
        x = torch.stack([data[i : i + a.block_size] for i in ix]).to(dev, non_blocking=True)
        y = torch.stack([data[i + 1 : i + 1 + a.block_size] for i in ix]).to(dev, non_blocking=True)
        _, loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(a.warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    loss = loss.item()
    sync()
    dt = time.perf_counter() - t0
    print(json.dumps({
        "tokens_per_s": a.steps * a.batch_size * a.block_size / dt,
        "steps": a.steps, "seconds": dt, "threads": a.threads, "loss": loss,
        "torch": torch.__version__, "device": str(dev),
    }))


if __name__ == "__main__":
    main()

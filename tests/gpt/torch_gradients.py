"""The PyTorch reference of optiscope's GPT gradient test (crates/optiscope-core/tests/gpt_torch.rs):
reads IN.safetensors (the parameters under nanoGPT's names, `tokens` and `targets` [B, T] as f32;
metadata n_layer, n_head, n_embd, block_size, vocab_size), computes the loss and every gradient in
float64 with nanogpt.GPT, and writes OUT.safetensors (`loss` [1] and the gradients by name).

    python3 tests/gpt/torch_gradients.py IN.safetensors OUT.safetensors
"""

import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).parent))
from nanogpt import from_metadata  # noqa: E402


def main(src, dst):
    with safe_open(src, "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    model, _ = from_metadata(meta)
    model = model.double()
    tokens = tensors.pop("tokens").long()
    targets = tensors.pop("targets").long()
    state = {k: v.double() for k, v in tensors.items()}
    state["lm_head.weight"] = state["transformer.wte.weight"]
    model.load_state_dict(state, strict=True)
    _, loss = model(tokens, targets)
    loss.backward()
    out = {"loss": loss.detach().reshape(1).float()}
    for name, p in model.named_parameters():
        # lm_head.weight is wte itself (tied): named_parameters lists it once, as wte.
        out[name] = p.grad.float().contiguous()
    save_file(out, dst)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

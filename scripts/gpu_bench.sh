#!/usr/bin/env bash
# The GPU benchmarks of BENCHMARKS.md ("A real GPU") as one prepared run, for a machine with a
# hardware GPU (the `device` tool's H200; see BENCHMARKS.md for the exact call):
#
#   scripts/gpu_bench.sh BINARY [OUT]
#
# BINARY: a release build of optiscope (`cargo build --release -p optiscope-cli`), carried to the
# GPU machine if it has no Rust toolchain. OUT (default gpu-bench/) receives:
#   adapter.txt   nvidia-smi and the adapter wgpu picked
#   bench.txt     `optiscope bench` at large sizes: matmul GFLOP/s (vec4, 64×64 tiled, naive,
#                 CPU), Newton–Schulz, AdamW, MLP training
#   gpt.md        GPT training tokens/s, optiscope --backend gpu against PyTorch eager on the same
#                 card (float32, no TF32) for a small config, baby and shakespeare-char
#   gpt-*.jsonl   the optiscope runs' metrics
# Each part is bounded (--seconds, --steps) so the whole run stays within a few minutes.
# QUICK=1 shrinks everything to lavapipe sizes (a check of the script itself on a CPU adapter).
set -uo pipefail
bin=${1:?usage: scripts/gpu_bench.sh BINARY [OUT]}
out=${2:-gpu-bench}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
export OPTISCOPE_BACKEND=gpu

{ nvidia-smi 2>&1 || echo "nvidia-smi: not available"; } > "$out/adapter.txt"

echo "== optiscope bench" >&2
if [ "${QUICK:-0}" = 1 ]; then
  sizes=128,256 params=1048576
else
  sizes=1024,2048,4096 params=4194304,16777216
fi
"$bin" bench --sizes "$sizes" --params "$params" --seconds 1 2>&1 | tee "$out/bench.txt"
head -3 "$out/bench.txt" >> "$out/adapter.txt"

# name, steps, then the model flags.
configs=(
  "small 200 --n-layer 2 --n-head 4 --n-embd 64 --block-size 32 --batch-size 8"
  "baby 200 --n-layer 4 --n-head 4 --n-embd 128 --block-size 64 --batch-size 12"
  "shakespeare-char 100 --n-layer 6 --n-head 6 --n-embd 384 --block-size 256 --batch-size 64"
)
if [ "${QUICK:-0}" = 1 ]; then
  configs=("small 20 --n-layer 2 --n-head 4 --n-embd 64 --block-size 32 --batch-size 8")
fi
have_torch=$(python3 -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo 0)
{
  echo "| config | optiscope GPU tokens/s | PyTorch eager GPU tokens/s | optiscope / PyTorch |"
  echo "|---|---:|---:|---:|"
} > "$out/gpt.md"
for c in "${configs[@]}"; do
  read -r name steps flags <<< "$c"
  echo "== GPT $name" >&2
  run=$(mktemp -d)/run
  # shellcheck disable=SC2086
  if ! "$bin" train --model gpt $flags --steps "$steps" --eval-interval 1000000 --eval-iters 1 \
      --spectra-every 0 --log-interval 10 --backend gpu --out "$run" -q; then
    echo "| $name | (failed) | | |" >> "$out/gpt.md"
    continue
  fi
  cp "$run/metrics.jsonl" "$out/gpt-$name.jsonl"
  ours=$(python3 - "$run/metrics.jsonl" <<'PY'
import json, statistics, sys
v = [json.loads(l) for l in open(sys.argv[1])]
t = [r["tokens_per_s"] for r in v if "tokens_per_s" in r and r["step"] > 10]
print(f"{statistics.median(t):.0f}")
PY
)
  theirs=""
  if [ "$have_torch" = 1 ]; then
    # shellcheck disable=SC2086
    theirs=$(python3 "$root/scripts/bench_gpt_torch.py" $flags --steps "$steps" --device cuda \
      | python3 -c 'import json,sys; print(f"{json.load(sys.stdin)[\"tokens_per_s\"]:.0f}")')
  fi
  if [ -n "$theirs" ]; then
    ratio=$(python3 -c "print(f'{$ours / $theirs:.2f}×')")
    echo "| $name | $ours | $theirs | $ratio |" >> "$out/gpt.md"
  else
    echo "| $name | $ours | (torch with CUDA not available) | — |" >> "$out/gpt.md"
  fi
done
cat "$out/gpt.md"

#!/usr/bin/env bash
# Data-parallel training with NCCL on this machine's GPUs, through the library API:
#  - 2 ranks, on cuda:0 and cuda:1 when there are two GPUs; with one GPU, both on cuda:0 (recent NCCL
#    refuses two ranks on one GPU; the JSON then holds NCCL's message);
#  - with one GPU, also 1 rank with backend 'nccl': the same NCCL code path (parameter broadcast,
#    gradient allreduce on CUDA tensors, the Gloo side group for the per-step agreements).
# The JSON records, per run, the epoch times, the loss and whether the ranks ended with the same weights.
#
#   bash bench/gpu-distributed.sh RESULTS_FOLDER   # writes gpu-distributed-<ranks>.json there
#
# bench/gpu.sh runs it with the addon it built (VIDEO_RNN_ADDON) and dist/ in place. A failed run is
# recorded in its JSON and printed, and does not stop bench/gpu.sh's benchmark.
set -euo pipefail
cd "$(dirname "$0")/.."

results="${1:?usage: bench/gpu-distributed.sh RESULTS_FOLDER}"
[[ -n "${VIDEO_RNN_ADDON:-}" ]] || { echo "bench/gpu-distributed.sh: set VIDEO_RNN_ADDON (bench/gpu.sh builds it and runs this script)" >&2; exit 1; }
command -v nvidia-smi >/dev/null || { echo "bench/gpu-distributed.sh: no nvidia-smi: this machine has no NVIDIA GPU" >&2; exit 1; }
mkdir -p "$results"
gpus="$(nvidia-smi --list-gpus | wc -l)"
echo "bench/gpu-distributed.sh: NCCL training on $gpus GPU(s)"
# Bounded: a hung rank must not hold the machine (the collective timeout is 120 s).
timeout 300 node bench/gpu-distributed.mjs --gpus "$gpus" --ranks 2 --out "$results/gpu-distributed-2.json" || true
if [[ "$gpus" -lt 2 ]]; then
  timeout 300 node bench/gpu-distributed.mjs --gpus "$gpus" --ranks 1 --out "$results/gpu-distributed-1.json" || true
fi

#!/usr/bin/env bash
# The GPU variant of measurements (1) and (2): builds the addon against the CUDA LibTorch of the Python
# torch package into build-gpu/, renders the fixture, then runs predict and the VGG16 forward on the GPU
# in fp32 and with autocast (bf16 where the GPU has it, else fp16), channels_last on both sides.
# Writes bench/results/gpu-<date>.json naming the GPU. Meant to finish in under 8 minutes.
#
#   bench/gpu.sh                 # needs nvidia-smi, a CUDA torch (+ torchvision) for BENCH_PYTHON, node, ffmpeg
#   LIBTORCH_DIR=/opt/libtorch bench/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."

python="${BENCH_PYTHON:-python3}"
export BENCH_PYTHON="$python"
command -v nvidia-smi >/dev/null || { echo "bench/gpu.sh: no nvidia-smi: this machine has no NVIDIA GPU" >&2; exit 1; }
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
if ! "$python" -c 'import torch, torchvision, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "bench/gpu.sh: $python has no CUDA torch (or no torchvision)" >&2
  exit 1
fi
command -v ffmpeg >/dev/null || { echo "bench/gpu.sh: ffmpeg is not on PATH" >&2; exit 1; }

export LIBTORCH_DIR="${LIBTORCH_DIR:-$("$python" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')}"
echo "bench/gpu.sh: $gpu, LibTorch from $LIBTORCH_DIR"
[[ -d node_modules ]] || npm ci --ignore-scripts
npx cmake-js compile -O build-gpu
npx tsc -p tsconfig.json
export VIDEO_RNN_ADDON="$PWD/build-gpu/Release/video_rnn.node"
node -e "const i = require('./dist/index.js').backendInfo(); if (!i.cuda) { console.error('the addon sees no CUDA device', i); process.exit(1); } console.log(i)"

low="$("$python" -c 'import torch; print("bf16" if torch.cuda.is_bf16_supported() else "fp16")')"
work="$(mktemp -d "${TMPDIR:-/tmp}/video-rnn-gpu-XXXXXX")"
trap 'rm -rf "$work"' EXIT
parts="$work/parts"
mkdir -p "$parts"
node bench/setup.mjs --work "$work"
for precision in fp32 "$low"; do
  node bench/predict.mjs --work "$work" --rounds 3 --device cuda --precision "$precision" --channels-last \
    --out "$parts/predict-$precision.json"
done
# The backbone script adds the low-precision variant (fp16 on CUDA) next to fp32 on both sides.
node bench/backbone.mjs --work "$work" --rounds 5 --device cuda --frames-112 64 --frames-224 32 --out "$parts/backbone.json"

node -e '
const fs = require("node:fs");
const [parts, gpu, low, output] = process.argv.slice(1);
const read = (name) => JSON.parse(fs.readFileSync(`${parts}/${name}.json`, "utf8"));
const summary = { date: new Date().toISOString(), gpu, autocast: low,
  predict: { fp32: read("predict-fp32"), [low]: read(`predict-${low}`) }, backbone: read("backbone") };
fs.writeFileSync(output, JSON.stringify(summary, null, 2) + "\n");
console.log(`written to ${output}`);
' "$parts" "$gpu" "$low" "bench/results/gpu-$(date +%F).json"

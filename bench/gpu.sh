#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and a CUDA Python torch (pip, 2.x): builds the addon against that
# torch's LibTorch into build-gpu/, runs the CUDA tests (test/gpu/: device selection, predict, embed
# and training equal to the CPU, bf16 autocast), then the GPU variant of measurements (1) and (2):
# predict and the VGG16 forward in fp32 and with autocast (bf16 where the GPU has it, else fp16),
# channels_last on both sides. Writes bench/results/gpu-<date>.json (or $OUT/ when set) naming the GPU.
#
#   bash bench/device-pack.sh     # first, on a machine with Node and npm: packs node, node_modules, dist into .device/
#   bash bench/gpu.sh             # then on the GPU machine (needs nvidia-smi and python3 with CUDA torch + torchvision)
#   GPU_SKIP_BENCH=1 bash bench/gpu.sh   # build and CUDA tests only
#
# Every step is written out below; nothing is fetched.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${BENCH_PYTHON:-python3}"
export BENCH_PYTHON="$python" VIDEO_RNN_PYTHON="$python" VIDEO_RNN_REFERENCE_PYTHON="$python"
command -v nvidia-smi >/dev/null || { echo "bench/gpu.sh: no nvidia-smi: this machine has no NVIDIA GPU" >&2; exit 1; }
gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
"$python" -c 'import torch, torchvision, sys; sys.exit(0 if torch.cuda.is_available() else 1)' ||
  { echo "bench/gpu.sh: $python has no CUDA torch (or no torchvision)" >&2; exit 1; }

# 1. Node, node_modules, dist and a static ffmpeg from .device/ when this machine has none.
if [[ -d .device ]]; then
  if ! command -v node >/dev/null; then
    mkdir -p /tmp/video-rnn-node/bin
    xz -dc .device/node.xz > /tmp/video-rnn-node/bin/node && chmod +x /tmp/video-rnn-node/bin/node
    export PATH="/tmp/video-rnn-node/bin:$PATH"
  fi
  [[ -d node_modules ]] || tar -xJf .device/node_modules.tar.xz
  [[ -d dist ]] || tar -xJf .device/dist.tar.xz
fi
command -v node >/dev/null || { echo "bench/gpu.sh: no node (run bench/device-pack.sh where Node is, and carry .device)" >&2; exit 1; }
[[ -d node_modules ]] || npm ci --ignore-scripts
[[ -d dist ]] || npx tsc -p tsconfig.json

# 2. The CUDA toolkit that Torch's CMake config looks for: nvcc on PATH or in /usr/local/cuda, else the
# one the pip wheels ship (nvidia/cu13 since CUDA 13, nvidia/cuda_nvcc before).
if ! command -v nvcc >/dev/null; then
  site="$("$python" -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0]))' 2>/dev/null || true)"
  for candidate in /usr/local/cuda/bin/nvcc "$site"/nvidia/cu13/bin/nvcc "$site"/nvidia/cuda_nvcc/bin/nvcc; do
    [[ -x "$candidate" ]] && { export PATH="$(dirname "$candidate"):$PATH"; break; }
  done
fi
command -v nvcc >/dev/null || { echo "bench/gpu.sh: no nvcc: install the CUDA toolkit of torch's CUDA version (or pip nvidia-cuda-nvcc)" >&2; exit 1; }
export CUDACXX="$(command -v nvcc)"
toolkit="$(dirname "$(dirname "$CUDACXX")")"
echo "bench/gpu.sh: $gpu; torch $("$python" -c 'import torch; print(torch.__version__)'); CUDA toolkit $toolkit"
node scripts/torch-paths.js json

# 3. Build against that LibTorch (CMake finds it through python's torch.utils.cmake_prefix_path).
node_modules/.bin/cmake-js compile -O build-gpu --CDCUDAToolkit_ROOT="$toolkit" --CDCMAKE_CUDA_COMPILER="$CUDACXX"
export VIDEO_RNN_ADDON="$PWD/build-gpu/Release/video_rnn.node"
node -e "const i = require('./dist/index.js').backendInfo(); console.log(i); if (!i.cuda) { console.error('the addon sees no CUDA device'); process.exit(1); }"

results="${OUT:-bench/results}"
mkdir -p "$results"
set -o pipefail
# 4. The CUDA tests, and the data-parallel NCCL check where bench/gpu-distributed.sh exists.
node --test --test-concurrency=1 test/gpu/*.test.mjs 2>&1 | tee "$results/gpu-tests.log"
[[ -x bench/gpu-distributed.sh ]] && bash bench/gpu-distributed.sh "$results"
[[ -n "${GPU_SKIP_BENCH:-}" ]] && exit 0

# 5. The benchmark.
command -v ffmpeg >/dev/null || export FFMPEG_PATH="$(node -p "require('@ffmpeg-installer/ffmpeg').path")"
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
' "$parts" "$gpu" "$low" "$results/gpu-$(date +%F).json"

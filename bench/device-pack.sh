#!/usr/bin/env bash
# Packs what bench/gpu.sh needs on a GPU machine that has Python torch (CUDA) but no Node, no npm
# registry and no ffmpeg, into .device/ (ignored by git, under 64 MB): the node binary, the
# production node_modules (no install scripts run), the compiled dist/, and static ffmpeg/ffprobe
# builds that npm packages ship. On that machine, `bash bench/gpu.sh` unpacks them.
#
#   bash bench/device-pack.sh          # here, with Node and the npm registry
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .device && mkdir -p .device
xz -T0 -6 -c "$(command -v node)" > .device/node.xz
npx tsc -p tsconfig.json
tar -cJf .device/dist.tar.xz dist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp package.json package-lock.json "$work/"
(cd "$work" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund >/dev/null &&
  npm install --no-save --ignore-scripts --no-audit --no-fund @ffmpeg-installer/ffmpeg @ffprobe-installer/ffprobe >/dev/null)
tar -C "$work" -cJf .device/node_modules.tar.xz node_modules
du -sh .device/*
echo "device-pack: ready; on the GPU machine run: bash bench/gpu.sh  (carry: .device)"

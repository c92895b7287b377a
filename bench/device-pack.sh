#!/usr/bin/env bash
# Packs what bench/gpu.sh needs on a GPU machine that has Python torch (CUDA) but no Node and no npm
# registry, into .device/ (ignored by git; about 30 MB, so it travels within a 64 MB working tree):
# the node binary, the production node_modules (no install scripts run) and the compiled dist/.
# On that machine, `bash bench/gpu.sh` unpacks them. ffmpeg is not packed (the static builds that
# npm packages ship are 140 MB): the CUDA tests need none, the benchmark needs one on that machine.
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
(cd "$work" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund >/dev/null)
tar -C "$work" -cJf .device/node_modules.tar.xz node_modules
du -sh .device/*
echo "device-pack: ready; on the GPU machine run: bash bench/gpu.sh  (carry: .device)"

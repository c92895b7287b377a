#!/usr/bin/env bash
# Installs what video-rnn needs on a Debian 12 / Ubuntu machine and builds it:
# LibTorch (libtorch-dev), OpenBLAS, Gloo headers for c10d (libgloo-dev), ffmpeg, the test reference (python3-torch, torchvision),
# iproute2 (the two-machine tests put ranks in network namespaces), the npm packages and the native addon. Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libtorch-dev libopenblas0-pthread libgloo-dev ffmpeg python3-torch python3-torchvision cmake g++ make iproute2)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "setup: installing ${missing[*]} with sudo"
    sudo DEBIAN_FRONTEND=noninteractive apt-get update
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  else
    echo "setup: these packages are missing: ${missing[*]}" >&2
    echo "setup: run as root:  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    echo "setup: (or point LIBTORCH_DIR at an unpacked LibTorch and FFMPEG_PATH at an ffmpeg binary)" >&2
    exit 1
  fi
fi

# npm ci builds the addon (cmake-js, the install script) and compiles the TypeScript (prepare).
if [ -f package-lock.json ]; then npm ci; else npm install; fi
node -e "const v=require('./dist/index.js'); console.log('setup: ready', JSON.stringify(v.backendInfo()))"

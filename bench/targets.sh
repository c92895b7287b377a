#!/usr/bin/env bash
# The performance targets side by side in one run (bench/README.md, "Targets"):
#  - predict on the 32 bench clips at 112 px: ours and the seed pipeline, fp32 and bf16 (targets.mjs);
#  - bf16 top-1 agreement on 48 trained held-out clips and the small-clip workload, 48 clips x 3
#    frames at 64 px, fp32 and bf16, ours and the reference (precision.mjs);
#  - decoding's CPU per clip and `video-rnn serve` at 16 clients, this tree against another
#    checkout (BASE, built: dist/ and the addon), rounds alternating.
#
#   BASE=/path/to/earlier/checkout bench/targets.sh [--quick]
#
# Writes bench/results/targets/{targets,precision,starts-*,serve-*}.json and targets.md.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
quick=0
if [[ "${1:-}" == "--quick" ]]; then quick=1; fi
base="${BASE:-}"
if [[ -n "$base" && ! -f "$base/dist/cli.js" ]]; then echo "bench/targets.sh: $base/dist/cli.js is missing (build BASE first)" >&2; exit 1; fi

flags="$(grep -m1 '^flags' /proc/cpuinfo || true)"
blas_core="${OPENBLAS_CORETYPE:-}"
if [[ -z "$blas_core" ]]; then
  if [[ "$flags" == *avx512f* && "$flags" == *avx512bw* && "$flags" == *avx512vl* ]]; then blas_core=SkylakeX
  elif [[ "$flags" == *avx2* && "$flags" == *fma* ]]; then blas_core=Haswell; fi
fi
blas_arguments=()
if [[ -n "$blas_core" ]]; then blas_arguments=(--blas-core "$blas_core"); fi

if (( quick )); then rounds=1; held_out=8; serve_rounds=1; serve_seconds=4; else rounds=3; held_out=48; serve_rounds=2; serve_seconds=20; fi
out="$root/bench/results/targets"
if (( quick )); then out="$root/bench/results/targets-quick"; fi
mkdir -p "$out"
work="${BENCH_WORK:-$(mktemp -d "${TMPDIR:-/tmp}/video-rnn-targets-XXXXXX")}"
mkdir -p "$work"
echo "bench/targets.sh: load average $(cut -d' ' -f1 /proc/loadavg), work folder $work, OPENBLAS_CORETYPE ${blas_core:-default}"
date -u +%FT%TZ > "$out/started"
cut -d' ' -f1-3 /proc/loadavg > "$out/load-start"

if [[ ! -f "$work/fixture.json" ]]; then node bench/setup.mjs --work "$work"; fi
node bench/targets.mjs --work "$work" --rounds "$rounds" "${blas_arguments[@]}" --out "$out/targets.json"
node bench/precision.mjs --work "$work" --held-out "$held_out" --rounds "$rounds" "${blas_arguments[@]}" --out "$out/precision.json"

# Decoding's CPU per clip, then serve, alternating this tree and BASE.
starts_rounds=3
if (( quick )); then starts_rounds=1; fi
for round in $(seq 1 "$serve_rounds"); do
  trees=("$root")
  if [[ -n "$base" ]]; then trees+=("$base"); fi
  # The tree that goes first alternates, so drift in the machine's load falls on both alike.
  if (( round % 2 == 0 )) && [[ -n "$base" ]]; then trees=("$base" "$root"); fi
  for tree in "${trees[@]}"; do
    name=this; if [[ "$tree" != "$root" ]]; then name=base; fi
    # BASE may predate starts.mjs: the same script runs against its dist/.
    mkdir -p "$work/starts-$name"
    cp bench/starts.mjs bench/process-cpu.mjs "$work/starts-$name/"
    sed -i "s#'\.\./dist/#'$tree/dist/#" "$work/starts-$name/starts.mjs"
    node "$work/starts-$name/starts.mjs" --rounds "$starts_rounds" --out "$out/starts-$name-$round.json"
    (cd "$tree" && node bench/serve.mjs --duration-s "$serve_seconds" --levels 1,16 --soak-s 0 --out "$out/serve-$name-$round.json")
  done
done
cut -d' ' -f1-3 /proc/loadavg > "$out/load-end"
node bench/targets-report.mjs --folder "$out"

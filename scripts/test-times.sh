#!/usr/bin/env bash
# Where the test suite's minutes go. `npm test` (and so CI) records each test file's wall time in
# .tmp/test-times.tsv through scripts/test-times-reporter.mjs; this script reads such a file, or runs
# the files and records them.
#
#   bash scripts/test-times.sh --report [FILE]   # the slowest 15 and the total (default .tmp/test-times.tsv)
#   bash scripts/test-times.sh --keep            # copy .tmp/test-times.tsv to bench/results/test-times.tsv, dated
#   bash scripts/test-times.sh [FILES...]        # run these files (default: all) as npm test does, then report
#
# bench/results/test-times.tsv is the last measurement kept in the repository, for the next change
# to compare with: CI must stay within 45 minutes on 2 cores.
set -uo pipefail
cd "$(dirname "$0")/.."
latest=.tmp/test-times.tsv
kept=bench/results/test-times.tsv

report() {
  local file=${1:-$latest}
  [ -f "$file" ] || { echo "test-times: no $file" >&2; exit 1; }
  echo "test-times: slowest 15 of $(grep -vc '^#' "$file") files in $file"
  grep -v '^#' "$file" | sort -t$'\t' -k1,1 -rn | head -n 15 | awk -F'\t' '{ printf "  %7.1f s  %-4s  %s\n", $1, $2, $3 }'
  grep -v '^#' "$file" | awk -F'\t' '{ total += $1 } END { printf "test-times: total %.1f min\n", total / 60 }'
}

case "${1:-}" in
  --report) report "${2:-}"; exit 0 ;;
  --keep)
    [ -f "$latest" ] || { echo "test-times: no $latest" >&2; exit 1; }
    { echo "# $(date -u +%Y-%m-%d) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
      grep -v '^#' "$latest"; } >"$kept"
    report "$kept"; exit 0 ;;
esac

if [ "$#" -gt 0 ]; then files=("$@"); else mapfile -t files < <(ls test/*.test.mjs); fi
npx tsc -p tsconfig.json || exit 1
mkdir -p .tmp
node --test --test-concurrency=1 --test-reporter=tap --test-reporter-destination=.tmp/test-times.log \
  --test-reporter=./scripts/test-times-reporter.mjs --test-reporter-destination="$latest" "${files[@]}"
status=$?
report
exit "$status"

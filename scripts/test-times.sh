#!/usr/bin/env bash
# Runs test files one at a time, as `npm test` does, and records each file's wall time, so that a
# change can see where CI's minutes go and keep it within its budget.
#
#   bash scripts/test-times.sh                    # every test/*.test.mjs (after tsc)
#   bash scripts/test-times.sh test/video.*.mjs   # only these
#   bash scripts/test-times.sh --report           # the slowest 15 of the last run, and the total
#
# Results go to bench/results/test-times.tsv (seconds, status, file; slowest first), which is kept
# in the repository as the last measured reference; the run's own output to .tmp/test-times/.
set -uo pipefail
cd "$(dirname "$0")/.."
results=bench/results/test-times.tsv

report() {
  [ -f "$results" ] || { echo "test-times: no $results yet" >&2; exit 1; }
  echo "slowest 15 of $(grep -vc '^#' "$results") files ($(head -n 1 "$results" | sed 's/^# //')):"
  grep -v '^#' "$results" | head -n 15 | awk -F'\t' '{ printf "  %7.1f s  %-6s %s\n", $1, $2, $3 }'
  grep -v '^#' "$results" | awk -F'\t' '{ total += $1 } END { printf "total: %.1f min\n", total / 60 }'
}
if [ "${1:-}" = "--report" ]; then report; exit 0; fi

if [ "$#" -gt 0 ]; then files=("$@"); else mapfile -t files < <(ls test/*.test.mjs); fi
npx tsc -p tsconfig.json || exit 1
mkdir -p .tmp/test-times "$(dirname "$results")"
rows=$(mktemp)
failed=0
for file in "${files[@]}"; do
  log=".tmp/test-times/$(basename "$file").log"
  began=$(date +%s.%N)
  if node --test --test-concurrency=1 "$file" >"$log" 2>&1; then status=pass; else status=fail; failed=1; fi
  seconds=$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  printf '%.1f\t%s\t%s\n' "$seconds" "$status" "$file" | tee -a "$rows"
done
{
  echo "# $(date -u +%Y-%m-%d) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  sort -t$'\t' -k1,1 -rn "$rows"
} >"$results"
rm -f "$rows"
report
exit "$failed"

#!/usr/bin/env bash
# Runs each command RUNS times, interleaved (A B C A B C …) so that a noisy
# minute on a shared machine hits all of them alike, and prints each one's
# median wall time and median peak RSS. Output of the commands is discarded.
#
#   RUNS=5 benches/side_by_side.sh 'md5sum corpus/obs/**' 'cts-audit verify corpus/obs'
#
# Needs GNU time (/usr/bin/time). No hyperfine here: the CI machines lack it.
set -euo pipefail
runs=${RUNS:-5}
declare -A walls rss
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
for ((r = 0; r < runs; r++)); do
  for cmd in "$@"; do
    /usr/bin/time -o "$stamp" -f '%e %M' bash -c "$cmd" >/dev/null 2>&1 || true
    out=$(tail -1 "$stamp")
    walls[$cmd]+="${out%% *} "
    rss[$cmd]+="${out##* } "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
printf '%-10s %-12s %s\n' "median s" "peak RSS MB" "command ($runs runs each, interleaved)"
for cmd in "$@"; do
  w=$(echo "${walls[$cmd]}" | median)
  m=$(echo "${rss[$cmd]}" | median)
  printf '%-10s %-12s %s\n' "$w" "$((m / 1024))" "$cmd"
done

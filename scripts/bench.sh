#!/usr/bin/env bash
# Runs every benchmark; each prints one JSON line of figures (also kept in bench/results/).
set -u
cd "$(dirname "$0")/.."
mkdir -p bench/results
status=0
for b in bench/*.py; do
  name=$(basename "$b" .py)
  echo "== $name" >&2
  if .venv/bin/python "$b" | tee "bench/results/$name.json"; then :; else status=1; fi
done
exit $status

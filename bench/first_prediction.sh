#!/bin/sh
# Time to first prediction of `make serve` on a fresh clone (its venv install included), side by
# side with `pip install mlflow scikit-learn` into a fresh venv on the same machine, same pip
# configuration and cache. Usage: sh bench/first_prediction.sh [REPO] (default: this checkout's
# committed HEAD). Prints both times in seconds; the numbers in BENCHMARKS.md come from it.
set -eu
repo=${1:-$(git rev-parse --show-toplevel)}
work=$(mktemp -d)
trap 'kill $(cat "$work/serve.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$work"' EXIT
now() { date +%s.%N; }
since() { awk "BEGIN {printf \"%.1f\", $(now) - $1}"; }

t0=$(now)
python3 -m venv "$work/ref"
"$work/ref/bin/python" -m pip install --quiet mlflow scikit-learn
echo "pip install mlflow scikit-learn (fresh venv): $(since "$t0") s"

git clone -q "$repo" "$work/mreg"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cd "$work/mreg"
setsid make serve PORT="$port" >"$work/serve.log" 2>&1 &
echo $! >"$work/serve.pid"
while ! grep -q "mreg: first prediction" "$work/serve.log"; do
  if ! kill -0 "$(cat "$work/serve.pid")" 2>/dev/null; then cat "$work/serve.log"; exit 1; fi
  sleep 1
done
grep "mreg: first prediction" "$work/serve.log"
kill -- -"$(cat "$work/serve.pid")" 2>/dev/null || true

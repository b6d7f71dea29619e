#!/usr/bin/env bash
# Runs likely's benchmark jobs and peers.py's on the same machine, on the same data (written by
# peers.py's own generators), one after the other; prints one JSON object per line.
#
#   bench/side_by_side.sh ../shared/bench/peers.py [python3] [likely binary]
#
# Sizes: N_GAUSS (default 2^24; the GPU row also runs at 2^26), N_LOGREG (1e6), N_MLP (2^20).
set -euo pipefail
peers=${1:?usage: bench/side_by_side.sh PATH/TO/peers.py [python3] [likely]}
python=${2:-python3}
likely=${3:-target/release/likely}
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
"$python" "$(dirname "$0")/peer_data.py" "$peers" "$data"
engines="cpu"
if "$likely" devices >/dev/null 2>&1; then engines="cpu gpu"; fi
for job in gauss-eval logreg-fit mlp-train; do
    for engine in $engines; do
        "$likely" bench --job "$job" --engine "$engine" --data "$data" --json --reps 5
    done
done
if [[ $engines == *gpu* ]]; then
    "$likely" bench --job gauss-eval --engine gpu --n 67108864 --json --reps 15
fi
"$python" "$peers"

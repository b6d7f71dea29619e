#!/usr/bin/env python3
"""Writes the benchmark jobs' data with peers.py's own generators, as .npy files that
`likely bench --data DIR` reads, so that likely and the peers fit the same numbers.

    python3 bench/peer_data.py ../shared/bench/peers.py DIR [job ...]

Sizes come from the same environment variables peers.py reads (N_GAUSS, N_LOGREG, N_MLP).
Files: DIR/gauss-eval.x.npy (n,), DIR/logreg-fit.x.npy (n, 16) and .y.npy (n,),
DIR/mlp-train.x.npy (n, 10) and .y.npy (n,).
"""
import importlib.util
import os
import sys

import numpy as np


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    spec = importlib.util.spec_from_file_location("peers", sys.argv[1])
    peers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peers)
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    jobs = sys.argv[3:] or ["gauss-eval", "logreg-fit", "mlp-train"]
    if "gauss-eval" in jobs:
        x = peers.gauss_data(int(os.environ.get("N_GAUSS", 1 << 24)))
        np.save(os.path.join(out, "gauss-eval.x.npy"), x)
    if "logreg-fit" in jobs:
        x, y = peers.logreg_data(int(os.environ.get("N_LOGREG", 1_000_000)))
        np.save(os.path.join(out, "logreg-fit.x.npy"), x)
        np.save(os.path.join(out, "logreg-fit.y.npy"), y)
    if "mlp-train" in jobs:
        x, y = peers.mlp_data(int(os.environ.get("N_MLP", 1 << 20)))
        np.save(os.path.join(out, "mlp-train.x.npy"), x)
        np.save(os.path.join(out, "mlp-train.y.npy"), y)


if __name__ == "__main__":
    main()

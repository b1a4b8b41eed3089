"""Why the trainer feeds whole batches only (``rachel.core.input_pipeline``).

Trains one small net (res27 -> conv60 -> conv48, the 600-s seed-1 finish's architecture)
epoch by epoch with ``model.fit`` on Fashion-MNIST, each mode in a fresh process:

* ``varying``: each epoch over a different number of examples (3,000-6,000), so the last,
  partial batch changes shape between fits: what the finish's re-plans did;
* ``whole``: the same epoch lengths through ``epoch_arrays(batch_size=...)`` (whole batches);
* ``varying_1_thread``: as ``varying`` on one intra-op thread;
* ``varying_no_onednn``: as ``varying`` with ``TF_ENABLE_ONEDNN_OPTS=0``.

    python bench/partial_batch_crash.py --data-dir ../shared/data/fashion-mnist

Prints each mode's exit status and the epochs it finished, and writes
``bench/results/partial_batch_crash.json``.  TensorFlow only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = {
    "varying": ({}, 2, False),
    "whole": ({}, 2, True),
    "varying_1_thread": ({}, 1, False),
    "varying_no_onednn": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, 2, False),
}


def worker(data_dir: str, threads: int, whole: bool, epochs: int) -> None:
    from rachel.core.devices import limit_threads

    limit_threads(threads)
    import keras
    import numpy as np

    from rachel.core.architecture import decode
    from rachel.core.data import load_dataset
    from rachel.core.input_pipeline import epoch_arrays, normalise
    from rachel.core.search_space import ArchitectureSpec, BlockType, Layer

    splits = load_dataset("fashion_mnist", data_dir=data_dir, seed=1)
    spec = ArchitectureSpec(
        (
            Layer(BlockType.RESIDUAL, 27),
            Layer(BlockType.STANDARD, 60),
            Layer(BlockType.STANDARD, 48),
        )
    )
    keras.utils.set_random_seed(0)
    model = decode(spec, splits.input_shape, 10, pool_first=True, downsample_residual=True)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        n = int(rng.integers(3000, 6000))
        if whole:
            x, y = epoch_arrays(splits.x_train[:n], splits.y_train[:n], rng, batch_size=128)
        else:
            x, y = normalise(splits.x_train[:n]), splits.y_train[:n]
        model.fit(x, y, batch_size=128, epochs=epoch + 1, initial_epoch=epoch, verbose=0)
        print(f"EPOCH {epoch + 1}", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", default="../shared/data/fashion-mnist")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--output", default=str(HERE / "results" / "partial_batch_crash.json"))
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        _, threads, whole = MODES[args.worker]
        worker(args.data_dir, threads, whole, args.epochs)
        return 0

    from table import print_key_values

    from rachel.core import storage

    rows, results = [], {}
    for mode, (env, _, _) in MODES.items():
        cmd = [sys.executable, __file__, "--worker", mode, "--data-dir", args.data_dir]
        cmd += ["--epochs", str(args.epochs)]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env={**os.environ, **env}, timeout=1800
        )
        done = sum(line.startswith("EPOCH ") for line in proc.stdout.splitlines())
        results[mode] = {"returncode": proc.returncode, "epochs_finished": done}
        rows.append((mode, f"exit {proc.returncode}, {done}/{args.epochs} epochs"))
    print_key_values(rows, header="mode")
    storage.write_json(args.output, {"epochs": args.epochs, "results": results})
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

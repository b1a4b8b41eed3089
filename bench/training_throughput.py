"""Candidate training speed against a plain ``model.fit``, and one vs two candidates at once.

On the full Fashion-MNIST training split, for a few RACHEL candidates:

* ``plain``: ``model.fit(x, y, batch_size=128, epochs=E, validation_data=(x_val, y_val))``
  on in-memory float arrays, timed like the trainer (compilation and tracing included);
* ``trainer``: :func:`rachel.core.training.fit_model` (per-epoch shuffling and the
  validation pass that gives the ensemble its logits), same model, same epochs;
* ``2 threads x 1`` vs ``1 thread x 2``: images per second of one candidate with both
  cores, against two candidates trained side by side in two processes of one thread each
  (how ``rachel search`` uses a 2-core machine).

    python bench/training_throughput.py --data-dir ../shared/data/fashion-mnist

Prints a table and writes ``bench/results/training_throughput.json``.  Ratios within one
run are what to quote: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SPECS = {"conv32-conv64": "0:32,0:64", "res24": "1:24", "conv48-res64": "0:48,1:64"}


def _measure(spec_text: str, mode: str, threads: int, data_dir: str, epochs: int) -> dict:
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    from rachel.core.architecture import decode
    from rachel.core.data import load_dataset
    from rachel.core.input_pipeline import normalise
    from rachel.core.search_space import ArchitectureSpec, BlockType, Layer
    from rachel.core.training import TrainingSettings, compile_for_training, fit_model

    splits = load_dataset("fashion_mnist", data_dir=data_dir, seed=0)
    layers = tuple(
        Layer(BlockType(int(b)), int(w)) for b, w in (t.split(":") for t in spec_text.split(","))
    )
    settings = TrainingSettings(
        epochs=epochs,
        batch_size=128,
        learning_rate=5e-3,
        patience=epochs,
        augmentation="none",
        pool_first=True,
    )
    keras.utils.set_random_seed(0)
    model = decode(
        ArchitectureSpec(layers), splits.input_shape, splits.num_classes, pool_first=True
    )
    n = len(splits.y_train)
    if mode == "plain":  # what a user runs: one fit call, with validation data, tracing included
        x, x_val = normalise(splits.x_train), normalise(splits.x_val)
        started = time.perf_counter()
        compile_for_training(model, settings, -(-n // 128))
        model.fit(
            x,
            splits.y_train,
            batch_size=128,
            epochs=epochs,
            verbose=0,
            validation_data=(x_val, splits.y_val),
        )
    else:
        started = time.perf_counter()
        fit_model(model, splits, settings)
    seconds = time.perf_counter() - started
    return {"images_per_second": n * epochs / seconds, "seconds": seconds}


def _child(spec_text: str, mode: str, threads: int, data_dir: str, epochs: int) -> subprocess.Popen:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        spec_text,
        mode,
        str(threads),
        "--data-dir",
        data_dir,
        "--epochs",
        str(epochs),
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    from table import print_key_values

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data-dir", default=str(HERE.parent / ".." / "shared" / "data" / "fashion-mnist")
    )
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--specs", default=",".join(SPECS))
    p.add_argument("--output", default=str(HERE / "results" / "training_throughput.json"))
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        spec_text, mode, threads = args.child
        print(json.dumps(_measure(spec_text, mode, int(threads), args.data_dir, args.epochs)))
        return 0

    from rachel.core import storage

    results, rows = [], []
    for name in args.specs.split(","):
        spec = SPECS[name]
        plain = _result(_child(spec, "plain", 0, args.data_dir, args.epochs))
        trainer = _result(_child(spec, "trainer", 0, args.data_dir, args.epochs))
        pair = [_child(spec, "trainer", 1, args.data_dir, args.epochs) for _ in range(2)]
        both = [_result(proc) for proc in pair]
        two_at_once = sum(r["images_per_second"] for r in both)
        row = {
            "spec": name,
            "plain_fit_images_per_second": plain["images_per_second"],
            "trainer_images_per_second": trainer["images_per_second"],
            "trainer_vs_plain": trainer["images_per_second"] / plain["images_per_second"],
            "two_one_thread_candidates_images_per_second": two_at_once,
            "two_at_once_vs_one_two_thread": two_at_once / trainer["images_per_second"],
        }
        results.append(row)
        rows.append(
            (
                name,
                f"plain {row['plain_fit_images_per_second']:.0f} img/s, trainer "
                f"{row['trainer_images_per_second']:.0f} ({row['trainer_vs_plain']:.2f}x), "
                f"2 x 1 thread {two_at_once:.0f} "
                f"({row['two_at_once_vs_one_two_thread']:.2f}x one 2-thread candidate)",
            )
        )
    print_key_values(rows, header="candidate")
    storage.write_json(
        args.output, {"epochs": args.epochs, "cores": os.cpu_count(), "results": results}
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

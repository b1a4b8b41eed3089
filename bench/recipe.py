"""Single-change experiments on the candidate training recipe (full Fashion-MNIST).

Each variant changes one thing from the base recipe and trains the same architecture on
the official split (55,000 / 5,000 validation carved with seed 0 / 10,000 test).  These
are the measurements behind the choices documented in ``rachel.core.training`` and
``rachel.core.architecture``.

    python bench/recipe.py --data-dir ../shared/data/fashion-mnist [--variants base,gap]

Prints a table and appends each finished variant to ``bench/results/recipe.json``
(a variant already there is skipped, so the script resumes after a kill).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

BASE = dict(
    epochs=4,
    batch_size=128,
    learning_rate=2e-3,
    patience=3,
    augmentation="none",
    head="flatten",
    pool_first=True,
)
VARIANTS = {
    "base": {},
    "gap_head": {"head": "gap"},
    "paper_block_order": {"pool_first": False},
    "augmented": {"augmentation": "natural"},
    "lr_1e-3": {"learning_rate": 1e-3},
    "lr_5e-3": {"learning_rate": 5e-3},
    "batch_256": {"batch_size": 256},
    "epochs_8": {"epochs": 8},
}


def main() -> int:
    from resumable import ResultsFile
    from spec_arg import parse_spec
    from table import print_key_values

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", default="../shared/data/fashion-mnist")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--spec", default="conv32,conv64", help="comma list of conv<W> / res<W>")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=str(Path(__file__).parent / "results" / "recipe.json"))
    args = p.parse_args()

    import numpy as np

    from rachel.core import devices
    from rachel.core.data import load_dataset
    from rachel.core.input_pipeline import normalise
    from rachel.core.training import TrainingSettings, train_candidate_model

    spec = parse_spec(args.spec)
    splits = load_dataset("fashion_mnist", data_dir=args.data_dir, seed=args.seed)
    results = ResultsFile(
        args.output, {"base": BASE, "spec": spec.describe(), "train": len(splits.y_train)}
    )
    options = devices.resolve("off", "off", "off")
    for name in args.variants.split(","):
        key = f"{name}|{spec.describe()}|seed{args.seed}|threads{args.threads}"
        if results.has(key):
            continue
        settings = TrainingSettings(
            **{**BASE, **VARIANTS[name]}, seed=args.seed, threads=args.threads
        )
        started = time.perf_counter()
        result = train_candidate_model(spec, splits, settings, options)
        probs = result.model.predict(normalise(splits.x_test), batch_size=512, verbose=0)
        test_acc = float((np.argmax(probs, -1) == splits.y_test).mean())
        m = result.metrics
        results.add(
            key,
            {
                "variant": name,
                "settings": dataclasses.asdict(settings),
                "test_accuracy": test_acc,
                "val_accuracy": m["val_accuracy"],
                "train_accuracy": m["train_accuracy"],
                "epochs_run": m["epochs_run"],
                "images_per_second": m["images_per_second"],
                "wall_seconds": time.perf_counter() - started,
            },
        )
        print(f"{name}: test {test_acc:.4f}  {m['images_per_second']:.0f} img/s", flush=True)
    rows = [
        (
            r["variant"],
            f"test {r['test_accuracy']:.4f}  val {r['val_accuracy']:.4f}  "
            f"train {r['train_accuracy']:.4f}  {r['images_per_second']:.0f} img/s  "
            f"{r['wall_seconds']:.0f} s",
        )
        for r in results.runs
    ]
    print_key_values(rows, header="variant")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

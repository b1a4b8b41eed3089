"""RACHEL against keras-tuner's RandomSearch and Hyperband at equal wall-clock budget.

All methods search the same block space (standard / residual blocks, widths 16..max_width,
depth up to ``iterations * max_new_layers``) on the same Fashion-MNIST subset, and train
every model with the same recipe (:func:`rachel.core.training.compile_for_training`,
the same tf.data pipeline and augmentation, early stopping on val_loss).  RACHEL runs
first; its wall time becomes the budget of each tuner, which stops starting trials once
the next trial would likely end past it (the rule RACHEL itself uses).

    python bench/search_vs_tuner.py --data-dir ../shared/data/fashion-mnist

Prints a table and writes ``bench/results/search_vs_tuner.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def tuner_run(kind, splits, args, budget_seconds, workdir):
    import keras
    import keras_tuner as kt

    from rachel.core.architecture import decode
    from rachel.core.input_pipeline import make_dataset
    from rachel.core.search_space import ArchitectureSpec, BlockType, Layer
    from rachel.core.training import (
        TrainingSettings,
        compile_for_training,
        early_stopping,
        training_datasets,
    )

    max_depth = args.iterations * args.max_new_layers
    settings = TrainingSettings(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        patience=args.patience,
        seed=args.seed,
    )
    train_ds, val_ds, steps = training_datasets(splits, settings)

    class BlockSpace(kt.HyperModel):
        def build(self, hp):
            depth = hp.Int("depth", 1, max_depth)
            layers = tuple(
                Layer(
                    BlockType(hp.Int(f"block_{i}", 0, 1)), hp.Int(f"width_{i}", 16, args.max_width)
                )
                for i in range(depth)
            )
            model = decode(ArchitectureSpec(layers), tuple(splits.input_shape), splits.num_classes)
            compile_for_training(model, settings, steps, xla=False)
            return model

        def fit(self, hp, model, *fit_args, **kwargs):
            return model.fit(
                train_ds,
                validation_data=val_ds,
                epochs=kwargs.get("epochs", args.epochs),
                initial_epoch=kwargs.get("initial_epoch", 0),
                callbacks=[*kwargs.get("callbacks", []), early_stopping(settings)],
                shuffle=False,  # the tf.data pipeline shuffles (seeded), as in RACHEL
                verbose=0,
            )

    common = dict(
        objective="val_loss",
        directory=str(workdir),
        project_name=kind,
        seed=args.seed,
        overwrite=True,
    )
    if kind == "random_search":
        tuner = kt.RandomSearch(BlockSpace(), max_trials=10_000, **common)
    else:
        tuner = kt.Hyperband(
            BlockSpace(), max_epochs=args.epochs, factor=3, hyperband_iterations=100, **common
        )
    started = time.time()
    finished: list[float] = []
    populate = tuner.oracle.populate_space

    def timed_populate(trial_id):
        elapsed = time.time() - started
        mean = elapsed / len(finished) if finished else 0.0
        if finished and elapsed + mean > budget_seconds:
            return {"status": "STOPPED", "values": None}
        finished.append(elapsed)
        return populate(trial_id)

    tuner.oracle.populate_space = timed_populate
    keras.utils.set_random_seed(args.seed)
    tuner.search(verbose=0)
    search_seconds = time.time() - started
    best = tuner.get_best_models(1)[0]
    test_ds = make_dataset(splits.x_test, splits.y_test, batch_size=256)
    _, test_acc = best.evaluate(test_ds, verbose=0)
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    return {
        "method": f"keras-tuner {kind}",
        "test_accuracy": float(test_acc),
        "models_trained": len(trials),
        "wall_seconds": search_seconds,
        "params": int(best.count_params()),
    }


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data-dir",
        default=str(
            Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "fashion-mnist"
        ),
    )
    p.add_argument("--train-size", type=int, default=3000)
    p.add_argument("--val-size", type=int, default=600)
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--iterations", type=int, default=3)
    p.add_argument("--candidates", type=int, default=3)
    p.add_argument("--max-new-layers", type=int, default=2)
    p.add_argument("--max-width", type=int, default=32)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--learning-rate", type=float, default=5e-3)
    p.add_argument("--patience", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--methods",
        default="rachel,random_search,hyperband",
        help="comma-separated: rachel, rachel_random, random_search, hyperband",
    )
    p.add_argument(
        "--output", default=str(Path(__file__).parent / "results" / "search_vs_tuner.json")
    )
    args = p.parse_args()

    from rachel.core import storage
    from rachel.core.config import budget_config
    from rachel.core.data import load_dataset
    from rachel.core.search import run_search

    splits = load_dataset(
        "fashion_mnist",
        data_dir=args.data_dir,
        seed=args.seed,
        train_size=args.train_size,
        val_size=args.val_size,
        test_size=args.test_size,
    )
    methods = args.methods.split(",")
    rows, budget = [], None
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for method in methods:
            if method.startswith("rachel"):
                cfg = budget_config(
                    "smoke",
                    dataset="fashion_mnist",
                    data_dir=args.data_dir,
                    train_size=args.train_size,
                    val_size=args.val_size,
                    test_size=args.test_size,
                    iterations=args.iterations,
                    candidates=args.candidates,
                    max_new_layers=args.max_new_layers,
                    max_width=args.max_width,
                    epochs=args.epochs,
                    batch_size=args.batch_size,
                    learning_rate=args.learning_rate,
                    patience=args.patience,
                    seed=args.seed,
                    controller="random" if method == "rachel_random" else "rl",
                    time_budget_seconds=budget,
                )
                t0 = time.time()
                m = run_search(cfg, Path(tmp) / method)
                wall = time.time() - t0
                budget = budget or wall
                rows.append(
                    {
                        "method": "RACHEL"
                        + (" (random controller)" if method == "rachel_random" else ""),
                        "test_accuracy": m["test_accuracy"],
                        "models_trained": m["candidates_trained"],
                        "wall_seconds": wall,
                        "params": m["params"],
                    }
                )
            else:
                if budget is None:
                    print("run rachel first: its wall time is the budget", file=sys.stderr)
                    return 2
                rows.append(tuner_run(method, splits, args, budget, Path(tmp) / "kt"))
            r = rows[-1]
            print(
                f"  {r['method']:<32} acc {r['test_accuracy']:.4f}  "
                f"models {r['models_trained']:>3}  "
                f"{r['wall_seconds']:.0f}s",
                flush=True,
            )

    print()
    print(
        f"{'method':<34}{'test acc':>9}{'models':>8}{'wall s':>9}{'time/RACHEL':>13}{'params':>10}"
    )
    for r in rows:
        print(
            f"{r['method']:<34}{r['test_accuracy']:>9.4f}{r['models_trained']:>8}"
            f"{r['wall_seconds']:>9.0f}{r['wall_seconds'] / budget:>13.2f}{r['params']:>10,}"
        )
    storage.write_json(
        args.output,
        {
            "settings": vars(args),
            "budget_seconds": budget,
            "rows": rows,
            "machine": f"{os.cpu_count()} CPU cores",
        },
    )
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The finish's restart learning rate (rachel.core.finish), on full Fashion-MNIST.

One architecture (default conv32 -> conv64) is trained as a candidate of the ``small``
recipe (4 epochs, learning rate 5e-3, cosine decay); then, for each restart rate, the same
trained weights are continued for ``--epochs`` more epochs with a fresh optimizer and a new
cosine schedule, through the finish's own code path
(:func:`rachel.core.training.train_candidate_model` with ``initial_weights``).  Test
accuracy of the trained model and of each continuation are printed as a table and
appended to ``bench/results/finish.json`` (a rate already there is skipped; the base
training is repeated on a resumed run, deterministically).

    python bench/finish.py --data-dir ../shared/data/fashion-mnist --rates 5e-3,1.5e-3,5e-4
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))

BASE = dict(
    epochs=4,
    batch_size=128,
    learning_rate=5e-3,
    patience=2,
    augmentation="none",
    head="flatten",
    pool_first=True,
)


def main() -> int:
    from resumable import ResultsFile
    from spec_arg import parse_spec
    from table import print_key_values

    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", default="../shared/data/fashion-mnist")
    p.add_argument("--rates", default="5e-3,1.5e-3,5e-4")
    p.add_argument("--epochs", type=int, default=4, help="epochs of each continuation")
    p.add_argument("--spec", default="conv32,conv64", help="comma list of conv<W> / res<W>")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default=str(Path(__file__).parent / "results" / "finish.json"))
    args = p.parse_args()

    import numpy as np

    from rachel.core import devices
    from rachel.core.data import load_dataset
    from rachel.core.input_pipeline import normalise
    from rachel.core.training import TrainingSettings, train_candidate_model

    spec = parse_spec(args.spec)
    splits = load_dataset("fashion_mnist", data_dir=args.data_dir, seed=args.seed)
    results = ResultsFile(args.output, {"base": BASE, "spec": spec.describe()})
    options = devices.resolve("off", "off", "off")

    def test_accuracy(model: object) -> float:
        probs = model.predict(normalise(splits.x_test), batch_size=512, verbose=0)  # type: ignore[attr-defined]
        return float((np.argmax(probs, -1) == splits.y_test).mean())

    def record(key: str, settings: TrainingSettings, result: object, seconds: float) -> None:
        m = result.metrics  # type: ignore[attr-defined]
        results.add(
            key,
            {
                "learning_rate": settings.learning_rate,
                "epochs": settings.epochs,
                "test_accuracy": test_accuracy(result.model),  # type: ignore[attr-defined]
                "val_accuracy": m["val_accuracy"],
                "val_loss": m["val_loss"],
                "epochs_run": m["epochs_run"],
                "wall_seconds": seconds,
            },
        )

    keyed = f"{spec.describe()}|seed{args.seed}"
    base = TrainingSettings(**BASE, seed=args.seed)
    started = time.perf_counter()
    trained = train_candidate_model(spec, splits, base, options)
    if not results.has(f"base|{keyed}"):
        record(f"base|{keyed}", base, trained, time.perf_counter() - started)
    weights = trained.model.get_weights()
    for rate in (float(r) for r in args.rates.split(",")):
        key = f"restart_{rate:g}|{args.epochs}ep|{keyed}"
        if results.has(key):
            continue
        settings = TrainingSettings(
            **{**BASE, "learning_rate": rate, "epochs": args.epochs}, seed=args.seed + 1
        )
        started = time.perf_counter()
        continued = train_candidate_model(spec, splits, settings, options, initial_weights=weights)
        record(key, settings, continued, time.perf_counter() - started)
        print(f"restart {rate:g}: test {results.runs[-1]['test_accuracy']:.4f}", flush=True)
    rows = [
        (
            r["key"].split("|")[0],
            f"test {r['test_accuracy']:.4f}  val {r['val_accuracy']:.4f}  "
            f"val_loss {r['val_loss']:.4f}  {r['epochs_run']} epochs  {r['wall_seconds']:.0f} s",
        )
        for r in results.runs
    ]
    print_key_values(rows, header="training")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

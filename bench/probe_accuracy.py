"""How well the trainer's probe predicts an epoch (rachel.core.training.probe_schedule).

For each architecture and thread count (each in its own process: the backend's threads are
fixed at start-up), the probe times its throw-away copy, then one real epoch is trained
through :func:`rachel.core.training.fit_model` (training steps, validation pass and all).
The ratio actual / predicted (the probe's seconds per example over the training split,
plus the validation pass at a third of a training step) is what
:data:`rachel.core.training.EPOCH_OVERRUN` must cover.  Appended to
``bench/results/probe_accuracy.json`` (a finished case is skipped).

    python bench/probe_accuracy.py --data-dir ../shared/data/fashion-mnist \\
        --specs conv64,res64,conv96 conv32,conv64 --threads 1,0 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def measure(args: argparse.Namespace) -> dict:
    import dataclasses
    import time

    from rachel.core.devices import limit_threads

    limit_threads(args.one_threads or None)
    from spec_arg import parse_spec

    from rachel.core.architecture import decode
    from rachel.core.data import load_dataset
    from rachel.core.training import TrainingSettings, fit_model, probe_schedule

    splits = load_dataset(
        "fashion_mnist", data_dir=args.data_dir, seed=0, train_size=args.train_size
    )
    spec = parse_spec(args.one_spec)

    def build():
        shape = tuple(splits.input_shape)
        return decode(spec, shape, splits.num_classes, head="flatten", pool_first=True)

    settings = TrainingSettings(
        epochs=20, batch_size=128, augmentation="none", pool_first=True, time_limit=1e4
    )
    _, probe = probe_schedule(build, splits, settings)
    per = probe["seconds_per_example"]
    started = time.perf_counter()
    fit_model(build(), splits, dataclasses.replace(settings, epochs=1, time_limit=None))
    actual = time.perf_counter() - started
    predicted = len(splits.y_train) * per + len(splits.y_val) * per / 3.0
    return {"actual_seconds": actual, "predicted_seconds": predicted, "ratio": actual / predicted}


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", default="../shared/data/fashion-mnist")
    p.add_argument("--specs", nargs="+", default=["conv64,res64,conv96", "conv32,conv64"])
    p.add_argument("--threads", default="1,0", help="comma list; 0 = the backend's default")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--train-size", type=int, default=16_000)
    p.add_argument("--one-spec", help=argparse.SUPPRESS)
    p.add_argument("--one-threads", type=int, help=argparse.SUPPRESS)
    p.add_argument(
        "--output", default=str(Path(__file__).parent / "results" / "probe_accuracy.json")
    )
    args = p.parse_args()
    if args.one_spec:
        print(json.dumps(measure(args)))
        return 0

    from resumable import ResultsFile
    from table import print_key_values

    results = ResultsFile(args.output, {"train_size": args.train_size, "batch_size": 128})
    for spec in args.specs:
        for threads in (int(t) for t in args.threads.split(",")):
            for repeat in range(args.repeats):
                key = f"{spec}|threads{threads}|{args.train_size}|{repeat}"
                if results.has(key):
                    continue
                out = (
                    subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--data-dir",
                            args.data_dir,
                            "--one-spec",
                            spec,
                            "--one-threads",
                            str(threads),
                            "--train-size",
                            str(args.train_size),
                        ],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    .stdout.strip()
                    .splitlines()[-1]
                )
                run = {"spec": spec, "threads": threads or None, **json.loads(out)}
                results.add(key, run)
                print(f"{key}: ratio {run['ratio']:.3f}", flush=True)
    rows = [
        (
            f"{r['spec']} / {r['threads'] or 'default'} threads",
            f"predicted {r['predicted_seconds']:.1f} s, actual {r['actual_seconds']:.1f} s, "
            f"ratio {r['ratio']:.3f}",
        )
        for r in results.runs
    ]
    print_key_values(rows, header="epoch")
    ratios = [r["ratio"] for r in results.runs]
    if ratios:
        print(
            f"ratio: min {min(ratios):.3f}, mean {sum(ratios) / len(ratios):.3f}, "
            f"max {max(ratios):.3f}"
        )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

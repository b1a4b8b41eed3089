"""Overhead of the local Kubeflow run (``rachel run``, kfp.local) over the in-process
search (``rachel search``) on the same budget, measured in one run.

Usage::

    python bench/pipeline_overhead.py [--output bench/results/pipeline_overhead.json]
        [--repeats 1] [config options of `rachel search`, e.g. --budget smoke]

Both commands run as fresh ``python -m rachel.cli`` processes (each pays its own imports),
one after the other, on real Fashion-MNIST (found through $RACHEL_DATA_DIR, else
../shared/data/fashion-mnist relative to the repository).  The default budget is the e2e
test's tiny one (2 iterations x 2 candidates, 1,500 training images, 3 epochs).  The
ratio is local-pipeline seconds / in-process seconds; the difference is the per-task
cost of kfp.local: a new Python process per task (TensorFlow imported again each time),
artifact copies, and tasks that kfp.local runs one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--train-size",
    "1500",
    "--val-size",
    "200",
    "--test-size",
    "300",
    "--epochs",
    "3",
    "--max-width",
    "32",
    "--max-new-layers",
    "1",
    "--iterations",
    "2",
    "--candidates",
    "2",
    "--set",
    "ensemble_epochs=2",
    "--set",
    "final_ensemble_epochs=5",
    "--time-budget",
    "0",
]


def _data_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    if "RACHEL_DATA_DIR" not in env:
        shared_root = Path(os.environ.get("RACHEL_SHARED_DIR", REPO.parent / "shared"))
        shared = shared_root / "data" / "fashion-mnist"
        (tmp / "data").mkdir()
        (tmp / "data" / "fashion-mnist").symlink_to(shared, target_is_directory=True)
        env["RACHEL_DATA_DIR"] = str(tmp / "data")
    return env


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "rachel.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-2000:])
        raise SystemExit(f"{args[0]} failed with exit code {done.returncode}")
    found = re.search(r"^metrics:\s+(\S+)", done.stdout, re.M)
    if found is None:
        sys.stderr.write(done.stdout[-3000:])
        raise SystemExit(f"{args[0]} printed no 'metrics:' line")
    metrics = json.loads(Path(found.group(1)).read_text())
    return seconds, metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", default=str(REPO / "bench" / "results" / "pipeline_overhead.json")
    )
    parser.add_argument("--repeats", type=int, default=1)
    args, config_args = parser.parse_known_args(argv)
    config_args = config_args or TINY
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = _data_env(tmp)
        for r in range(args.repeats):
            search_s, search_m = _timed(
                ["search", "--quiet", "--output", str(tmp / f"s{r}"), *config_args], env
            )
            run_s, run_m = _timed(["run", "--output", str(tmp / f"p{r}"), *config_args], env)
            rows.append(
                {
                    "repeat": r,
                    "search_seconds": search_s,
                    "run_seconds": run_s,
                    "ratio": run_s / search_s,
                    "search_test_accuracy": search_m["test_accuracy"],
                    "run_test_accuracy": run_m["test_accuracy"],
                }
            )
    print(
        f"{'repeat':>6} {'rachel search s':>16} {'rachel run s':>13} {'ratio':>6} "
        f"{'acc search':>10} {'acc run':>8}"
    )
    for row in rows:
        print(
            f"{row['repeat']:>6} {row['search_seconds']:>16.1f} {row['run_seconds']:>13.1f} "
            f"{row['ratio']:>6.2f} {row['search_test_accuracy']:>10.4f} "
            f"{row['run_test_accuracy']:>8.4f}"
        )
    result = {
        "benchmark": "pipeline_overhead",
        "config_args": config_args,
        "rows": rows,
        "ratio": rows[-1]["ratio"],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(f"ratio (rachel run / rachel search): {result['ratio']:.2f}  -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

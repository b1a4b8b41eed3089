"""Throughput and memory of the incremental NAS-Bench-101 environment (one core per process).

Three phases, each in its own subprocess so that peak RSS (``resource.getrusage``) is per phase:

* ``build``: precompute the CellIndex (neighbour lists of all 423,624 cells) with ``--workers``
  processes; wall time and peak RSS of the main process and of the workers;
* ``load``: load the cached index and build a tabular and a real-subset environment; load time
  and peak RSS (must stay < 1 GiB);
* ``steps``: env-steps/s of ``NasBenchVectorEnv`` for 1, 8, 32, 64 environments, N = 50, random
  valid actions, for ``tabular`` with a fully known synthetic accuracy (the surrogate setting)
  and ``real_subset`` with the table's real validation accuracies.

    python bench/nasbench_env.py [--table PATH] [--cache PATH] [--workers 2] [--skip-build]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MIB = 1024 * 1024


def _rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # Linux: KiB


def _table_accuracy(table: str) -> np.ndarray:
    import pyarrow.parquet as pq

    col = pq.read_table(table, columns=["val_accuracy"]).column(0).to_pylist()
    return np.array([np.mean(v) if v else np.nan for v in col], dtype=np.float64)


def phase_build(args: argparse.Namespace) -> dict:
    from rachel.core.nasbench.index import CellIndex

    t = time.perf_counter()
    index = CellIndex.build(args.table, workers=args.workers)
    seconds = time.perf_counter() - t
    t = time.perf_counter()
    index.save(args.cache)
    save_s = time.perf_counter() - t
    deg = index.degrees()
    return {
        "workers": args.workers,
        "seconds": seconds,
        "seconds_save": save_s,
        "meta": index.meta,
        "cells": len(index),
        "candidates": index.meta["candidates"],
        "neighbour_edges": int(len(index.indices)),
        "outside": index.outside,
        "degree_mean": float(deg.mean()),
        "degree_max": int(deg.max()),
        "degree_zero": int((deg == 0).sum()),
        "cells_with_more_than_50": int((deg > 50).sum()),
        "peak_rss_mib_main": _rss_mib(),
        "peak_rss_mib_largest_worker": _rss_mib(resource.RUSAGE_CHILDREN),
        "cache_bytes": os.path.getsize(args.cache),
        "index_nbytes": index.nbytes,
    }


def phase_load(args: argparse.Namespace) -> dict:
    from rachel.core.nasbench.environment import NasBenchVectorEnv
    from rachel.core.nasbench.index import CellIndex

    base = _rss_mib()
    t = time.perf_counter()
    index = CellIndex.load(args.cache)
    load_s = time.perf_counter() - t
    after_load = _rss_mib()
    t = time.perf_counter()
    acc = _table_accuracy(args.table)
    acc_s = time.perf_counter() - t
    t = time.perf_counter()
    tab = NasBenchVectorEnv(index, _dense(len(index)), num_envs=64, seed=0)
    real = NasBenchVectorEnv(index, acc, num_envs=64, mode="real_subset", seed=0)
    for env in (tab, real):
        obs, _ = env.reset()
        for _ in range(50):
            obs, *_ = env.step(_actions(obs["action_mask"], np.random.default_rng(0)))
    env_s = time.perf_counter() - t
    return {
        "seconds_load_index": load_s,
        "seconds_read_accuracy": acc_s,
        "seconds_two_envs_and_100_steps": env_s,
        "rss_mib_python_baseline": base,
        "peak_rss_mib_after_load": after_load,
        "peak_rss_mib_with_two_envs": _rss_mib(),
        "known_cells": int((~np.isnan(acc)).sum()),
    }


def _dense(n: int) -> np.ndarray:
    return 0.80 + 0.15 * np.random.default_rng(0).random(n)


def _actions(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random valid action per env (terminate included)."""
    return np.argmax(rng.random(mask.shape) * mask, axis=1)


def phase_steps(args: argparse.Namespace) -> dict:
    from rachel.core.nasbench.environment import NasBenchVectorEnv
    from rachel.core.nasbench.index import CellIndex

    index = CellIndex.load(args.cache)
    acc = {"tabular": _dense(len(index)), "real_subset": _table_accuracy(args.table)}
    out: dict = {}
    for mode in ("tabular", "real_subset"):
        for b in (1, 8, 32, 64):
            env = NasBenchVectorEnv(
                index, acc[mode], num_envs=b, max_neighbours=50, mode=mode, seed=1
            )
            rng = np.random.default_rng(1)
            obs, _ = env.reset()
            for _ in range(20):
                obs, *_ = env.step(_actions(obs["action_mask"], rng))
            steps = max(200, args.env_steps // b)
            in_step = 0.0
            episodes = 0
            t0 = time.perf_counter()
            for _ in range(steps):
                a = _actions(obs["action_mask"], rng)
                t = time.perf_counter()
                obs, r, term, trunc, info = env.step(a)
                in_step += time.perf_counter() - t
                episodes += int((term | trunc).sum())
            total = time.perf_counter() - t0
            out[f"{mode}/B={b}"] = {
                "mode": mode,
                "num_envs": b,
                "batch_steps": steps,
                "env_steps": steps * b,
                "env_steps_per_s": steps * b / in_step,
                "env_steps_per_s_with_action_choice": steps * b / total,
                "episodes_finished": episodes,
            }
    out["peak_rss_mib"] = _rss_mib()
    return out


def run_phase(name: str, argv: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, *argv]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"phase {name} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    from rachel.core.nasbench.index import default_cache_path, default_table_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(default_table_path()))
    parser.add_argument("--cache", default=None, help="index .npz (default ~/.cache/rachel/...)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--env-steps", type=int, default=20000, help="env-steps per setting")
    parser.add_argument("--skip-build", action="store_true", help="reuse an existing cache")
    parser.add_argument("--phase", choices=["build", "load", "steps"], default=None)
    parser.add_argument("--output", default=str(RESULTS / "nasbench_env.json"))
    args = parser.parse_args()
    args.cache = args.cache or str(default_cache_path(args.table))
    if args.phase:
        result = {"build": phase_build, "load": phase_load, "steps": phase_steps}[args.phase](args)
        print(json.dumps(result))
        return

    argv = [
        "--table",
        args.table,
        "--cache",
        args.cache,
        "--workers",
        str(args.workers),
        "--env-steps",
        str(args.env_steps),
    ]
    result: dict = {
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_start": os.getloadavg()[0],
    }
    if not args.skip_build or not os.path.exists(args.cache):
        result["build"] = run_phase("build", argv)
        b = result["build"]
        print(
            f"build: {b['seconds']:.1f} s with {b['workers']} workers, "
            f"{b['cells']:,} cells, {b['candidates']:,} candidates, "
            f"{b['neighbour_edges']:,} neighbour entries, outside {b['outside']}, "
            f"mean degree {b['degree_mean']:.2f} (max {b['degree_max']}), "
            f"peak RSS main {b['peak_rss_mib_main']:.0f} MiB, "
            f"worker {b['peak_rss_mib_largest_worker']:.0f} MiB, "
            f"cache {b['cache_bytes'] / MIB:.1f} MiB"
        )
    result["load"] = run_phase("load", argv)
    ld = result["load"]
    print(
        f"load: index {ld['seconds_load_index']:.2f} s, peak RSS after load "
        f"{ld['peak_rss_mib_after_load']:.0f} MiB, with two 64-env envs "
        f"{ld['peak_rss_mib_with_two_envs']:.0f} MiB (limit 1024)"
    )
    result["steps"] = run_phase("steps", argv)
    print(f"{'mode':<14}{'envs':>6}{'env-steps/s':>14}{'incl. policy':>14}")
    for row in result["steps"].values():
        if isinstance(row, dict):
            print(
                f"{row['mode']:<14}{row['num_envs']:>6}{row['env_steps_per_s']:>14,.0f}"
                f"{row['env_steps_per_s_with_action_choice']:>14,.0f}"
            )
    from rachel.core import storage

    result["load_average_1min_at_end"] = os.getloadavg()[0]
    print(
        f"load average {result['load_average_1min_at_start']:.2f} -> "
        f"{result['load_average_1min_at_end']:.2f} on {os.cpu_count()} cores"
    )
    storage.write_json(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

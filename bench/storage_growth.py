"""Bytes a search stores: ensembles that reference their members (format 2) against
ensembles that copied them (format 1), measured on one real run.

Usage::

    python bench/storage_growth.py [--iterations 10] [--train-size 1000] [--val-size 2000]
        [--data-dir ../shared/data/fashion-mnist] [--output bench/results/storage_growth.json]

One ``rachel search`` (:func:`rachel.core.search.run_search`) on a real Fashion-MNIST subset,
``candidates=2``, 1 epoch, ``max_width=16``, no time budget, one training thread.  Then:

* **new layout**: the bytes the run wrote, in total and under ``iterations/*/ensemble``;
* **old layout**, computed from the same run (not a second run): for each iteration, its
  ``ensemble.json`` serialised as format 1 wrote it (no member ``uri``) plus one copy of
  the folder of every distinct member in that ensemble, which is exactly what format 1's
  ``EnsembleState.write`` copied (``shutil.copytree`` of each member's candidate folder);
* **member reads**: the time weighing spends reading the final ensemble's members' logits
  through their references (local, and on gcp-storage-emulator if it is installed: the
  run uploaded, the ensemble opened from the bucket) against one stacked ``.npy`` holding
  the same arrays, the cache an ensemble could have kept instead.  The emulator is on
  127.0.0.1, so it shows the per-object client overhead, not a real bucket's latency.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from table import print_key_values  # noqa: E402


def _bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _old_ensemble_bytes(ensemble: Path, candidates: dict[str, Path]) -> int:
    """What format 1 wrote for this ensemble: its JSON without member URIs, plus a copy of
    each distinct member's candidate folder."""
    record = json.loads((ensemble / "ensemble.json").read_text())
    record["format"] = 1
    record["members"] = [{k: v for k, v in m.items() if k != "uri"} for m in record["members"]]
    size = len(json.dumps(record, indent=2, sort_keys=True).encode())
    return size + sum(
        _bytes(candidates[cid]) for cid in {m["candidate_id"] for m in record["members"]}
    )


def _median_seconds(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _read_timings(ensemble: Path, output: Path, repeats: int) -> dict[str, Any]:
    import numpy as np

    from rachel.core import storage
    from rachel.core.ensemble_state import EnsembleState

    state = EnsembleState.read(ensemble)
    logits = state.member_logits()
    stacked = output.parent / "stacked_logits.npy"
    np.save(stacked, np.stack(logits))
    timings: dict[str, Any] = {
        "members": len(state.members),
        "distinct_members": len({m["candidate_id"] for m in state.members}),
        "stacked_bytes": stacked.stat().st_size,
        "local_by_reference_s": _median_seconds(
            lambda: EnsembleState.read(ensemble).member_logits(), repeats
        ),
        "local_stacked_s": _median_seconds(lambda: np.load(stacked), repeats),
    }
    try:
        import gcp_storage_emulator  # noqa: F401
        from gcs_emulator import emulator_bucket
    except ImportError:
        timings["gcs_emulator"] = "gcp-storage-emulator not installed"
        return timings
    with emulator_bucket() as bucket:
        run = f"{bucket}/run"
        for path in sorted(p for p in output.rglob("*") if p.is_file()):
            rel = path.relative_to(output).as_posix()
            if rel.startswith("iterations/") and not rel.endswith(".keras"):
                storage.upload_file(path, f"{run}/{rel}")
        storage.upload_file(stacked, f"{run}/stacked_logits.npy")
        remote = f"{run}/{ensemble.relative_to(output).as_posix()}"
        got = EnsembleState.read(remote).member_logits()  # relative references, from a bucket
        assert all(np.array_equal(a, b) for a, b in zip(got, logits, strict=True))
        timings["gcs_emulator_by_reference_s"] = _median_seconds(
            lambda: EnsembleState.read(remote).member_logits(), repeats
        )
        timings["gcs_emulator_stacked_s"] = _median_seconds(
            lambda: np.load(io.BytesIO(storage.read_bytes(f"{run}/stacked_logits.npy"))), repeats
        )
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=1000)
    parser.add_argument("--val-size", type=int, default=2000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--data-dir",
        default=str(
            Path(os.environ.get("RACHEL_SHARED_DIR", REPO.parent / "shared"))
            / "data"
            / "fashion-mnist"
        ),
    )
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "storage_growth.json"))
    args = parser.parse_args(argv)

    from rachel.core.config import budget_config
    from rachel.core.search import run_search

    config = budget_config(
        "smoke",
        data_dir=args.data_dir,
        train_size=args.train_size,
        val_size=args.val_size,
        test_size=args.test_size,
        iterations=args.iterations,
        candidates=2,
        epochs=1,
        max_width=16,
        parallel_candidates=1,
        train_threads=1,
    ).replace(time_budget_seconds=None, max_candidate_seconds=None)
    with tempfile.TemporaryDirectory(prefix="rachel-storage-") as tmp:
        output = Path(tmp) / "run"
        started = time.perf_counter()
        run_search(config, output)
        search_seconds = time.perf_counter() - started
        iterations = sorted((output / "iterations").iterdir())
        candidates = {p.name: p for it in iterations for p in (it / "candidates").iterdir()}
        rows = []
        for it in iterations:
            ensemble = it / "ensemble"
            members = json.loads((ensemble / "ensemble.json").read_text())["members"]
            rows.append(
                {
                    "iteration": int(it.name[2:]),
                    "members": len(members),
                    "distinct_members": len({m["candidate_id"] for m in members}),
                    "new_ensemble_bytes": _bytes(ensemble),
                    "old_ensemble_bytes": _old_ensemble_bytes(ensemble, candidates),
                    "candidate_bytes": _bytes(it / "candidates"),
                }
            )
        reads = _read_timings(iterations[-1] / "ensemble", output, args.repeats)
        total_new = _bytes(output)
        new_ens = sum(r["new_ensemble_bytes"] for r in rows)
        old_ens = sum(r["old_ensemble_bytes"] for r in rows)
    summary = {
        "iterations_run": len(rows),
        "search_seconds": search_seconds,
        "total_output_bytes_new": total_new,
        "ensemble_bytes_new": new_ens,
        "ensemble_bytes_old_computed": old_ens,
        "total_output_bytes_old_computed": total_new - new_ens + old_ens,
        "candidate_bytes": sum(r["candidate_bytes"] for r in rows),
        "ensemble_ratio_old_over_new": old_ens / new_ens,
    }
    print(
        f"{'it':>3} {'members':>7} {'new ensemble B':>15} {'old ensemble B':>15} "
        f"{'candidates B':>13}"
    )
    for r in rows:
        print(
            f"{r['iteration']:>3} {r['members']:>7} {r['new_ensemble_bytes']:>15,} "
            f"{r['old_ensemble_bytes']:>15,} {r['candidate_bytes']:>13,}"
        )
    print()
    print_key_values(
        [
            (
                k,
                f"{v * 1000:.2f} ms"
                if k.endswith("_s")
                else f"{v:,.3f}"
                if isinstance(v, float)
                else f"{v:,}",
            )
            for k, v in {**summary, **reads}.items()
            if not isinstance(v, str)
        ]
    )
    result = {
        "meta": {
            "command": " ".join(["python bench/storage_growth.py", *(argv or sys.argv[1:])]),
            "config": {
                "train_size": args.train_size,
                "val_size": args.val_size,
                "test_size": args.test_size,
                "iterations": args.iterations,
                "candidates": 2,
                "epochs": 1,
                "max_width": 16,
                "seed": config.seed,
            },
            "old_layout": "computed from the same run (format 1 copied each distinct "
            "member's candidate folder into every ensemble)",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
        },
        "summary": summary,
        "member_reads": reads,
        "iterations": rows,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

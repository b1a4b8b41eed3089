"""Time and memory of loading the NAS-Bench-101 table, and tfrecord -> parquet conversion speed.

Usage::

    python bench/nasbench_load.py [--table PATH] [--convert-rows 20268]
        [--output bench/results/nasbench_load.json]

Measures, in this process:

* loading the shared Parquet table into the API (``NASBench``) and the per-cell means used by
  the estimators; peak memory as ``resource.getrusage(...).ru_maxrss`` (whole process, imports
  included), resident set growth (``/proc/self/status`` VmRSS), ``tracemalloc`` peak (Python
  allocations only) and the Arrow pool's bytes.  The loaded benchmark must stay under 1 GiB;
* writing an official-format tfrecord of N records built from real rows (the cells with real
  metrics; N <= 20,272 runs) and converting it to Parquet, with the throughput extrapolated to
  the 1,270,872 records of ``nasbench_only108.tfrecord``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
from table import print_key_values  # bench/table.py (the script's folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TABLE = os.environ.get(
    "RACHEL_NASBENCH101_TABLE",
    str(REPO.parent / "shared" / "data" / "nasbench101" / "nasbench101_108.parquet"),
)
GIB = 1 << 30
OFFICIAL_ONLY108_RECORDS = 423_624 * 3


def _rss_bytes() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=DEFAULT_TABLE)
    parser.add_argument(
        "--convert-rows",
        type=int,
        default=20_268,
        help="real cells to write as tfrecord (all their runs)",
    )
    parser.add_argument(
        "--full-scale",
        action="store_true",
        help="convert all 423,624 cells x 3 runs (1.27M records, the size of "
        "nasbench_only108.tfrecord); cells without real metrics get "
        "synthetic values (timing/memory only)",
    )
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "nasbench_load.json"))
    args = parser.parse_args(argv)

    import pyarrow as pa

    from rachel.core import storage
    from rachel.core.nasbench import tfrecord as tfr
    from rachel.core.nasbench.api import NASBench
    from rachel.core.nasbench.estimators import RealSubsetEstimator, TabularEstimator
    from rachel.core.nasbench.table import BenchTable

    def load() -> tuple[BenchTable, NASBench, TabularEstimator, RealSubsetEstimator]:
        bench = BenchTable.load(args.table)
        nb = NASBench(bench, rng=0)
        tab, sub = TabularEstimator(bench), RealSubsetEstimator(bench)
        _ = bench.val_mean, bench.test_mean, len(sub)
        return bench, nb, tab, sub

    rss_before = _rss_bytes()
    t0 = time.perf_counter()
    bench, nb, tab, sub = load()
    load_s = time.perf_counter() - t0
    rss_after = _rss_bytes()
    maxrss = _maxrss_bytes()  # peak so far: imports + one load
    arrow_bytes = pa.total_allocated_bytes()
    # a second load under tracemalloc (slower) for the Python-object peak alone
    tracemalloc.start()
    again = load()
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del again

    # lookup speed on the loaded benchmark
    probe = sub.sample(np.random.default_rng(0), 100_000)
    t0 = time.perf_counter()
    acc = tab.accuracy_array(probe)
    lookup_s = time.perf_counter() - t0
    assert np.isfinite(acc).all()
    t0 = time.perf_counter()
    n_hashes = sum(1 for _ in nb.hash_iterator())
    iter_s = time.perf_counter() - t0

    # tfrecord write + conversion (in a child process, so its peak memory is its own)
    if args.full_scale:
        rows = np.arange(len(bench))
    else:
        rows = np.flatnonzero(~np.isnan(bench.val_mean))[: args.convert_rows]
    t = (
        bench.table.select(
            [
                "module_hash",
                "num_vertices",
                "adjacency",
                "operations",
                "trainable_parameters",
                "val_accuracy",
                "test_accuracy",
                "training_time",
            ]
        )
        .take(pa.array(rows))
        .to_pydict()
    )
    synth = np.random.default_rng(0)

    def records():
        for i in range(len(rows)):
            n = t["num_vertices"][i]
            adj = (
                np.frombuffer(t["adjacency"][i].encode(), dtype=np.uint8).reshape(7, 7) - ord("0")
            )[:n, :n]
            runs = list(
                zip(
                    t["val_accuracy"][i] or [],
                    t["test_accuracy"][i] or [],
                    t["training_time"][i] or [],
                    strict=True,
                )
            )
            if not runs:  # --full-scale only: SYNTHETIC metrics, for timing and memory
                runs = [(float(v), None, 1500.0) for v in synth.uniform(0.8, 0.95, size=3)]
            for val, test, ttime in runs:
                m = tfr.ModelMetrics(
                    (
                        tfr.EvaluationData(0.0),
                        tfr.EvaluationData(54.0),
                        tfr.EvaluationData(108.0, ttime, None, val, test),
                    ),
                    t["trainable_parameters"][i],
                )
                yield tfr.NasBenchRecord(
                    t["module_hash"][i], 108, adj, tuple(t["operations"][i]), m
                )

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp, "bench.tfrecord"), Path(tmp, "bench.parquet")
        t1 = time.perf_counter()
        n_written = tfr.write_records(src, records())
        write_s = time.perf_counter() - t1
        tf_bytes = src.stat().st_size
        code = (
            "import json, sys; from rachel.core.nasbench.table import "
            "convert_tfrecord_to_parquet as c; s = c(sys.argv[1], sys.argv[2]); "
            "print(json.dumps([s.records, s.cells, s.seconds]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(src), str(dst)],
            check=True,
            capture_output=True,
            text=True,
        )
        n_records, n_cells, convert_s = json.loads(out.stdout.strip().splitlines()[-1])
        child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * (
            1 if sys.platform == "darwin" else 1024
        )
        pq_bytes = dst.stat().st_size
    assert n_records == n_written
    per_record = convert_s / n_records

    result = {
        "benchmark": "nasbench_load",
        "table": args.table,
        "rows": len(bench),
        "load_seconds": load_s,
        "rss_before_bytes": rss_before,
        "rss_after_bytes": rss_after,
        "rss_growth_bytes": rss_after - rss_before,
        "ru_maxrss_bytes": maxrss,
        "tracemalloc_peak_bytes": py_peak,
        "arrow_allocated_bytes": arrow_bytes,
        "under_1_gib": bool(maxrss < GIB),
        "lookup_100k_hashes_seconds": lookup_s,
        "hash_iterator_seconds": iter_s,
        "hash_iterator_count": n_hashes,
        "convert_full_scale": bool(args.full_scale),
        "convert_metrics": (
            "real rows; cells without real metrics get SYNTHETIC metrics"
            if args.full_scale
            else "real rows only"
        ),
        "convert_records": n_records,
        "convert_cells": n_cells,
        "convert_child_peak_rss_bytes": child_rss,
        "tfrecord_bytes": tf_bytes,
        "parquet_bytes": pq_bytes,
        "tfrecord_write_seconds": write_s,
        "convert_seconds": convert_s,
        "convert_records_per_second": n_records / convert_s,
        "extrapolated_only108_convert_seconds": per_record * OFFICIAL_ONLY108_RECORDS,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    mib = 1 << 20
    rows = [
        ("load table + API + estimators", f"{load_s:.2f} s ({len(bench):,} rows)"),
        (
            "peak RSS (ru_maxrss, imports + load)",
            f"{maxrss / mib:.0f} MiB  (< 1 GiB: {result['under_1_gib']})",
        ),
        ("RSS growth from loading", f"{(rss_after - rss_before) / mib:.0f} MiB"),
        ("tracemalloc peak (Python objects)", f"{py_peak / mib:.1f} MiB"),
        ("Arrow pool", f"{arrow_bytes / mib:.1f} MiB"),
        ("100k hash look-ups", f"{1000 * lookup_s:.1f} ms"),
        (
            "tfrecord write",
            f"{n_records:,} records ({n_cells:,} cells), {tf_bytes / mib:.1f} MiB, {write_s:.2f} s",
        ),
        (
            "tfrecord -> parquet",
            f"{convert_s:.2f} s ({result['convert_records_per_second']:,.0f} records/s), "
            f"parquet {pq_bytes / mib:.2f} MiB",
        ),
        ("conversion peak RSS (child process)", f"{child_rss / mib:.0f} MiB"),
        (
            "extrapolated: only108 (1.27M records)",
            f"{result['extrapolated_only108_convert_seconds']:.0f} s",
        ),
    ]
    print_key_values(rows, "measure")
    storage.write_json(args.output, result)
    print(f"wrote {args.output}")
    return 0 if result["under_1_gib"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

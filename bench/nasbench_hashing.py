"""md5 vs blake2s NAS-Bench-101 fingerprints over all 423,624 cells (one core).

Checks that (1) md5 reproduces every row's ``module_hash``; (2) blake2s and the vectorised
64-bit fingerprint give every table cell a distinct value, so they partition the table exactly as
md5 does; (3) on random isomorphic relabellings of ``--permuted`` cells all three fingerprints
are unchanged (same equivalence classes beyond the table's representatives).

    python bench/nasbench_hashing.py [--table PATH] [--limit N] [--output bench/results/...json]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from rachel.core import storage  # noqa: E402
from rachel.core.nasbench.hashing import (  # noqa: E402
    batch_fingerprint,
    hash_module,
    hash_module_blake2s,
)
from rachel.core.nasbench.index import STRUCTURE_COLUMNS, _read_structure, default_table_path  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _permute(adj: np.ndarray, lab: np.ndarray, n: int, rng: np.random.Generator):
    """Random relabelling of the middle vertices that keeps the matrix upper triangular."""
    m = adj[:n, :n]
    for _ in range(1000):
        perm = np.concatenate([[0], 1 + rng.permutation(n - 2), [n - 1]])
        pm = m[np.ix_(perm, perm)]
        if not np.tril(pm).any():
            return pm, lab[:n][perm]
    return m, lab[:n]


def _primitive_timing(repeats: int = 200000) -> dict[str, float]:
    """Microseconds per call of hashlib.md5 / blake2s on a typical round message (~100 bytes)."""
    import hashlib

    msg = b"x" * 100
    out = {}
    for name, fn in (("md5", hashlib.md5), ("blake2s", hashlib.blake2s)):
        t = time.perf_counter()
        for _ in range(repeats):
            fn(msg).digest()
        out[name] = 1e6 * (time.perf_counter() - t) / repeats
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(default_table_path()))
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--permuted", type=int, default=20000)
    parser.add_argument("--output", default=str(RESULTS / "nasbench_hashing.json"))
    args = parser.parse_args()

    table = pq.read_table(args.table, columns=STRUCTURE_COLUMNS)
    if args.limit:
        table = table.slice(0, args.limit)
    hashes, adj, labels, nv = _read_structure(table)
    hashes = hashes.astype("U32")
    n_rows = len(hashes)
    mats = [adj[i, : nv[i], : nv[i]] for i in range(n_rows)]
    labs = [labels[i, : nv[i]].tolist() for i in range(n_rows)]

    # md5 and blake2s alternate over chunks (order flipped each chunk) so that load from other
    # processes on the machine hits both about equally.
    md5: list[str] = []
    b2: list[str] = []
    t_md5 = t_b2 = 0.0
    step = max(1, n_rows // 40)
    for k, lo in enumerate(range(0, n_rows, step)):
        sl = slice(lo, lo + step)
        for which in ("md5", "b2") if k % 2 == 0 else ("b2", "md5"):
            t = time.perf_counter()
            if which == "md5":
                md5.extend(hash_module(m, lab) for m, lab in zip(mats[sl], labs[sl], strict=True))
                t_md5 += time.perf_counter() - t
            else:
                b2.extend(
                    hash_module_blake2s(m, lab) for m, lab in zip(mats[sl], labs[sl], strict=True)
                )
                t_b2 += time.perf_counter() - t
    prim = _primitive_timing()
    t = time.perf_counter()
    fp = batch_fingerprint(adj, labels, nv)
    t_fp = time.perf_counter() - t

    md5_ok = int(sum(a == b for a, b in zip(md5, hashes.tolist(), strict=True)))
    distinct = {"md5": len(set(md5)), "blake2s": len(set(b2)), "fp64": len(np.unique(fp))}

    rng = np.random.default_rng(0)
    sample = rng.choice(n_rows, size=min(args.permuted, n_rows), replace=False)
    same = {"md5": 0, "blake2s": 0, "fp64": 0}
    padj = np.zeros((len(sample), 7, 7), dtype=np.uint8)
    plab = np.zeros((len(sample), 7), dtype=np.int8)
    for k, i in enumerate(sample.tolist()):
        pm, pl = _permute(adj[i], labels[i], int(nv[i]), rng)
        same["md5"] += hash_module(pm, pl.tolist()) == md5[i]
        same["blake2s"] += hash_module_blake2s(pm, pl.tolist()) == b2[i]
        padj[k, : nv[i], : nv[i]] = pm
        plab[k, : nv[i]] = pl
    same["fp64"] = int((batch_fingerprint(padj, plab, nv[sample]) == fp[sample]).sum())

    rows = [
        ("md5 (official)", t_md5, distinct["md5"], same["md5"]),
        ("blake2s-32 (paper)", t_b2, distinct["blake2s"], same["blake2s"]),
        ("fp64 vectorised", t_fp, distinct["fp64"], same["fp64"]),
    ]
    print(f"cells: {n_rows:,}   md5 == table module_hash: {md5_ok:,}/{n_rows:,}")
    print(f"{'fingerprint':<20}{'seconds':>10}{'us/cell':>10}{'distinct':>12}{'perm. same':>14}")
    for name, sec, dist, sm in rows:
        print(
            f"{name:<20}{sec:>10.2f}{1e6 * sec / n_rows:>10.2f}{dist:>12,}{sm:>8,}/{len(sample):,}"
        )
    print(f"blake2s / md5 time ratio: {t_b2 / t_md5:.3f}   md5 / fp64: {t_md5 / t_fp:.1f}x")
    print(
        f"hashlib on 100 bytes: md5 {prim['md5']:.3f} us, blake2s {prim['blake2s']:.3f} us; "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    result = {
        "cells": n_rows,
        "md5_matches_table": md5_ok,
        "seconds": {"md5": t_md5, "blake2s": t_b2, "fp64": t_fp},
        "distinct": distinct,
        "same_partition_as_md5": distinct["blake2s"]
        == distinct["md5"]
        == distinct["fp64"]
        == n_rows,
        "permuted_sample": len(sample),
        "permuted_same_hash": same,
        "blake2s_over_md5_time": t_b2 / t_md5,
        "hashlib_us_per_100_bytes": prim,
        "load_average_1min_at_end": os.getloadavg()[0],
        "machine": platform.platform(),
        "cpu_count": os.cpu_count(),
    }
    storage.write_json(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

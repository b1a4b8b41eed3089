"""Size of the compiled pipeline IR for 10 x 4 and 50 x 4 (iterations x candidates).

Usage::

    python bench/compile_size.py [--output bench/results/compile_size.json]

The Argo workflow that the KFP backend makes from the IR is one etcd object (default limit
1.5 MiB).  Reports the IR as ``rachel compile`` writes it (identical components shared)
and as the KFP compiler writes it (one component + executor per task), with and without
the early-stop conditions, and the compile time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHAPES = [(10, 4), (50, 4)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "compile_size.json"))
    args = parser.parse_args(argv)
    from rachel.pipelines.compile import ETCD_OBJECT_LIMIT, compile_to_bytes
    from rachel.pipelines.rachel_pipeline import EarlyStop

    rows = []
    for iterations, candidates in SHAPES:
        for dedupe in (True, False):
            for early in (False, True):
                started = time.perf_counter()
                size = len(
                    compile_to_bytes(
                        iterations=iterations,
                        candidates=candidates,
                        dedupe=dedupe,
                        max_bytes=None,
                        early_stop=EarlyStop(3, 0.95) if early else None,
                    )
                )
                rows.append(
                    {
                        "iterations": iterations,
                        "candidates": candidates,
                        "deduplicated": dedupe,
                        "early_stop": early,
                        "bytes": size,
                        "share_of_etcd_limit": size / ETCD_OBJECT_LIMIT,
                        "compile_seconds": time.perf_counter() - started,
                    }
                )
    print(
        f"{'shape':>6} {'dedup':>6} {'early stop':>10} {'bytes':>11} {'% of 1.5 MiB':>12} "
        f"{'compile s':>9}"
    )
    for r in rows:
        print(
            f"{r['iterations']:>3}x{r['candidates']:<2} {str(r['deduplicated']):>6} "
            f"{str(r['early_stop']):>10} {r['bytes']:>11,} "
            f"{100 * r['share_of_etcd_limit']:>11.1f}% {r['compile_seconds']:>9.1f}"
        )
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(
        json.dumps(
            {"benchmark": "compile_size", "rows": rows, "etcd_limit_bytes": ETCD_OBJECT_LIMIT},
            indent=2,
        )
    )
    print(f"-> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

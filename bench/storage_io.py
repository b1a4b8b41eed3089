"""Object storage figures for recurring runs: reading a dataset from a bucket against local
disk, and what a champion registry holds after two runs.

    python bench/storage_io.py [--data-dir ../shared/data/fashion-mnist] [--repeats 3]

1. The official Fashion-MNIST (70,000 images) written as a Parquet table of PNG bytes (the
   layout Hugging Face ``datasets`` exports) is read with ``load_dataset`` from local disk
   and from ``gs://`` on gcp-storage-emulator (127.0.0.1, the real google-cloud-storage
   client); median of ``--repeats`` reads each, and their ratio (one run, same machine).
2. Two real ``smoke`` searches (no time budget, 5,000 training images, 2 iterations) gated
   into one local registry: its size after each, and what a version holds.

Prints a table and writes ``bench/results/storage_io.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "storage_io.json"


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _write_parquet(data_dir: str, target: Path) -> int:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from rachel.core.data.formats import read_idx

    rows_x, rows_y, rows_split = [], [], []
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = read_idx(f"{data_dir}/{prefix}-images-idx3-ubyte.gz")
        y = read_idx(f"{data_dir}/{prefix}-labels-idx1-ubyte.gz")
        for image, label in zip(x, y, strict=True):
            buffer = io.BytesIO()
            Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
            rows_x.append(buffer.getvalue())
            rows_y.append(int(label))
            rows_split.append(split)
    table = pa.table({"image": pa.array(rows_x, pa.binary()), "label": rows_y, "split": rows_split})
    pq.write_table(table, target)
    return len(rows_y)


def _timed_reads(uri: str, repeats: int) -> list[float]:
    from rachel.core.data import load_dataset

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        splits = load_dataset(uri, seed=0)
        times.append(time.perf_counter() - started)
        assert len(splits.y_train) + len(splits.y_val) == 60000, len(splits.y_train)
    return times


def bench_reads(data_dir: str, repeats: int) -> dict:
    from gcs_emulator import emulator_bucket

    from rachel.core import storage

    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "fashion_mnist.parquet"
        rows = _write_parquet(data_dir, local)
        with emulator_bucket() as bucket:
            uri = f"{bucket}/data/fashion_mnist.parquet"
            storage.upload_file(local, uri)
            local_times = _timed_reads(str(local), repeats)
            gcs_times = _timed_reads(uri, repeats)
        return {
            "rows": rows,
            "parquet_bytes": local.stat().st_size,
            "local_seconds": local_times,
            "emulator_seconds": gcs_times,
            "ratio_emulator_over_local": statistics.median(gcs_times)
            / statistics.median(local_times),
        }


def bench_registry(data_dir: str) -> dict:
    from rachel.core import registry
    from rachel.core.config import budget_config
    from rachel.core.search import run_search

    sizes = []
    with tempfile.TemporaryDirectory() as tmp:
        reg = Path(tmp) / "registry"
        for run in range(2):
            cfg = budget_config(
                "smoke",
                data_dir=data_dir,
                train_size=5000,
                iterations=2,
                time_budget_seconds=None,
                seed=run,
            )
            output = Path(tmp) / f"run{run}"
            metrics = run_search(cfg, output)
            record = registry.promote_search_output(output, str(reg), 0.0, {"seed": run})
            sizes.append(
                {
                    "run": run,
                    "test_accuracy": metrics["test_accuracy"],
                    "decision": record["decision"],
                    "registry_bytes": _tree_bytes(reg),
                    "output_bytes": _tree_bytes(output),
                    "final_bytes": _tree_bytes(output / "final"),
                }
            )
        versions = sorted((reg / "versions").iterdir())
        per_version = {v.name: _tree_bytes(v) for v in versions}
    return {"runs": sizes, "version_bytes": per_version}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "fashion-mnist")
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-registry", action="store_true")
    args = parser.parse_args()
    reads = bench_reads(args.data_dir, args.repeats)
    result = {"reads": reads}
    print("| read Fashion-MNIST Parquet (70k PNG rows) | median s | runs |")
    print("|---|---|---|")
    print(f"| local disk | {statistics.median(reads['local_seconds']):.2f} | {args.repeats} |")
    print(
        f"| gs:// on gcp-storage-emulator | {statistics.median(reads['emulator_seconds']):.2f}"
        f" | {args.repeats} |"
    )
    print(
        f"ratio emulator/local: {reads['ratio_emulator_over_local']:.2f}x "
        f"(file {reads['parquet_bytes'] / 2**20:.1f} MiB)"
    )
    if not args.skip_registry:
        reg = bench_registry(args.data_dir)
        result["registry"] = reg
        print("\n| run | test accuracy | gate | registry bytes after | run output bytes |")
        print("|---|---|---|---|---|")
        for r in reg["runs"]:
            print(
                f"| {r['run']} | {r['test_accuracy']:.4f} | {r['decision']} | "
                f"{r['registry_bytes']:,} | {r['output_bytes']:,} |"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

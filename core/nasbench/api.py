"""A NAS-Bench-101 compatible API (``nasbench.api.NASBench``) without TensorFlow.

``NASBench(dataset_file)`` accepts the official ``.tfrecord`` files or our Parquet table.
Differences from the official class, all deliberate:

* randomness comes from an injected ``np.random.Generator`` (or an int seed), never the global
  ``random`` module;
* ``query`` samples one of the runs *that are known* for the cell (the shared table usually
  has one run per cell, the official file three);
* a metric the data does not have (the shared table has no train accuracy, no half-way
  metrics and test accuracy for one cell only) is returned as ``None``, never invented;
* a spec outside the space raises :class:`OffSpaceError` (the official ``OutOfDomainError``);
  a valid spec without metrics at the requested budget raises :class:`MissingMetricsError`.
  Neither error touches the budget counters;
* ``training_time_spent`` only grows by known training times.

Supported epoch budgets: 108 always; 4/12/36 when the table has values in the matching
``val_accuracy_epoch*`` column (one run, validation accuracy only).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from rachel.core.errors import MissingMetricsError, NasBenchError, OffSpaceError
from rachel.core.nasbench.cell import INPUT, MAX_EDGES, MAX_VERTICES, OPS, OUTPUT, ModelSpec
from rachel.core.nasbench.table import BenchTable, load_table, records_to_table
from rachel.core.nasbench.tfrecord import read_records

__all__ = ["NASBench", "ModelSpec", "OutOfDomainError"]

#: Official name of the off-space error, for code written against ``nasbench.api``.
OutOfDomainError = OffSpaceError

_SHORT_EPOCHS = (4, 12, 36)
_FINAL_KEYS = ("training_time", "train_accuracy", "validation_accuracy", "test_accuracy")
# per-run table column for each official computed-stats key (None: not in any table)
_RUN_COLUMNS = {
    "final_validation_accuracy": "val_accuracy",
    "final_test_accuracy": "test_accuracy",
    "final_training_time": "training_time",
    "final_train_accuracy": "train_accuracy",
    "halfway_training_time": "halfway_training_time",
    "halfway_train_accuracy": "halfway_train_accuracy",
    "halfway_validation_accuracy": "halfway_validation_accuracy",
    "halfway_test_accuracy": "halfway_test_accuracy",
}
_COMPUTED_KEYS = (
    "halfway_training_time",
    "halfway_train_accuracy",
    "halfway_validation_accuracy",
    "halfway_test_accuracy",
    "final_training_time",
    "final_train_accuracy",
    "final_validation_accuracy",
    "final_test_accuracy",
)


def _load(dataset_file: str | os.PathLike[str]) -> BenchTable:
    uri = str(dataset_file)
    suffix = Path(uri).suffix.lower()
    if suffix == ".tfrecord":
        return BenchTable(records_to_table(read_records(uri)), uri)
    if suffix in (".parquet", ".pq"):
        return BenchTable(load_table(uri), uri)
    raise NasBenchError(
        f"cannot tell the format of {uri!r} (expected .tfrecord or .parquet)",
        "pass nasbench_only108.tfrecord / nasbench_full.tfrecord or nasbench101_108.parquet",
    )


class NASBench:
    """User-facing NAS-Bench-101 API, interface-compatible with ``nasbench.api.NASBench``.

    ``rng`` may be a ``np.random.Generator`` or an int seed (``seed`` is accepted as the
    official keyword for the same thing).  Two instances with the same seed return the same
    runs for the same sequence of queries.
    """

    def __init__(
        self,
        dataset_file: str | os.PathLike[str] | BenchTable,
        seed: int | None = None,
        *,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        self.bench = dataset_file if isinstance(dataset_file, BenchTable) else _load(dataset_file)
        self.rng = (
            rng
            if isinstance(rng, np.random.Generator)
            else np.random.default_rng(rng if rng is not None else seed)
        )
        self.config = {
            "module_vertices": MAX_VERTICES,
            "max_edges": MAX_EDGES,
            "available_ops": list(OPS),
        }
        self.valid_epochs = {108} | {
            e
            for e in _SHORT_EPOCHS
            if self.bench.table[f"val_accuracy_epoch{e}"].null_count < len(self.bench)
        }
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0

    # -- spec checks -------------------------------------------------------------------

    def _check_spec(self, model_spec: Any) -> None:
        """The official in-space checks, raising :class:`OffSpaceError`."""
        if not getattr(model_spec, "valid_spec", False):
            raise OffSpaceError(
                "invalid spec, provided graph is disconnected",
                "add a path from the input vertex to the output vertex",
            )
        ops = list(model_spec.ops)
        num_edges = int(np.sum(model_spec.matrix))
        if len(ops) > MAX_VERTICES:
            raise OffSpaceError(
                f"too many vertices, got {len(ops)} (max {MAX_VERTICES})", "remove vertices"
            )
        if num_edges > MAX_EDGES:
            raise OffSpaceError(
                f"too many edges, got {num_edges} (max {MAX_EDGES})", "remove edges"
            )
        if ops[0] != INPUT or ops[-1] != OUTPUT:
            raise OffSpaceError(
                "first operation must be 'input' and the last 'output'",
                "put 'input' at vertex 0 and 'output' at the last vertex",
            )
        for op in ops[1:-1]:
            if op not in OPS:
                raise OffSpaceError(
                    f"unsupported op {op!r} (available ops = {list(OPS)})",
                    f"use one of {', '.join(OPS)}",
                )

    def is_valid(self, model_spec: Any) -> bool:
        """True if the spec is in the search space (does not touch the budget counters)."""
        try:
            self._check_spec(model_spec)
        except OffSpaceError:
            return False
        return True

    def _row(self, model_spec: Any) -> tuple[str, int]:
        self._check_spec(model_spec)
        module_hash = model_spec.hash_spec(self.config["available_ops"])
        row = self.bench.row_of(module_hash)
        if row < 0:
            raise OffSpaceError(
                f"cell {module_hash} passes the space checks but is not in {self.bench.source}",
                "the table does not enumerate the full space: use the full NAS-Bench-101 table",
            )
        return module_hash, row

    # -- statistics --------------------------------------------------------------------

    def _fixed(self, row: int) -> dict[str, Any]:
        t = self.bench.table
        n = int(t["num_vertices"][row].as_py())
        adj = np.frombuffer(t["adjacency"][row].as_py().encode("ascii"), dtype=np.uint8)
        adjacency = (adj.reshape(MAX_VERTICES, MAX_VERTICES)[:n, :n] - ord("0")).astype(np.int8)
        return {
            "module_adjacency": adjacency,
            "module_operations": list(t["operations"][row].as_py()),
            "trainable_parameters": t["trainable_parameters"][row].as_py(),
        }

    def _computed(self, row: int) -> dict[int, list[dict[str, float | None]]]:
        t = self.bench.table
        out: dict[int, list[dict[str, float | None]]] = {}
        val = t["val_accuracy"][row].as_py()
        if val:
            columns = {
                key: (t[col][row].as_py() if self.bench.has_column(col) else None)
                for key, col in _RUN_COLUMNS.items()
            }
            runs = []
            for i in range(len(val)):
                point: dict[str, float | None] = {}
                for key in _COMPUTED_KEYS:
                    values = columns[key]
                    point[key] = values[i] if values is not None and i < len(values) else None
                runs.append(point)
            out[108] = runs
        for e in _SHORT_EPOCHS:
            v = t[f"val_accuracy_epoch{e}"][row].as_py()
            if v is not None:
                short: dict[str, float | None] = dict.fromkeys(_COMPUTED_KEYS)
                short["final_validation_accuracy"] = v
                out[e] = [short]
        return out

    def get_metrics_from_hash(self, module_hash: str) -> tuple[dict[str, Any], dict[int, Any]]:
        """``(fixed_stats, computed_stats)`` of a hash; no budget counters are touched.

        ``computed_stats[epochs][run]`` has the official keys (``halfway_*``, ``final_*``);
        unknown values are ``None``.  Epoch budgets without runs are absent.
        """
        row = self.bench.row_of(module_hash)
        if row < 0:
            raise OffSpaceError(
                f"hash {module_hash!r} is not in {self.bench.source}",
                "take hashes from hash_iterator()",
            )
        return self._fixed(row), self._computed(row)

    def get_metrics_from_spec(self, model_spec: Any) -> tuple[dict[str, Any], dict[int, Any]]:
        """``(fixed_stats, computed_stats)`` as officially shaped; no budget counters."""
        module_hash, _ = self._row(model_spec)
        return copy.deepcopy(self.get_metrics_from_hash(module_hash))

    def query(
        self, model_spec: Any, epochs: int = 108, stop_halfway: bool = False
    ) -> dict[str, Any]:
        """Metrics of one sampled run (official keys); increments the budget counters."""
        if epochs not in self.valid_epochs:
            raise OffSpaceError(
                f"invalid number of epochs {epochs}", f"use one of {sorted(self.valid_epochs)}"
            )
        module_hash, row = self._row(model_spec)
        computed = self._computed(row).get(epochs)
        if not computed:
            raise MissingMetricsError(
                f"cell {module_hash} is in the space but {self.bench.source} has no "
                f"{epochs}-epoch run for it",
                "query cells with known metrics (RealSubsetEstimator / a full official table) "
                "or use a surrogate estimator",
            )
        run = computed[int(self.rng.integers(len(computed)))]
        prefix = "halfway_" if stop_halfway else "final_"
        data = self._fixed(row)
        for key in _FINAL_KEYS:
            data[key] = run[prefix + key]
        if data["training_time"] is not None:
            self.training_time_spent += float(data["training_time"])
        self.total_epochs_spent += epochs // 2 if stop_halfway else epochs
        return data

    def hash_iterator(self) -> Iterator[str]:
        """All module hashes of the table, in table (sorted) order."""
        return (h.decode("ascii") for h in self.bench.hashes)

    def get_budget_counters(self) -> tuple[float, int]:
        """``(training_time_spent, total_epochs_spent)``."""
        return self.training_time_spent, self.total_epochs_spent

    def reset_budget_counters(self) -> None:
        self.training_time_spent = 0.0
        self.total_epochs_spent = 0

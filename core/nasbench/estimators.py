"""Performance estimators: the accuracy a search agent is rewarded with, behind one interface.

Every estimator has a ``name``, ``accuracy_array(hashes) -> float64 array`` (NaN where the
estimator cannot say) and ``accuracy(hash) -> float`` (raises :class:`MissingMetricsError`
where unknown).  Accuracies are fractions in [0, 1] (not percent).

* :class:`TabularEstimator`: the table itself, the mean of the per-run 108-epoch validation
  accuracies (the paper's "mean of all three validation accuracies", section 4.1.1; the shared
  table usually has one run per cell) or, with ``metric="test"``, of the test accuracies.
* :class:`RealSubsetEstimator`: the same numbers restricted to the cells with real metrics,
  plus the list of those cells and uniform sampling from them (so a search can be confined to
  the 20,268 known cells of the shared table).
* :class:`SurrogateEstimator`: XGBoost gradient-boosted trees (NAS-Bench-301 uses an XGB
  ensemble; here one seeded model) fit on the cells with real metrics and predicting every cell
  of the table from its structure.

Cell encoding (paper section 3.2.3, the RL agent's observation, made fixed-length): the
adjacency matrix padded to 7 vertices, strictly upper triangle flattened row-major (21 bits),
followed by a one-hot of the label of each of the 7 vertices over (input, conv3x3, conv1x1,
maxpool3x3, output) (35 bits; all-zero for a padding vertex).  Where the paper leaves the
padding position open we insert padding vertices *before* the output, so the output is always
vertex 6 and "edge into the output" is the same feature for every cell size.  (The table's own
layout pads after the output; :func:`encode_cells` converts.)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rachel.core import storage
from rachel.core.errors import ArtifactError, MissingMetricsError, NasBenchError
from rachel.core.nasbench.table import MAX_VERTICES, BenchTable

LABELS: tuple[str, ...] = ("input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "output")
_TRIU = np.triu_indices(MAX_VERTICES, k=1)
NUM_FEATURES = len(_TRIU[0]) + MAX_VERTICES * len(LABELS)  # 21 + 35 = 56
ENCODING_VERSION = "adj21-onehot35-output-last-v1"


@runtime_checkable
class PerformanceEstimator(Protocol):
    """What a search agent needs from a performance estimator."""

    name: str

    def accuracy_array(self, hashes: np.ndarray) -> np.ndarray: ...

    def accuracy(self, module_hash: str) -> float: ...


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------


def encode_cells(adjacency: Any, operations: Any, num_vertices: Any) -> np.ndarray:
    """Vectorised cell encoding, ``(N, 56)`` uint8, from table columns.

    ``adjacency``: 49-char '0'/'1' strings (table layout, output at ``num_vertices-1``);
    ``operations``: a ``list<string>`` Arrow array (or a sequence of label lists);
    ``num_vertices``: ints.
    """
    adj_strings = np.asarray(
        adjacency.to_numpy(zero_copy_only=False)
        if isinstance(adjacency, pa.Array | pa.ChunkedArray) else adjacency
    ).astype(f"S{MAX_VERTICES * MAX_VERTICES}")
    n_rows = len(adj_strings)
    nv = np.asarray(num_vertices, dtype=np.int64)
    if nv.shape != (n_rows,):
        raise NasBenchError("num_vertices must have one entry per cell",
                            "pass the table's num_vertices column")
    old = (np.frombuffer(adj_strings.tobytes(), dtype=np.uint8).reshape(n_rows, 7, 7)
           - ord("0")).astype(np.uint8)
    if not isinstance(operations, pa.Array | pa.ChunkedArray):
        operations = pa.array(list(operations), type=pa.list_(pa.string()))
    if isinstance(operations, pa.ChunkedArray):
        operations = operations.combine_chunks()
    flat = pc.list_flatten(operations)
    parents = pc.list_parent_indices(operations).to_numpy()
    codes = pc.index_in(flat, value_set=pa.array(LABELS)).to_numpy(zero_copy_only=False)
    if np.isnan(codes.astype(np.float64)).any():
        raise NasBenchError("an operation label is not one of " + ", ".join(LABELS),
                            "encode NAS-Bench-101 cells only")
    offsets = operations.offsets.to_numpy()[:-1]
    pos = np.arange(len(parents)) - offsets[parents] if len(parents) else parents
    old_codes = np.full((n_rows, MAX_VERTICES + 1), -1, dtype=np.int64)
    old_codes[parents, pos] = codes.astype(np.int64)
    # perm[r, j] = old vertex shown at new position j (MAX_VERTICES = padding)
    j = np.arange(MAX_VERTICES)[None, :]
    perm = np.where(j < nv[:, None] - 1, j, MAX_VERTICES)
    perm[:, MAX_VERTICES - 1] = nv - 1
    old8 = np.zeros((n_rows, MAX_VERTICES + 1, MAX_VERTICES + 1), dtype=np.uint8)
    old8[:, :MAX_VERTICES, :MAX_VERTICES] = old
    r = np.arange(n_rows)[:, None, None]
    new = old8[r, perm[:, :, None], perm[:, None, :]]
    new_codes = old_codes[np.arange(n_rows)[:, None], perm]
    onehot = (new_codes[:, :, None] == np.arange(len(LABELS))[None, None, :]).astype(np.uint8)
    return np.concatenate(
        [new[:, _TRIU[0], _TRIU[1]], onehot.reshape(n_rows, -1)], axis=1
    )


def encode_table_rows(bench: BenchTable, rows: np.ndarray | None = None) -> np.ndarray:
    """Encoding of the given rows of a table (all rows when ``rows`` is None)."""
    t = bench.table if rows is None else bench.table.take(pa.array(np.asarray(rows, np.int64)))
    return encode_cells(t["adjacency"], t["operations"],
                        t["num_vertices"].to_numpy().astype(np.int64))


# --------------------------------------------------------------------------------------
# Table-backed estimators
# --------------------------------------------------------------------------------------


class _ByRow:
    """Shared machinery: per-row values with NaN for unknown, looked up by hash."""

    name = "base"
    bench: BenchTable

    def _row_values(self) -> np.ndarray:
        raise NotImplementedError

    def _values_at(self, rows: np.ndarray) -> np.ndarray:
        return self._row_values()[rows]

    def accuracy_array(self, hashes: np.ndarray) -> np.ndarray:
        """Accuracy per hash (float64), NaN where unknown or not in the table."""
        rows = self.bench.rows_of(np.asarray(hashes).reshape(-1))
        out = np.full(rows.shape, np.nan, dtype=np.float64)
        found = rows >= 0
        if found.any():
            out[found] = self._values_at(rows[found])
        return out.reshape(np.shape(hashes))

    def accuracy(self, module_hash: str) -> float:
        value = float(self.accuracy_array(np.array([module_hash]))[0])
        if np.isnan(value):
            where = ("is not in the table" if self.bench.row_of(module_hash) < 0
                     else "has no known metrics")
            raise MissingMetricsError(
                f"{self.name}: cell {module_hash} {where}",
                "restrict the search to known cells (RealSubsetEstimator) or use the "
                "SurrogateEstimator",
            )
        return value


class TabularEstimator(_ByRow):
    """The table: mean over the known 108-epoch runs of the validation (or test) accuracy."""

    def __init__(self, bench: BenchTable,
                 metric: Literal["validation", "test"] = "validation") -> None:
        if metric not in ("validation", "test"):
            raise NasBenchError(f"unknown metric {metric!r}", "use 'validation' or 'test'")
        self.bench = bench
        self.metric = metric
        self.name = "tabular" if metric == "validation" else "tabular-test"

    def _row_values(self) -> np.ndarray:
        return self.bench.val_mean if self.metric == "validation" else self.bench.test_mean


class RealSubsetEstimator(TabularEstimator):
    """Only the cells with real metrics (20,268 in the shared table)."""

    def __init__(self, bench: BenchTable,
                 metric: Literal["validation", "test"] = "validation") -> None:
        super().__init__(bench, metric)
        self.name = "real-subset" if metric == "validation" else "real-subset-test"

    @cached_property
    def rows(self) -> np.ndarray:
        """Table rows (hash-sorted ids) of the known cells."""
        return np.flatnonzero(~np.isnan(self._row_values()))

    @property
    def hashes(self) -> np.ndarray:
        return self.bench.hashes[self.rows].astype("U32")

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, module_hash: object) -> bool:
        return isinstance(module_hash, str) and not np.isnan(
            self.accuracy_array(np.array([module_hash]))[0]
        )

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` hashes drawn uniformly (with replacement) from the known cells."""
        return self.hashes[rng.integers(len(self.rows), size=n)]


# --------------------------------------------------------------------------------------
# Surrogate
# --------------------------------------------------------------------------------------

DEFAULT_XGB_PARAMS: dict[str, Any] = {
    "n_estimators": 600,
    "max_depth": 7,
    "learning_rate": 0.04,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 2.0,
    "tree_method": "hist",
}


class SurrogateEstimator(_ByRow):
    """XGBoost regression of mean validation accuracy on the cell encoding.

    Predicts every cell of the table (NaN only for hashes not in the table).  Build with
    :meth:`fit` or :meth:`load`.
    """

    name = "surrogate-xgb"

    def __init__(self, bench: BenchTable, booster: Any, info: dict[str, Any]) -> None:
        self.bench = bench
        self.booster = booster
        self.info = info

    @classmethod
    def fit(cls, bench: BenchTable, rows: np.ndarray | None = None, *, seed: int = 0,
            params: dict[str, Any] | None = None, n_jobs: int | None = None
            ) -> SurrogateEstimator:
        """Fit on ``rows`` (default: every cell with a known validation accuracy)."""
        import xgboost as xgb

        if rows is None:
            rows = np.flatnonzero(~np.isnan(bench.val_mean))
        rows = np.asarray(rows, dtype=np.int64)
        y = bench.val_mean[rows]
        if len(rows) < 10 or np.isnan(y).any():
            raise NasBenchError(
                f"cannot fit the surrogate on {len(rows)} rows "
                f"({int(np.isnan(y).sum())} without a validation accuracy)",
                "fit on at least 10 cells with known metrics",
            )
        merged = {**DEFAULT_XGB_PARAMS, **(params or {})}
        model = xgb.XGBRegressor(**merged, random_state=seed, n_jobs=n_jobs)
        start = time.perf_counter()
        model.fit(encode_table_rows(bench, rows).astype(np.float32), y)
        info = {"encoding": ENCODING_VERSION, "seed": seed, "params": merged,
                "n_train": int(len(rows)), "fit_seconds": time.perf_counter() - start,
                "target": "mean 108-epoch validation accuracy"}
        return cls(bench, model.get_booster(), info)

    @cached_property
    def _predictions(self) -> np.ndarray:
        return self.predict_features(encode_table_rows(self.bench))

    def _row_values(self) -> np.ndarray:
        return self._predictions

    def _values_at(self, rows: np.ndarray) -> np.ndarray:
        # small requests before the whole table is cached: predict just those cells
        if "_predictions" not in self.__dict__ and len(rows) < 20_000:
            unique, inverse = np.unique(rows, return_inverse=True)
            return self.predict_features(encode_table_rows(self.bench, unique))[inverse]
        return self._predictions[rows]

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """Predictions for an ``(N, 56)`` encoding matrix."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != NUM_FEATURES:
            raise NasBenchError(f"features must have shape (N, {NUM_FEATURES}), got {x.shape}",
                                "encode cells with encode_cells()")
        return np.asarray(self.booster.inplace_predict(x), dtype=np.float64)

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        return self._predictions[np.asarray(rows, dtype=np.int64)]

    def save(self, uri: str | os.PathLike[str]) -> None:
        """Write the model (XGBoost JSON with our metadata as attributes), atomically."""
        self.booster.set_attr(rachel_info=json.dumps(self.info))
        storage.write_bytes(uri, bytes(self.booster.save_raw(raw_format="json")))

    @classmethod
    def load(cls, uri: str | os.PathLike[str], bench: BenchTable) -> SurrogateEstimator:
        import xgboost as xgb

        data = storage.read_bytes(uri)
        booster = xgb.Booster()
        try:
            booster.load_model(bytearray(data))
            info = json.loads(booster.attr("rachel_info") or "null")
        except (xgb.core.XGBoostError, json.JSONDecodeError) as err:
            raise ArtifactError(f"{uri} is not a saved surrogate ({err})",
                                "re-run SurrogateEstimator.fit(...).save(uri)") from err
        if not isinstance(info, dict) or info.get("encoding") != ENCODING_VERSION:
            raise ArtifactError(
                f"{uri} was saved with another cell encoding ({info and info.get('encoding')})",
                "re-fit the surrogate with this version",
            )
        return cls(bench, booster, info)


@dataclass(frozen=True)
class SurrogateReport:
    """Held-out quality of the surrogate (accuracies as fractions)."""

    split: str
    n_train: int
    n_test: int
    kendall_tau: float
    spearman_rho: float
    rmse: float
    rmse_constant: float
    median_abs_error: float
    fit_seconds: float
    seed: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate_surrogate(bench: BenchTable, *, test_fraction: float = 0.2, seed: int = 0,
                       max_cells: int | None = None, params: dict[str, Any] | None = None,
                       n_jobs: int | None = None) -> tuple[SurrogateEstimator, SurrogateReport]:
    """Fit on a seeded random split of the cells with real metrics; score the held-out part.

    ``max_cells`` first draws that many real cells at random (same seed) for quick checks.
    ``rmse_constant`` is the RMSE of predicting the training mean, the baseline to beat.  The
    RMSE is dominated by the few cells that do not train (accuracy ~10 %); the median absolute
    error describes the typical cell.
    """
    from scipy import stats

    if not 0.0 < test_fraction < 1.0:
        raise NasBenchError(f"test_fraction must be in (0, 1), got {test_fraction}",
                            "use e.g. 0.2")
    rng = np.random.default_rng(seed)
    real = np.flatnonzero(~np.isnan(bench.val_mean))
    if max_cells is not None and max_cells < len(real):
        real = np.sort(rng.choice(real, size=max_cells, replace=False))
    perm = rng.permutation(real)
    n_test = max(1, int(round(test_fraction * len(perm))))
    test_rows, train_rows = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    model = SurrogateEstimator.fit(bench, train_rows, seed=seed, params=params, n_jobs=n_jobs)
    pred = model.predict_features(encode_table_rows(bench, test_rows))
    truth = bench.val_mean[test_rows]
    split = (f"{100 * (1 - test_fraction):.0f}/{100 * test_fraction:.0f} random split "
             f"(numpy default_rng({seed})) of {len(perm)} cells with real 108-epoch "
             f"validation accuracy")
    report = SurrogateReport(
        split=split, n_train=len(train_rows), n_test=len(test_rows),
        kendall_tau=float(stats.kendalltau(pred, truth).statistic),
        spearman_rho=float(stats.spearmanr(pred, truth).statistic),
        rmse=float(np.sqrt(np.mean((pred - truth) ** 2))),
        rmse_constant=float(np.sqrt(np.mean((bench.val_mean[train_rows].mean() - truth) ** 2))),
        median_abs_error=float(np.median(np.abs(pred - truth))),
        fit_seconds=float(model.info["fit_seconds"]), seed=seed,
    )
    return model, report

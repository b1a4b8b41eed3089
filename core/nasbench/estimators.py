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
* :class:`SurrogateEstimator`: an ensemble of seeded XGBoost gradient-boosted tree models
  (NAS-Bench-301 uses an ensemble of 10; here ``n_models``, default 1) fit on the cells with
  real metrics and predicting every cell of the table from its structure.

Choices for the surrogate (the paper uses the real table; an RL agent rewarded by a model will
find and exploit the model's errors):

* **Bounded predictions.**  Each prediction is clipped to ``[min, max]`` of the training
  targets: unclipped, the single model predicted up to 1.0082 on cells without data while the
  best real value is 0.949.  The bounds are stored with the model (``info["bounds"]``).
* **Disagreement.**  With ``n_models > 1`` the models differ by seed (row and column
  subsampling); :meth:`SurrogateEstimator.std_rows` is their standard deviation per cell, and
  ``penalty`` > 0 scores a cell by ``mean - penalty * std`` (a pessimistic estimate that makes
  cells the models disagree on less attractive).  Default 0: the mean, as NAS-Bench-301's
  "denoised" setting.
* **Fingerprint.**  :attr:`SurrogateEstimator.fingerprint` (sha256 over the models, bounds,
  penalty and encoding) identifies the reward an agent was trained against.

Cell encoding: the ONE encoding of :mod:`rachel.core.nasbench.space` (``encode_batch``; the
agent's observation and the surrogate's features are the same 56 values).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

from rachel.core import storage
from rachel.core.errors import ArtifactError, MissingMetricsError, NasBenchError
from rachel.core.nasbench.cell import ALL_LABELS
from rachel.core.nasbench.index import read_cells
from rachel.core.nasbench.space import ENCODING_SIZE, encode_batch
from rachel.core.nasbench.table import BenchTable

LABELS: tuple[str, ...] = tuple(ALL_LABELS)
NUM_FEATURES = ENCODING_SIZE  # 21 + 35 = 56
ENCODING_VERSION = "space-tril21-onehot35-v2"
SURROGATE_FORMAT = "rachel-surrogate-ensemble-v1"


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
    """``(N, 56)`` uint8 encoding (:func:`space.encode_batch`) from table-layout columns.

    ``adjacency``: 49-char '0'/'1' strings (table layout, output at ``num_vertices-1``);
    ``operations``: a ``list<string>`` Arrow array (or a sequence of label lists);
    ``num_vertices``: ints.
    """
    return encode_batch(*read_cells(adjacency, operations, num_vertices))


def encode_table_rows(bench: BenchTable, rows: np.ndarray | None = None) -> np.ndarray:
    """Encoding of the given rows of a table (all rows when ``rows`` is None)."""
    t = bench.table if rows is None else bench.table.take(pa.array(np.asarray(rows, np.int64)))
    return encode_cells(
        t["adjacency"], t["operations"], t["num_vertices"].to_numpy().astype(np.int64)
    )


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
            where = (
                "is not in the table"
                if self.bench.row_of(module_hash) < 0
                else "has no known metrics"
            )
            raise MissingMetricsError(
                f"{self.name}: cell {module_hash} {where}",
                "restrict the search to known cells (RealSubsetEstimator) or use the "
                "SurrogateEstimator",
            )
        return value


class TabularEstimator(_ByRow):
    """The table: mean over the known 108-epoch runs of the validation (or test) accuracy."""

    def __init__(
        self, bench: BenchTable, metric: Literal["validation", "test"] = "validation"
    ) -> None:
        if metric not in ("validation", "test"):
            raise NasBenchError(f"unknown metric {metric!r}", "use 'validation' or 'test'")
        self.bench = bench
        self.metric = metric
        self.name = "tabular" if metric == "validation" else "tabular-test"

    def _row_values(self) -> np.ndarray:
        return self.bench.val_mean if self.metric == "validation" else self.bench.test_mean


class RealSubsetEstimator(TabularEstimator):
    """Only the cells with real metrics (20,268 in the shared table)."""

    def __init__(
        self, bench: BenchTable, metric: Literal["validation", "test"] = "validation"
    ) -> None:
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
    """A bounded ensemble of XGBoost regressions of mean validation accuracy on the encoding.

    Predicts every cell of the table (NaN only for hashes not in the table).  Build with
    :meth:`fit` or :meth:`load`.  See the module docstring for bounds, disagreement, penalty.
    """

    name = "surrogate-xgb"

    def __init__(self, bench: BenchTable, boosters: Any, info: dict[str, Any]) -> None:
        self.bench = bench
        self.boosters = list(boosters) if isinstance(boosters, list | tuple) else [boosters]
        self.info = info
        lo, hi = info.get("bounds", (-np.inf, np.inf))
        self.bounds = (float(lo), float(hi))
        self.penalty = float(info.get("penalty", 0.0))

    @property
    def booster(self) -> Any:
        """The first model of the ensemble."""
        return self.boosters[0]

    @classmethod
    def fit(
        cls,
        bench: BenchTable,
        rows: np.ndarray | None = None,
        *,
        seed: int = 0,
        params: dict[str, Any] | None = None,
        n_jobs: int | None = None,
        n_models: int = 1,
        penalty: float = 0.0,
    ) -> SurrogateEstimator:
        """Fit ``n_models`` seeded models on ``rows`` (default: every cell with a known
        validation accuracy); model ``m`` uses seed ``seed + m``."""
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
        if n_models < 1 or penalty < 0:
            raise NasBenchError(
                f"n_models={n_models}, penalty={penalty}", "use n_models >= 1 and penalty >= 0"
            )
        merged = {**DEFAULT_XGB_PARAMS, **(params or {})}
        x = encode_table_rows(bench, rows).astype(np.float32)
        start = time.perf_counter()
        boosters = []
        for m in range(n_models):
            model = xgb.XGBRegressor(**merged, random_state=seed + m, n_jobs=n_jobs)
            model.fit(x, y)
            boosters.append(model.get_booster())
        info = {
            "encoding": ENCODING_VERSION,
            "seed": seed,
            "params": merged,
            "n_models": n_models,
            "penalty": float(penalty),
            "bounds": [float(y.min()), float(y.max())],
            "n_train": int(len(rows)),
            "fit_seconds": time.perf_counter() - start,
            "target": "mean 108-epoch validation accuracy",
        }
        return cls(bench, boosters, info)

    @cached_property
    def _all_features(self) -> np.ndarray:
        return encode_table_rows(self.bench)

    @cached_property
    def _predictions(self) -> np.ndarray:
        return self.predict_features(self._all_features)

    def _row_values(self) -> np.ndarray:
        return self._predictions

    def _values_at(self, rows: np.ndarray) -> np.ndarray:
        # small requests before the whole table is cached: predict just those cells
        if "_predictions" not in self.__dict__ and len(rows) < 20_000:
            unique, inverse = np.unique(rows, return_inverse=True)
            return self.predict_features(encode_table_rows(self.bench, unique))[inverse]
        return self._predictions[rows]

    def member_predictions(self, features: np.ndarray) -> np.ndarray:
        """``(n_models, N)`` bounded predictions of every model for an ``(N, 56)`` matrix."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != NUM_FEATURES:
            raise NasBenchError(
                f"features must have shape (N, {NUM_FEATURES}), got {x.shape}",
                "encode cells with encode_cells()",
            )
        raw = np.stack([np.asarray(b.inplace_predict(x), dtype=np.float64) for b in self.boosters])
        return np.clip(raw, *self.bounds)

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """The score of each row of an ``(N, 56)`` encoding matrix: ensemble mean, minus
        ``penalty`` x the ensemble's standard deviation, within the bounds."""
        members = self.member_predictions(features)
        mean = members.mean(axis=0)
        if self.penalty and len(members) > 1:
            mean = np.clip(mean - self.penalty * members.std(axis=0), *self.bounds)
        return mean

    def std_features(self, features: np.ndarray) -> np.ndarray:
        """The ensemble's disagreement (standard deviation over models) per row; 0 for one."""
        return self.member_predictions(features).std(axis=0)

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        return self._predictions[np.asarray(rows, dtype=np.int64)]

    def std_rows(self, rows: np.ndarray) -> np.ndarray:
        return self.std_features(self._all_features[np.asarray(rows, dtype=np.int64)])

    def _raw_models(self) -> list[bytes]:
        return [bytes(b.save_raw(raw_format="json")) for b in self.boosters]

    @cached_property
    def fingerprint(self) -> str:
        """sha256 over the models, the bounds, the penalty and the encoding version."""
        h = hashlib.sha256()
        h.update(json.dumps([ENCODING_VERSION, list(self.bounds), self.penalty]).encode())
        for raw in self._raw_models():
            h.update(hashlib.sha256(raw).digest())
        return h.hexdigest()

    def save(self, uri: str | os.PathLike[str]) -> None:
        """Write the ensemble (one JSON file: our metadata + each XGBoost model), atomically."""
        storage.write_json(
            uri,
            {
                "format": SURROGATE_FORMAT,
                "info": self.info,
                "fingerprint": self.fingerprint,
                "models": [base64.b64encode(raw).decode("ascii") for raw in self._raw_models()],
            },
        )

    @classmethod
    def load(cls, uri: str | os.PathLike[str], bench: BenchTable) -> SurrogateEstimator:
        import xgboost as xgb

        try:
            data = json.loads(storage.read_bytes(uri))
            if not isinstance(data, dict) or data.get("format") != SURROGATE_FORMAT:
                raise ValueError("not a rachel surrogate file")
            boosters = []
            for raw in data["models"]:
                booster = xgb.Booster()
                booster.load_model(bytearray(base64.b64decode(raw)))
                boosters.append(booster)
            info = data["info"]
        except (xgb.core.XGBoostError, ValueError, KeyError, TypeError) as err:
            raise ArtifactError(
                f"{uri} is not a saved surrogate ({err})",
                "re-run SurrogateEstimator.fit(...).save(uri)",
            ) from err
        if info.get("encoding") != ENCODING_VERSION:
            raise ArtifactError(
                f"{uri} was saved with another cell encoding ({info.get('encoding')})",
                "re-fit the surrogate with this version",
            )
        return cls(bench, boosters, info)


TOP_K = (10, 50, 100)


@dataclass(frozen=True)
class SurrogateReport:
    """Held-out quality of the surrogate (accuracies as fractions).

    ``top_k[k]``: among the held-out cells, the true accuracy of the surrogate's ``k`` best
    (mean and best) against the true ``k`` best (the oracle), since a search ends at the top
    of the ranking.  ``disagreement`` (ensembles only): the mean held-out standard deviation
    over models and its Spearman correlation with the absolute error.
    """

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
    n_models: int = 1
    max_prediction_all_cells: float = float("nan")
    top_k: dict[str, dict[str, float]] = field(default_factory=dict)
    disagreement: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def top_k_quality(
    pred: np.ndarray, truth: np.ndarray, ks: tuple[int, ...] = TOP_K
) -> dict[str, dict[str, float]]:
    """True accuracy of the predicted top-k against the true top-k (see SurrogateReport)."""
    out: dict[str, dict[str, float]] = {}
    by_pred = np.argsort(-pred, kind="stable")
    by_true = np.sort(truth)[::-1]
    for k in ks:
        if k > len(truth):
            continue
        picked = truth[by_pred[:k]]
        out[str(k)] = {
            "true_mean_of_predicted_top": float(picked.mean()),
            "true_best_of_predicted_top": float(picked.max()),
            "oracle_mean_of_top": float(by_true[:k].mean()),
            "oracle_best": float(by_true[0]),
            "overlap": float(len(np.intersect1d(by_pred[:k], np.argsort(-truth)[:k])) / k),
        }
    return out


def evaluate_surrogate(
    bench: BenchTable,
    *,
    test_fraction: float = 0.2,
    seed: int = 0,
    max_cells: int | None = None,
    params: dict[str, Any] | None = None,
    n_jobs: int | None = None,
    n_models: int = 1,
    penalty: float = 0.0,
    predict_all: bool = False,
) -> tuple[SurrogateEstimator, SurrogateReport]:
    """Fit on a seeded random split of the cells with real metrics; score the held-out part.

    ``max_cells`` first draws that many real cells at random (same seed) for quick checks.
    ``rmse_constant`` is the RMSE of predicting the training mean, the baseline to beat.  The
    RMSE is dominated by the few cells that do not train (accuracy ~10 %); the median absolute
    error describes the typical cell.  ``predict_all`` also reports the largest prediction over
    every cell of the table (a check of the bounds).
    """
    from scipy import stats

    if not 0.0 < test_fraction < 1.0:
        raise NasBenchError(f"test_fraction must be in (0, 1), got {test_fraction}", "use e.g. 0.2")
    rng = np.random.default_rng(seed)
    real = np.flatnonzero(~np.isnan(bench.val_mean))
    if max_cells is not None and max_cells < len(real):
        real = np.sort(rng.choice(real, size=max_cells, replace=False))
    perm = rng.permutation(real)
    n_test = max(1, int(round(test_fraction * len(perm))))
    test_rows, train_rows = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    model = SurrogateEstimator.fit(
        bench,
        train_rows,
        seed=seed,
        params=params,
        n_jobs=n_jobs,
        n_models=n_models,
        penalty=penalty,
    )
    features = encode_table_rows(bench, test_rows)
    pred = model.predict_features(features)
    truth = bench.val_mean[test_rows]
    split = (
        f"{100 * (1 - test_fraction):.0f}/{100 * test_fraction:.0f} random split "
        f"(numpy default_rng({seed})) of {len(perm)} cells with real 108-epoch "
        f"validation accuracy"
    )
    disagreement: dict[str, float] = {}
    if n_models > 1:
        std = model.std_features(features)
        disagreement = {
            "mean_std": float(std.mean()),
            "spearman_std_vs_abs_error": float(
                stats.spearmanr(std, np.abs(pred - truth)).statistic
            ),
        }
    report = SurrogateReport(
        split=split,
        n_train=len(train_rows),
        n_test=len(test_rows),
        kendall_tau=float(stats.kendalltau(pred, truth).statistic),
        spearman_rho=float(stats.spearmanr(pred, truth).statistic),
        rmse=float(np.sqrt(np.mean((pred - truth) ** 2))),
        rmse_constant=float(np.sqrt(np.mean((bench.val_mean[train_rows].mean() - truth) ** 2))),
        median_abs_error=float(np.median(np.abs(pred - truth))),
        fit_seconds=float(model.info["fit_seconds"]),
        seed=seed,
        n_models=n_models,
        max_prediction_all_cells=(
            float(model.predict_rows(np.arange(len(bench))).max()) if predict_all else float("nan")
        ),
        top_k=top_k_quality(pred, truth),
        disagreement=disagreement,
    )
    return model, report

"""The NAS-Bench pipeline's steps as plain functions (no kfp): table loading and conversion,
the surrogate decision, settings round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import nasbench_data

from rachel.core.errors import ConfigError
from rachel.core.nasbench import pipeline_steps as steps
from rachel.core.nasbench.evaluation import ProtocolConfig
from rachel.core.nasbench.experiment import ExperimentSettings
from rachel.core.nasbench.tfrecord import write_records


def test_load_table_converts_an_official_tfrecord_and_says_it_is_complete(tmp_path):
    bench = nasbench_data.shared_bench()
    rows = nasbench_data.real_rows(bench, 12)
    write_records(tmp_path / "in.tfrecord", nasbench_data.records_from_rows(bench, rows))
    out = steps.load_table(str(tmp_path / "in.tfrecord"), str(tmp_path / "table"))
    assert out["cells"] == 12 and out["known_cells"] == 12 and out["partial"] is False
    # a complete table: no surrogate is fit, the table is the reward
    fit = steps.fit_surrogate(
        steps.settings_to_json(ExperimentSettings()),
        str(tmp_path / "table"),
        str(tmp_path / "surrogate"),
    )
    assert fit["metadata"]["estimator"] == "tabular"
    assert not (tmp_path / "surrogate" / "surrogate.json").exists()
    assert (
        json.loads((tmp_path / "surrogate" / "ground.json").read_text())["estimator"] == "tabular"
    )


def test_partial_table_gets_a_surrogate_with_held_out_metrics(tmp_path):
    bench = nasbench_data.shared_bench()
    rows = np.concatenate(
        [nasbench_data.real_rows(bench, 400), np.flatnonzero(np.isnan(bench.val_mean))[:50]]
    )
    from rachel.core.nasbench.table import write_table

    write_table(bench.table.take(np.sort(rows)), tmp_path / "t.parquet")
    out = steps.load_table(str(tmp_path / "t.parquet"), str(tmp_path / "table"))
    assert out["partial"] is True and out["known_cells"] == 400
    settings = ExperimentSettings(surrogate_params={"n_estimators": 30, "max_depth": 3})
    fit = steps.fit_surrogate(
        steps.settings_to_json(settings), str(tmp_path / "table"), str(tmp_path / "surrogate")
    )
    assert fit["metadata"]["estimator"] == "surrogate"
    assert len(fit["metadata"]["fingerprint"]) == 64
    assert -1 <= fit["metrics"]["kendall_tau"] <= 1 and "top10_true_mean" in fit["metrics"]
    assert (tmp_path / "surrogate" / "surrogate.json").is_file()


def test_settings_and_protocol_round_trip():
    s = ExperimentSettings(max_vertices=5, searchers=("random_walk",), surrogate_models=3)
    back = steps.settings_from_json(steps.settings_to_json(s), "t.parquet", "s.json")
    assert back == ExperimentSettings(
        table="t.parquet",
        surrogate="s.json",
        max_vertices=5,
        searchers=("random_walk",),
        surrogate_models=3,
    )
    p = ProtocolConfig(k_sets=3, budgets=(5, 10), curve_lengths=(10,))
    assert steps.protocol_from_json(steps.protocol_to_json(p)) == p
    with pytest.raises(ConfigError, match="unknown experiment setting"):
        steps.settings_from_json('{"estimater": "auto"}', "t.parquet")

"""``rachel nasbench evaluate`` end to end on the real table (restricted to <=5-vertex cells)."""

import json
import subprocess
import sys

import pytest

from rachel.core.errors import ConfigError
from rachel.core.nasbench.evaluation import ProtocolConfig
from rachel.core.nasbench.experiment import ExperimentSettings, run_experiment
from rachel.core.nasbench.index import default_table_path

pytestmark = pytest.mark.skipif(not default_table_path().exists(), reason="shared table missing")


def test_cli_evaluate_writes_the_report(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rachel.cli",
            "nasbench",
            "evaluate",
            "--max-vertices",
            "5",
            "--k-sets",
            "2",
            "--m-states",
            "10",
            "--resamples",
            "200",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert set(report["searchers"]) == {"random_search", "random_walk", "local_search"}
    # the default: the full graph with the surrogate (the table is partial), and it says so
    exp = report["experiment"]
    assert exp["cells"] == 2532 and exp["estimator"] == "surrogate" and exp["mode"] == "tabular"
    assert "auto -> surrogate" in out.stdout and "validation" in out.stdout
    assert report["metrics"]["report"].startswith("validation")
    assert report["searchers"]["random_search"]["accounting"] == "episode"
    assert report["searchers"]["local_search"]["accounting"] == "queries"
    for name in ("report.md", "queries_300.png", "improvement_histograms.png"):
        assert (tmp_path / name).stat().st_size > 0
    # local search never ends worse than it started on the same estimator
    assert report["searchers"]["local_search"]["improvement"]["fraction_worse"] == 0.0


def test_surrogate_mode_scores_cells_without_real_metrics(tmp_path):
    settings = ExperimentSettings(estimator="surrogate", max_vertices=4, searchers=("random_walk",))
    out = run_experiment(
        settings, ProtocolConfig(k_sets=1, m_states=5, n_resamples=200), str(tmp_path)
    )
    assert out["mode"] == "tabular" and out["cells"] == 91
    assert len(out["surrogate"]["fingerprint"]) == 64


def test_real_subset_is_still_available(tmp_path):
    settings = ExperimentSettings(
        estimator="real_subset", max_vertices=4, searchers=("random_walk",)
    )
    out = run_experiment(
        settings, ProtocolConfig(k_sets=1, m_states=5, n_resamples=200), str(tmp_path), plots=False
    )
    assert out["mode"] == "real_subset" and "auto" not in out["notes"].get("estimator", "")


def test_bad_settings_fail_before_loading():
    with pytest.raises(ConfigError, match="estimator"):
        ExperimentSettings(estimator="oracle").validate()
    with pytest.raises(ConfigError, match="searcher"):
        ExperimentSettings(searchers=("evolution",)).validate()


def test_cli_bad_estimator_exits_2(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rachel.cli",
            "nasbench",
            "evaluate",
            "--estimator",
            "oracle",
            "--output",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "oracle" in out.stderr

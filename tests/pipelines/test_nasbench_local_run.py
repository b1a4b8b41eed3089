"""End to end: the NAS-Bench agent pipeline under kfp.local at the smoke budget on a real
table (the <=5-vertex cells of the shared NAS-Bench-101 table, partial, so the surrogate is
fit), then the published agent runs on a user's table with one command."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from helpers import nasbench_data

from rachel.core.nasbench.policy import TrainedAgent
from rachel.core.nasbench.registry import resolve_agent
from rachel.core.nasbench.table import write_table


@pytest.fixture(scope="module")
def small_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bench = nasbench_data.shared_bench()
    path = tmp_path_factory.mktemp("nb") / "small.parquet"
    write_table(bench.table.filter(pc.less_equal(bench.table["num_vertices"], 5)), path)
    return path


def test_pipeline_trains_evaluates_and_publishes(small_table: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rachel.cli",
            "nasbench",
            "pipeline",
            "run",
            "--smoke",
            "--seeds",
            "0,1",
            "--table",
            str(small_table),
            "--registry",
            str(registry),
            "--version",
            "v1",
            "--output",
            str(tmp_path / "root"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    seconds = time.perf_counter() - started
    print(f"nasbench pipeline run (kfp.local, smoke, 2 seeds): {seconds:.1f}s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "published:" in done.stdout

    # one task per step; two agents trained and evaluated in the ParallelFor
    run_dir = next((tmp_path / "root").iterdir())
    assert len(list(run_dir.glob("for-loop-*/*train-agent*/agent/agent/agent.json"))) == 2
    assert len(list(run_dir.glob("for-loop-*/*evaluate-agent*/evaluation/report.json"))) == 2
    assert list(run_dir.glob("*fit-surrogate*/surrogate/surrogate.json"))  # partial table
    report = next(run_dir.glob("*aggregate-report*/report")).read_text()
    assert "agent 0 (seed 0)" in report and "agent 1 (seed 1)" in report
    assert "random_walk" in report and "**best**" in report
    details = next(run_dir.glob("*aggregate-report*/details"))
    assert (details / "agent1_queries_10.png").read_bytes()[:4] == b"\x89PNG"

    # the registry: versioned agent + surrogate + evaluation + card, and a latest pointer
    base = registry / "nasbench101" / "v1"
    card = json.loads((base / "card.json").read_text())
    assert card["seed"] in (0, 1) and card["chosen_from"] == [0, 1]
    assert len(card["surrogate_fingerprint"]) == 64 and card["table"]
    assert (base / "surrogate.json").is_file() and (base / "evaluation" / "report.md").is_file()
    assert json.loads((registry / "nasbench101" / "latest.json").read_text()) == {"version": "v1"}
    agent = TrainedAgent.load(resolve_agent(str(registry / "nasbench101")))
    assert agent.config.seed == card["seed"] and agent.config.latent == 16

    # a user's own (complete) table: the published agent runs on it with one command
    bench = nasbench_data.shared_bench()
    known = bench.table.filter(
        pc.invert(pc.is_null(pc.list_element(bench.table["val_accuracy"], 0)))
    )
    user = known.filter(pc.less_equal(known["num_vertices"], 5))
    write_table(user, tmp_path / "user.parquet")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rachel.cli",
            "nasbench",
            "evaluate",
            "--agent",
            str(registry / "nasbench101"),
            "--table",
            str(tmp_path / "user.parquet"),
            "--k-sets",
            "1",
            "--m-states",
            "10",
            "--resamples",
            "200",
            "--searchers",
            "",
            "--output",
            str(tmp_path / "user-eval"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "auto -> tabular" in out.stdout and "apex_agent:" in out.stdout
    summary = json.loads((tmp_path / "user-eval" / "report.json").read_text())
    assert summary["searchers"]["apex_agent"]["episodes"] == 10
    assert summary["experiment"]["cells"] == user.num_rows
    assert np.isfinite(summary["searchers"]["apex_agent"]["table"][0]["mean"])

"""``rachel submit`` / ``rachel schedule`` against a stand-in KFP REST API on 127.0.0.1
(:mod:`fake_kfp`): the upload -> version -> experiment -> run flow, and exit code 3 when
the run fails."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fake_kfp", Path(__file__).with_name("fake_kfp.py"))
fake_kfp: Any = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_kfp)


def rachel(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rachel.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
        timeout=120,
    )


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "rachel.yaml"
    done = rachel("compile", "--output", str(out), "--iterations", "2", "--candidates", "3")
    assert done.returncode == 0, done.stderr
    return out


def test_submit_uploads_then_adds_versions_and_starts_runs(package: Path) -> None:
    with fake_kfp.FakeKfp() as kfp:
        for attempt in range(2):
            done = rachel(
                "submit",
                "--host",
                kfp.host,
                "--package",
                str(package),
                "--experiment",
                "ci",
                "--version",
                f"v{attempt}",
                "--pipeline-root",
                "gs://bucket/root",
                "--skip-root-check",
                "--service-account",
                "rachel-pipeline-runner",
                "--wait",
            )
            assert done.returncode == 0, done.stdout + done.stderr
            assert "run-1 succeeded" in done.stdout
        assert len(kfp.posted("pipelines/upload")) == 1  # the second submit adds a version
        versions = kfp.posted("pipelines/upload_version")
        assert [v["query"]["name"][0] for v in versions] == ["v0", "v1"]
        run = kfp.posted("runs")[-1]["body"]
        assert run["pipeline_version_reference"] == {
            "pipeline_id": "pipeline-1",
            "pipeline_version_id": "version-1",
        }
        assert run["runtime_config"]["pipeline_root"] == "gs://bucket/root"
        assert run["service_account"] == "rachel-pipeline-runner"
        assert run["experiment_id"] == "experiment-1"


def test_weekly_submits_into_a_profile_namespace_reuse_its_pipeline(package: Path) -> None:
    """Multi-user KFP: the pipeline uploaded into the namespace is found there the next
    week (kfp's get_pipeline_id lists only shared pipelines and would upload it again)."""
    with fake_kfp.FakeKfp() as kfp:
        for week in range(2):
            done = rachel(
                "submit",
                "--host",
                kfp.host,
                "--package",
                str(package),
                "--namespace",
                "team-a",
                "--version",
                f"week{week}",
                "--pipeline-root",
                "gs://bucket/root",
                "--skip-root-check",
            )
            assert done.returncode == 0, done.stdout + done.stderr
        uploads = kfp.posted("pipelines/upload")
        assert len(uploads) == 1 and uploads[0]["query"]["namespace"] == ["team-a"]
        assert len(kfp.posted("pipelines/upload_version")) == 2


def test_failed_run_exits_3_with_one_line(package: Path) -> None:
    with fake_kfp.FakeKfp(final_state="FAILED") as kfp:
        done = rachel("submit", "--host", kfp.host, "--package", str(package), "--wait")
    assert done.returncode == 3, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("rachel submit: error: run run-1 finished in state FAILED")


def test_submit_without_wait_returns_once_started(package: Path) -> None:
    with fake_kfp.FakeKfp(final_state="FAILED") as kfp:
        done = rachel("submit", "--host", kfp.host, "--package", str(package))
    assert done.returncode == 0 and "started run" in done.stdout


def test_schedule_creates_a_weekly_recurring_run(package: Path) -> None:
    with fake_kfp.FakeKfp() as kfp:
        done = rachel(
            "schedule",
            "--host",
            kfp.host,
            "--package",
            str(package),
            "--cron",
            "0 3 * * 1",
            "--job-name",
            "weekly",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        (recurring,) = kfp.posted("recurringruns")
    body = recurring["body"]
    assert body["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * 1"
    assert body["max_concurrency"] in ("1", 1) and body["no_catchup"] is True
    assert body["pipeline_version_reference"]["pipeline_version_id"] == "version-1"
    assert "scheduled recurring run weekly (recurring-1)" in done.stdout


def test_the_registry_reaches_the_runs_parameters(package: Path) -> None:
    with fake_kfp.FakeKfp() as kfp:
        done = rachel(
            "submit",
            "--host",
            kfp.host,
            "--package",
            str(package),
            "--pipeline-root",
            "gs://bucket/root",
            "--skip-root-check",
            "--registry",
            "gs://bucket/rachel/team-a",
            "--promotion-margin",
            "0.005",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        params = kfp.posted("runs")[-1]["body"]["runtime_config"]["parameters"]
        assert params == {"registry": "gs://bucket/rachel/team-a", "promotion_margin": 0.005}
        done = rachel(
            "schedule",
            "--host",
            kfp.host,
            "--package",
            str(package),
            "--cron",
            "0 3 * * 1",
            "--skip-root-check",
            "--registry",
            "gs://bucket/rachel/team-a",
        )
        assert done.returncode == 0, done.stdout + done.stderr
        body = kfp.posted("recurringruns")[-1]["body"]
        assert body["runtime_config"]["parameters"]["registry"] == "gs://bucket/rachel/team-a"

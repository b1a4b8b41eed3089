"""``rachel nasbench train-agent`` and ``evaluate --agent`` end to end on the <=4-vertex
cells; the registry's publish / resolve round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rachel.core.errors import ArtifactError, ConfigError
from rachel.core.nasbench.agent import AgentConfig
from rachel.core.nasbench.index import default_table_path
from rachel.core.nasbench.policy import TrainedAgent
from rachel.core.nasbench.registry import publish, resolve_agent, surrogate_beside

TINY = [
    "--max-neighbours",
    "6",
    "--latent",
    "16",
    "--mlp-dim",
    "32",
    "--heads",
    "2",
    "--transformer-layers",
    "1",
    "--num-actors",
    "2",
    "--envs-per-actor",
    "4",
    "--learning-starts",
    "32",
    "--batch-size",
    "16",
    "--total-env-steps",
    "200",
    "--checkpoint-period",
    "50",
    "--shaping",
    "none",
    "--gamma",
    "0.95",
]


@pytest.mark.slow  # ~25 s on a quiet 2-core machine (two CLI processes, a full surrogate fit)
@pytest.mark.skipif(not default_table_path().exists(), reason="shared table missing")
def test_train_agent_then_evaluate_it(tmp_path: Path) -> None:
    out = tmp_path / "agent-run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rachel.cli",
            "nasbench",
            "train-agent",
            "--max-vertices",
            "4",
            "--seed",
            "3",
            "--output",
            str(out),
            *TINY,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "auto -> surrogate" in done.stdout and "agent:" in done.stdout
    agent = TrainedAgent.load(out / "agent")
    assert agent.config.shaping is None and agent.config.gamma == 0.95  # ablations as flags
    assert agent.config.seed == 3 and agent.meta["env_steps"] >= 200
    assert len(agent.meta["ground"]["surrogate_fingerprint"]) == 64
    assert surrogate_beside(str(out / "agent")) == str(out / "surrogate.json")
    ev = subprocess.run(
        [
            sys.executable,
            "-m",
            "rachel.cli",
            "nasbench",
            "evaluate",
            "--agent",
            str(out),
            "--max-vertices",
            "4",
            "--k-sets",
            "2",
            "--m-states",
            "10",
            "--resamples",
            "200",
            "--output",
            str(tmp_path / "eval"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ev.returncode == 0, ev.stdout[-2000:] + ev.stderr[-2000:]
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert set(report["searchers"]) == {
        "apex_agent",
        "random_search",
        "random_walk",
        "local_search",
    }
    assert report["searchers"]["apex_agent"]["accounting"] == "episode"
    # scored with the surrogate the agent was trained against (no mismatch note)
    assert not [k for k in report["notes"] if k.startswith("ground_agent")]
    assert (
        report["experiment"]["surrogate"]["fingerprint"]
        == agent.meta["ground"]["surrogate_fingerprint"]
    )


def test_publish_and_resolve(tmp_path: Path) -> None:
    cfg = AgentConfig(max_neighbours=4, latent=8, mlp_dim=8, heads=2, learning_starts=64)
    agent_dir = TrainedAgent(
        cfg, [np.ones(3, np.float32)], {"ground": {"surrogate_fingerprint": "f" * 64}}
    ).save(tmp_path / "a")
    ev = tmp_path / "ev"
    ev.mkdir()
    table = [{"budget": 50, "mean": 0.9, "ci_low": 0.89, "ci_high": 0.91}]
    (ev / "report.json").write_text(
        json.dumps(
            {"searchers": {"apex_agent": {"table": table}}, "metrics": {"report": "validation"}}
        )
    )
    registry = str(tmp_path / "reg")
    card = publish(agent_dir, str(ev), registry, name="nb", version="v2")
    assert card["table"] == table and card["surrogate_fingerprint"] == "f" * 64
    assert resolve_agent(f"{registry}/nb") == f"{registry}/nb/v2/agent"
    assert resolve_agent(f"{registry}/nb/v2") == f"{registry}/nb/v2/agent"
    assert TrainedAgent.load(resolve_agent(f"{registry}/nb")).config == cfg
    with pytest.raises(ArtifactError, match="no agent"):
        resolve_agent(str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match="version"):
        publish(agent_dir, str(ev), registry, name="nb", version="Bad Version")

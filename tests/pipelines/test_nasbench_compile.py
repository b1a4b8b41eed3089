"""Compile the NAS-Bench agent pipeline, parse the IR strictly, check the DAG and placement."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from rachel.components.settings import CPU_IMAGE, GPU_IMAGE
from rachel.core.errors import ConfigError
from rachel.core.nasbench.agent import AgentConfig
from rachel.pipelines.nasbench_pipeline import (
    CACHING,
    NASBENCH_PLACEMENT,
    NasBenchRun,
    build_pipeline,
    compile_to_bytes,
)

REPO = Path(__file__).resolve().parents[2]
SEEDS = (3, 5, 8)


def _docs(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    docs = list(yaml.safe_load_all(data))
    return docs[0], (docs[1] if len(docs) == 2 else {})


@pytest.fixture(scope="module", params=[False, True], ids=["cpu", "gpu"])
def compiled(request: pytest.FixtureRequest) -> dict[str, Any]:
    placement = NASBENCH_PLACEMENT.replace(gpu=True) if request.param else NASBENCH_PLACEMENT
    spec, platform = _docs(compile_to_bytes(SEEDS, placement=placement))
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())  # unknown fields raise
    if platform:
        json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    root = spec["root"]["dag"]["tasks"]
    (loop_key,) = [k for k, t in root.items() if "parameterIterator" in t]
    loop = root[loop_key]
    inner = spec["components"][loop["componentRef"]["name"]]["dag"]["tasks"]
    return dict(spec=spec, platform=platform, root=root, loop=loop, inner=inner, gpu=request.param)


def _names(tasks: dict[str, Any]) -> set[str]:
    return {t["taskInfo"]["name"] for t in tasks.values()}


def test_dag_shape(compiled: dict) -> None:
    assert {"load-table", "fit-surrogate", "aggregate-report", "publish-agent"} <= _names(
        compiled["root"]
    )
    assert _names(compiled["inner"]) == {"train-agent", "evaluate-agent"}
    # the ParallelFor iterates over the compile-time seeds
    items = compiled["loop"]["parameterIterator"]["items"]["raw"]
    assert json.loads(items) == list(SEEDS)
    by_name = {t["taskInfo"]["name"]: t for t in compiled["root"].values()}
    assert "load-table" in by_name["fit-surrogate"]["dependentTasks"][0] or any(
        "load" in d for d in by_name["fit-surrogate"]["dependentTasks"]
    )
    # fan-in: aggregate and publish take the collected outputs of the loop
    agg_inputs = by_name["aggregate-report"]["inputs"]["artifacts"]["evaluations"]
    assert "taskOutputArtifact" in agg_inputs
    pub = by_name["publish-agent"]["inputs"]
    assert {"agents", "evaluations", "surrogate"} <= set(pub["artifacts"])
    assert pub["parameters"]["best_seed"]["taskOutputParameter"]["outputParameterKey"] == "Output"
    params = compiled["spec"]["root"]["inputDefinitions"]["parameters"]
    assert {
        "table_uri",
        "registry_uri",
        "agent_name",
        "version",
        "settings_json",
        "agent_config_json",
        "protocol_json",
    } <= set(params)
    default = json.loads(params["agent_config_json"]["defaultValue"])
    assert AgentConfig.from_json(default) == AgentConfig()


def test_placement_cpu_by_default_gpu_learner_optional(compiled: dict) -> None:
    spec, platform = compiled["spec"], compiled["platform"]
    train = next(t for t in compiled["inner"].values() if t["taskInfo"]["name"] == "train-agent")
    label = spec["components"][train["componentRef"]["name"]]["executorLabel"]
    container = spec["deploymentSpec"]["executors"][label]["container"]
    assert container["image"] == GPU_IMAGE
    k8s = (
        platform.get("platforms", {})
        .get("kubernetes", {})
        .get("deploymentSpec", {})
        .get("executors", {})
    )
    resources = container["resources"]
    if compiled["gpu"]:
        assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
        assert k8s[label]["nodeSelector"]["labels"] == {
            "cloud.google.com/gke-accelerator": "nvidia-l4"
        }
        assert k8s[label]["tolerations"][0]["key"] == "nvidia.com/gpu"
    else:
        assert "accelerator" not in resources and label not in k8s
    assert train["retryPolicy"]["maxRetryCount"] == NASBENCH_PLACEMENT.train_retries
    images = {
        e["container"]["image"]
        for k, e in spec["deploymentSpec"]["executors"].items()
        if k != label
    }
    assert images == {CPU_IMAGE}


def test_caching_flags(compiled: dict) -> None:
    tasks = {
        t["taskInfo"]["name"]: t for t in [*compiled["root"].values(), *compiled["inner"].values()]
    }
    for name, step in (
        ("load-table", "load_table"),
        ("evaluate-agent", "evaluate_agent"),
        ("publish-agent", "publish_agent"),
        ("train-agent", "train_agent"),
    ):
        assert tasks[name]["cachingOptions"].get("enableCache", False) == CACHING[step]


def test_bad_seeds_rejected() -> None:
    for bad in ((), (1, 1), tuple(range(65))):
        with pytest.raises(ConfigError, match="seeds"):
            build_pipeline(bad)


def test_smoke_run_defaults_are_small() -> None:
    run = NasBenchRun.smoke()
    assert run.agent.total_env_steps <= 1000 and run.settings.max_vertices <= 5
    spec, _ = _docs(compile_to_bytes((0,), run))
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert json.loads(params["agent_config_json"]["defaultValue"])["latent"] == 16


def test_compiling_never_imports_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from rachel.cli.main import main\n"
        f"rc = main(['nasbench', 'pipeline', 'compile', '--seeds', '0,1,2', '--output', "
        f"{str(tmp_path / 'p.yaml')!r}])\n"
        "bad = [m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules]\n"
        "print('HEAVY', bad)\n"
        "sys.exit(1 if bad or rc else 0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ),
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "p.yaml").stat().st_size > 0

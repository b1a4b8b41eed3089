"""Compile the pipeline, parse the IR strictly into the pipeline-spec protobuf, check the DAG.

Tasks are found by their display names (``generate-it0``, ``train-it0``, ...), which
:func:`rachel.pipelines.rachel_pipeline.build_pipeline` sets per iteration.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format
from kfp.kubernetes import kubernetes_executor_config_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from rachel.components.settings import CPU_IMAGE, GPU_IMAGE, Placement
from rachel.core.errors import ConfigError
from rachel.pipelines.compile import (
    ARGO_WORKFLOW_LIMIT,
    WORKFLOW_BYTES_PER_IR_BYTE,
    compile_to_bytes,
    deduplicate,
)
from rachel.pipelines.rachel_pipeline import CACHING, EarlyStop, build_pipeline

REPO = Path(__file__).resolve().parents[2]
ITERATIONS, CANDIDATES = 3, 4


def _docs(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pipeline spec and the platform spec (empty when no task has a platform config)."""
    docs = list(yaml.safe_load_all(data))
    assert len(docs) in (1, 2)
    return docs[0], (docs[1] if len(docs) == 2 else {})


def _strict(spec: dict[str, Any], platform: dict[str, Any]) -> pipeline_spec_pb2.PipelineSpec:
    """Unknown fields or wrong types raise ParseError (ignore_unknown_fields=False)."""
    proto = json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    for cfg in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values():
        json_format.ParseDict(cfg, kubernetes_executor_config_pb2.KubernetesExecutorConfig())
    return proto


@pytest.fixture(scope="module", params=[True, False], ids=["deduped", "raw"])
def compiled(request: pytest.FixtureRequest) -> dict[str, Any]:
    spec, platform = _docs(
        compile_to_bytes(iterations=ITERATIONS, candidates=CANDIDATES, dedupe=request.param)
    )
    proto = _strict(spec, platform)
    root = spec["root"]["dag"]["tasks"]
    by_display = {t["taskInfo"]["name"]: key for key, t in root.items()}
    return dict(spec=spec, platform=platform, proto=proto, root=root, by_display=by_display)


def _component(c: dict, task: dict) -> dict:
    return c["spec"]["components"][task["componentRef"]["name"]]


def _executor(c: dict, task: dict) -> tuple[str, dict]:
    label = _component(c, task)["executorLabel"]
    return label, c["spec"]["deploymentSpec"]["executors"][label]["container"]


def _all_tasks(spec: dict) -> list[dict]:
    """Every task of the pipeline, at the root and inside loops and conditions."""
    return [
        t
        for comp in [spec["root"]] + list(spec["components"].values())
        for t in comp.get("dag", {}).get("tasks", {}).values()
    ]


def _train_task(c: dict, it: int) -> dict:
    loop = (
        c["root"][c["by_display"][f"for-loop-it{it}"]]
        if f"for-loop-it{it}" in c["by_display"]
        else c["root"][f"for-loop-{it + 1}"]
    )
    (task,) = _component(c, loop)["dag"]["tasks"].values()
    assert task["taskInfo"]["name"] == f"train-it{it}"
    return task


def test_dag_shape_iterations_by_candidates(compiled: dict) -> None:
    names = set(compiled["by_display"])
    per_iteration = {
        f"{step}-it{i}" for i in range(ITERATIONS) for step in ("generate", "weigh", "update")
    }
    assert per_iteration <= names
    assert {"split-data", "evaluate-ensemble"} <= names
    loops = [t for t in compiled["root"].values() if "parameterIterator" in t]
    assert len(loops) == ITERATIONS  # one fan-out per unrolled iteration
    default = json.loads(
        compiled["spec"]["root"]["inputDefinitions"]["parameters"]["config_json"]["defaultValue"]
    )
    assert (default["iterations"], default["candidates"]) == (ITERATIONS, CANDIDATES)


def test_fan_out_over_generated_candidates_and_fan_in_collected(compiled: dict) -> None:
    root, by = compiled["root"], compiled["by_display"]
    for it in range(ITERATIONS):
        gen = by[f"generate-it{it}"]
        loop_key, loop = next(
            (k, t)
            for k, t in root.items()
            if "parameterIterator" in t and gen in t.get("dependentTasks", [])
        )
        items = loop["parameterIterator"]["items"]["inputParameter"]
        assert loop["inputs"]["parameters"][items]["taskOutputParameter"] == {
            "outputParameterKey": "Output",
            "producerTask": gen,
        }
        assert loop["iteratorPolicy"]["parallelismLimit"] == Placement().parallelism
        (train,) = _component(compiled, loop)["dag"]["tasks"].values()
        assert train["taskInfo"]["name"] == f"train-it{it}"
        loop_out = _component(compiled, loop)["outputDefinitions"]["artifacts"]
        assert all(a.get("isArtifactList") for a in loop_out.values())  # dsl.Collected
        weigh = root[by[f"weigh-it{it}"]]
        collected = weigh["inputs"]["artifacts"]["candidates"]["taskOutputArtifact"]
        assert collected["producerTask"] == loop_key


def test_iterations_are_chained(compiled: dict) -> None:
    root, by = compiled["root"], compiled["by_display"]
    for it in range(ITERATIONS):
        gen, weigh, update = (root[by[f"{s}-it{it}"]] for s in ("generate", "weigh", "update"))
        update_in = update["inputs"]["artifacts"]
        assert (
            update_in["controller_in"]["taskOutputArtifact"]["producerTask"]
            == by[f"generate-it{it}"]
        )
        assert update_in["ensemble"]["taskOutputArtifact"]["producerTask"] == by[f"weigh-it{it}"]
        if it == 0:
            assert "controller_in" not in gen["inputs"].get("artifacts", {})
            assert "ensemble_in" not in weigh["inputs"]["artifacts"]
        else:
            arts = gen["inputs"]["artifacts"]
            assert (
                arts["controller_in"]["taskOutputArtifact"]["producerTask"]
                == by[f"update-it{it - 1}"]
            )
            assert (
                arts["ensemble_in"]["taskOutputArtifact"]["producerTask"] == by[f"weigh-it{it - 1}"]
            )
            assert (
                weigh["inputs"]["artifacts"]["ensemble_in"]["taskOutputArtifact"]["producerTask"]
                == by[f"weigh-it{it - 1}"]
            )
            assert "activations_before" not in weigh["inputs"]["parameters"]  # in the state
    final = root[by["evaluate-ensemble"]]
    assert (
        final["inputs"]["artifacts"]["ensemble"]["taskOutputArtifact"]["producerTask"]
        == by[f"weigh-it{ITERATIONS - 1}"]
    )


def test_gpu_placement_only_on_training(compiled: dict) -> None:
    placement = Placement()
    k8s = compiled["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    train_labels = set()
    for it in range(ITERATIONS):
        label, container = _executor(compiled, _train_task(compiled, it))
        train_labels.add(label)
        accel = container["resources"]["accelerator"]
        assert accel["resourceType"] == "nvidia.com/gpu" and accel["resourceCount"] == "1"
        assert container["resources"]["resourceCpuRequest"] == placement.train_cpu_request
        assert container["resources"]["resourceMemoryRequest"] == placement.train_memory_request
        assert container["image"] == GPU_IMAGE
        assert k8s[label]["nodeSelector"]["labels"] == {
            "cloud.google.com/gke-accelerator": "nvidia-l4"
        }
        assert k8s[label]["tolerations"] == [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
        ]
    assert set(k8s) == train_labels
    for task in _all_tasks(compiled["spec"]):
        if (
            "parameterIterator" in task
            or "dag" in _component(compiled, task)
            or task["taskInfo"]["name"].startswith("train-it")
        ):
            continue
        _, container = _executor(compiled, task)
        assert "accelerator" not in container["resources"]
        assert container["resources"]["resourceCpuRequest"] == placement.cpu_request
        assert container["resources"]["resourceMemoryRequest"] == placement.memory_request
        assert container["image"] == CPU_IMAGE


def test_retry_with_backoff_on_training_only(compiled: dict) -> None:
    for it in range(ITERATIONS):
        assert _train_task(compiled, it)["retryPolicy"] == {
            "maxRetryCount": 3,
            "backoffDuration": "60s",
            "backoffFactor": 2.0,
            "backoffMaxDuration": "3600s",
        }
    assert not any("retryPolicy" in t for t in compiled["root"].values())


def test_a_retried_training_finds_its_epoch_checkpoints_under_the_pipeline_root(
    compiled: dict,
) -> None:
    for it in range(ITERATIONS):
        inputs = _train_task(compiled, it)["inputs"]["parameters"]
        assert inputs["checkpoint_root"]["runtimeValue"]["constant"] == "{{$.pipeline_root}}"


def test_caching_on_for_deterministic_steps_only(compiled: dict) -> None:
    steps = {"split-data": "split_data", "evaluate-ensemble": "evaluate_ensemble"}
    for it in range(ITERATIONS):
        steps.update(
            {
                f"generate-it{it}": "generate_candidates",
                f"weigh-it{it}": "weigh_ensemble",
                f"update-it{it}": "update_controller",
            }
        )
        assert _train_task(compiled, it)["cachingOptions"] == {"enableCache": True}
    for display, step in steps.items():
        task = compiled["root"][compiled["by_display"][display]]
        assert bool(task["cachingOptions"].get("enableCache", False)) is CACHING[step], display
    assert CACHING["weigh_ensemble"] is False and CACHING["evaluate_ensemble"] is False


def test_dedupe_shares_one_executor_per_step() -> None:
    data = compile_to_bytes(iterations=ITERATIONS, candidates=CANDIDATES)
    spec, platform = _docs(data)
    assert len(spec["deploymentSpec"]["executors"]) == 7  # 6 search steps + promote-champion
    refs = [
        t["componentRef"]["name"]
        for c in [spec["root"]] + list(spec["components"].values())
        for t in c.get("dag", {}).get("tasks", {}).values()
    ]
    assert set(refs) <= set(spec["components"])  # every reference resolves
    assert len(platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]) == 1
    raw = compile_to_bytes(iterations=ITERATIONS, candidates=CANDIDATES, dedupe=False)
    assert len(data) < len(raw)
    again, _ = deduplicate(spec, platform)
    assert again == spec  # idempotent


def test_placement_is_a_setting() -> None:
    placement = Placement(gpu=False, train_retries=0, parallelism=2, cpu_request="500m")
    spec, platform = _docs(compile_to_bytes(iterations=1, candidates=2, placement=placement))
    assert platform == {}  # no GPU: no node selector, no toleration, no platform spec
    json_format.ParseDict(spec, pipeline_spec_pb2.PipelineSpec())
    containers = [e["container"] for e in spec["deploymentSpec"]["executors"].values()]
    assert not any("accelerator" in c["resources"] for c in containers)
    loop = next(t for t in spec["root"]["dag"]["tasks"].values() if "parameterIterator" in t)
    assert loop["iteratorPolicy"]["parallelismLimit"] == 2
    custom = Placement(node_selector_value="nvidia-tesla-t4", accelerator_limit=2)
    spec, platform = _docs(compile_to_bytes(iterations=1, candidates=2, placement=custom))
    (cfg,) = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
    assert cfg["nodeSelector"]["labels"]["cloud.google.com/gke-accelerator"] == "nvidia-tesla-t4"
    train = next(
        e
        for e in spec["deploymentSpec"]["executors"].values()
        if "accelerator" in e["container"]["resources"]
    )
    assert train["container"]["resources"]["accelerator"]["resourceCount"] == "2"


def test_early_stop_nests_conditions_with_an_evaluation_per_exit() -> None:
    spec, platform = _docs(
        compile_to_bytes(iterations=3, candidates=2, early_stop=EarlyStop(2, 0.9))
    )
    _strict(spec, platform)
    evaluations, promotions, conditions = 0, 0, 0
    for task in _all_tasks(spec):
        evaluations += task["taskInfo"]["name"] == "evaluate-ensemble"
        promotions += task["taskInfo"]["name"] == "promote-champion"
        conditions += "condition" in task.get("triggerPolicy", {})
    assert evaluations == 3  # stop after it0, stop after it1, or run all 3
    assert promotions == 3  # each evaluation is followed by its promotion gate
    assert conditions == 4 + 3  # an If and an Else after it0 and it1; an If per promotion
    weigh = [
        t
        for c in spec["components"].values()
        for t in c.get("dag", {}).get("tasks", {}).values()
        if t["taskInfo"]["name"].startswith("weigh-it")
    ]
    weigh += [
        t
        for t in spec["root"]["dag"]["tasks"].values()
        if t["taskInfo"]["name"].startswith("weigh-it")
    ]
    assert weigh
    default = json.loads(
        spec["root"]["inputDefinitions"]["parameters"]["config_json"]["defaultValue"]
    )
    assert default["target_accuracy"] == 0.9  # the weigh steps read the rule from the config


def _inlined(spec: dict[str, Any], platform: dict[str, Any] | None) -> dict[str, Any]:
    """The pipeline with every component and executor written out in place of its name: what
    each task runs (container, Kubernetes config, inputs, DAG wiring), independent of how the
    IR shares component specs and executors between tasks."""
    executors = spec["deploymentSpec"]["executors"]
    k8s = (
        (platform or {})
        .get("platforms", {})
        .get("kubernetes", {})
        .get("deploymentSpec", {})
        .get("executors", {})
    )

    def component(name: str) -> dict[str, Any]:
        comp = copy.deepcopy(spec["components"][name])
        if "dag" in comp:
            comp["dag"]["tasks"] = {k: task(t) for k, t in comp["dag"]["tasks"].items()}
        if "executorLabel" in comp:
            label = comp.pop("executorLabel")
            comp["executor"] = {"container": executors[label]["container"], "k8s": k8s.get(label)}
        return comp

    def task(t: dict[str, Any]) -> dict[str, Any]:
        t = copy.deepcopy(t)
        t["component"] = component(t.pop("componentRef")["name"])
        return t

    root = copy.deepcopy(spec["root"])
    root["dag"]["tasks"] = {k: task(t) for k, t in root["dag"]["tasks"].items()}
    return root


@pytest.mark.parametrize(
    "early_stop", [None, EarlyStop(target_accuracy=0.9)], ids=["plain", "early-stop"]
)
def test_the_shipped_ir_runs_exactly_what_the_local_run_executes(early_stop: Any) -> None:
    """``rachel compile`` ships the deduplicated IR; ``rachel run`` executes the IR without
    sharing (kfp.local names task folders after components: shared ones would collide).  Task
    for task, both run the same containers with the same Kubernetes config and wiring."""
    shipped = _docs(compile_to_bytes(iterations=3, candidates=2, early_stop=early_stop))
    executed = _docs(
        compile_to_bytes(iterations=3, candidates=2, early_stop=early_stop, dedupe=False)
    )
    assert len(shipped[0]["deploymentSpec"]["executors"]) < len(
        executed[0]["deploymentSpec"]["executors"]
    )  # it does share
    assert _inlined(*shipped) == _inlined(*executed)


def test_every_platform_executor_exists_and_training_keeps_its_placement(compiled: dict) -> None:
    """The backend silently drops a platform config whose executor name matches no
    deployment executor (seen with KFP 2.17): every name must resolve."""
    k8s = compiled["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert k8s and set(k8s) <= set(compiled["spec"]["deploymentSpec"]["executors"])
    for it in range(ITERATIONS):
        label, _ = _executor(compiled, _train_task(compiled, it))
        assert "nodeSelector" in k8s[label] and "tolerations" in k8s[label]


@pytest.mark.parametrize("iterations", [10, 50])
def test_compiled_size_stays_below_the_argo_estimate(iterations: int, record_property: Any) -> None:
    size = len(compile_to_bytes(iterations=iterations, candidates=4))
    record_property(f"ir_bytes_{iterations}x4", size)
    print(f"{iterations}x4 IR: {size:,} bytes")
    assert size * WORKFLOW_BYTES_PER_IR_BYTE < ARGO_WORKFLOW_LIMIT


def test_an_iteration_count_past_argos_limit_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ConfigError, match="Argo") as err:
        compile_to_bytes(iterations=150, candidates=4)
    assert "fewer iterations" in str(err.value) and "estimated" in str(err.value)


@pytest.mark.parametrize("bad", [0, -1, 201, 2.5])
def test_bad_iterations_rejected_before_compiling(bad: Any) -> None:
    with pytest.raises(ConfigError):
        build_pipeline(bad, 2)


def _fresh_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        timeout=120,
    )


def test_compiling_never_imports_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from rachel.pipelines.compile import compile_pipeline\n"
        "import rachel.pipelines.local, rachel.cli.pipeline_commands\n"
        f"compile_pipeline({str(tmp_path / 'p.yaml')!r}, iterations=2, candidates=2)\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "print('HEAVY', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    done = _fresh_python(code)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "p.yaml").stat().st_size > 0


def _images_in(data: bytes) -> list[str]:
    spec = next(yaml.safe_load_all(data))
    return sorted({e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()})


def test_images_are_a_compile_parameter() -> None:
    """Two compilations in one process, no environment juggling: each gets its images."""
    from rachel.components.settings import Images

    a = compile_to_bytes(iterations=1, candidates=2, images=Images("registry.example/a", "v1"))
    b = compile_to_bytes(iterations=1, candidates=2, images=Images("registry.example/b", "sha9"))
    assert _images_in(a) == ["registry.example/a/rachel-cpu:v1", "registry.example/a/rachel-gpu:v1"]
    assert _images_in(b) == [
        "registry.example/b/rachel-cpu:sha9",
        "registry.example/b/rachel-gpu:sha9",
    ]
    spec = next(yaml.safe_load_all(b))
    train = _train_task(
        {
            "spec": spec,
            "root": spec["root"]["dag"]["tasks"],
            "by_display": {
                t["taskInfo"]["name"]: k for k, t in spec["root"]["dag"]["tasks"].items()
            },
        },
        0,
    )
    label = spec["components"][train["componentRef"]["name"]]["executorLabel"]
    assert spec["deploymentSpec"]["executors"][label]["container"]["image"].endswith(
        "rachel-gpu:sha9"
    )  # training on the GPU image, the rest on the CPU image
    with pytest.raises(ConfigError, match="not a pinned image tag"):
        Images("registry.example/a", "latest")


def test_image_registry_and_tag_default_to_the_environment() -> None:
    code = (
        "from rachel.pipelines.compile import compile_to_bytes\n"
        "import yaml\n"
        "spec = next(yaml.safe_load_all(compile_to_bytes(iterations=1, candidates=2)))\n"
        "print(sorted({e['container']['image'] for e in "
        "spec['deploymentSpec']['executors'].values()}))\n"
    )
    done = _fresh_python(
        code, RACHEL_IMAGE_REGISTRY="registry.example/team", RACHEL_IMAGE_TAG="abc123"
    )
    assert done.returncode == 0, done.stderr
    expected = [f"registry.example/team/rachel-{kind}:abc123" for kind in ("cpu", "gpu")]
    assert str(expected) in done.stdout
    done = _fresh_python("import rachel.components.settings", RACHEL_IMAGE_TAG="latest")
    assert done.returncode != 0 and "not a pinned image tag" in done.stderr


def test_oversized_ir_is_refused_with_a_fix() -> None:
    with pytest.raises(ConfigError, match="over the 10,000-byte budget") as err:
        compile_to_bytes(
            iterations=2, candidates=2, max_bytes=10_000, early_stop=EarlyStop(target_accuracy=0.9)
        )
    assert "early stop" in str(err.value)


def test_a_time_budget_compiles_the_planner_stop_conditions() -> None:
    from rachel.core.config import budget_config

    config = budget_config("smoke", time_budget_seconds=300.0)
    spec, _ = _docs(compile_to_bytes(iterations=3, candidates=2, config=config))
    root = spec["root"]["dag"]["tasks"]
    conditions = [k for k in root if k.startswith("condition")]
    assert conditions, "a time budget must compile the conditional (early-stop) DAG"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert "plan_json" in params and params["plan_json"]["defaultValue"] == ""
    default = json.loads(params["config_json"]["defaultValue"])
    assert default["time_budget_seconds"] == 300.0
    weigh = next(t for t in root.values() if t["taskInfo"]["name"] == "weigh-it0")
    assert "plan_json" in weigh["inputs"]["parameters"]


def test_promotion_runs_after_evaluation_only_with_a_registry(compiled: dict) -> None:
    spec, root, by = compiled["spec"], compiled["root"], compiled["by_display"]
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert (
        params["registry"]["defaultValue"] == "" and params["registry"]["parameterType"] == "STRING"
    )
    assert (
        params["promotion_margin"]["defaultValue"] == 0.0
        and params["promotion_margin"]["parameterType"] == "NUMBER_DOUBLE"
    )
    assert "promote-champion" not in by  # never unconditional at the root
    (gate,) = [t for t in root.values() if "condition" in t.get("triggerPolicy", {})]
    assert (
        gate["triggerPolicy"]["condition"]
        == "inputs.parameter_values['pipelinechannel--registry'] != ''"
    )
    assert gate["inputs"]["parameters"]["pipelinechannel--registry"] == {
        "componentInputParameter": "registry"
    }
    (promote,) = _component(compiled, gate)["dag"]["tasks"].values()
    assert promote["taskInfo"]["name"] == "promote-champion"
    assert promote["cachingOptions"].get("enableCache", False) is False
    assert CACHING["promote_champion"] is False  # its outcome depends on the registry
    # inside the condition, inputs come through the condition task's own inputs
    arts = {k: v["componentInputArtifact"] for k, v in promote["inputs"]["artifacts"].items()}
    producers = {k: gate["inputs"]["artifacts"][v]["taskOutputArtifact"] for k, v in arts.items()}
    assert producers["model"] == {
        "outputArtifactKey": "model",
        "producerTask": by["evaluate-ensemble"],
    }
    assert producers["controller"] == {
        "outputArtifactKey": "controller_out",
        "producerTask": by[f"update-it{ITERATIONS - 1}"],
    }
    assert producers["splits"]["producerTask"] == by["split-data"]
    assert by["evaluate-ensemble"] in gate["dependentTasks"]
    parameters = promote["inputs"]["parameters"]
    assert parameters["registry"] == {"componentInputParameter": "pipelinechannel--registry"}
    assert parameters["promotion_margin"] == {
        "componentInputParameter": "pipelinechannel--promotion_margin"
    }
    _, container = _executor(compiled, promote)
    assert container["image"] == CPU_IMAGE and "accelerator" not in container["resources"]


def test_a_configuration_with_a_finish_compiles_it_on_a_gpu_before_the_evaluation() -> None:
    from rachel.core.config import budget_config

    config = budget_config("smoke", finish_epochs=3).replace(time_budget_seconds=None)
    spec, platform = _docs(compile_to_bytes(iterations=2, candidates=2, config=config))
    _strict(spec, platform)
    c = dict(spec=spec, root=spec["root"]["dag"]["tasks"])
    by = {t["taskInfo"]["name"]: (key, t) for key, t in c["root"].items()}
    key, task = by["finish"]
    ensemble = task["inputs"]["artifacts"]["ensemble_in"]["taskOutputArtifact"]
    assert ensemble["producerTask"] == by["weigh-it1"][0]
    final = by["evaluate-ensemble"][1]["inputs"]["artifacts"]["ensemble"]["taskOutputArtifact"]
    assert final == {"outputArtifactKey": "ensemble_out", "producerTask": key}
    _, container = _executor(c, task)
    assert container["resources"]["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert container["image"] == GPU_IMAGE
    assert task["retryPolicy"]["maxRetryCount"] == 3
    assert task["cachingOptions"].get("enableCache", False) is False
    assert task["inputs"]["parameters"]["checkpoint_root"]["runtimeValue"]["constant"] == (
        "{{$.pipeline_root}}"
    )
    # without a finish in the configuration, no finish task (and no GPU pod for nothing)
    plain, _ = _docs(compile_to_bytes(iterations=2, candidates=2))
    names = {t["taskInfo"]["name"] for t in plain["root"]["dag"]["tasks"].values()}
    assert "finish" not in names and "evaluate-ensemble" in names
    # ... and its first task is told so: a run asking for a finish is refused there
    split = {t["taskInfo"]["name"]: t for t in plain["root"]["dag"]["tasks"].values()}
    told = split["split-data"]["inputs"]["parameters"]["finish_in_dag"]["runtimeValue"]
    assert told["constant"] is False
    assert by["split-data"][1]["inputs"]["parameters"]["finish_in_dag"]["runtimeValue"] == {
        "constant": True
    }


def test_a_run_asking_for_a_finish_the_dag_lacks_is_refused_at_its_first_task(
    tmp_path: Path,
) -> None:
    from kfp.dsl import Dataset

    from rachel.components.split_data import split_data
    from rachel.core.config import budget_config
    from rachel.core.errors import ConfigError

    config = json.dumps(budget_config("small").to_json())
    splits = Dataset(name="splits", uri=str(tmp_path / "splits"), metadata={})
    with pytest.raises(ConfigError, match="compiled without the finish task"):
        split_data.python_func(config_json=config, splits=splits, finish_in_dag=False)
    assert not (tmp_path / "splits").exists()  # refused before anything was written


def test_the_tasks_that_decide_on_time_count_from_the_runs_start(compiled: dict) -> None:
    params = compiled["spec"]["root"]["inputDefinitions"]["parameters"]
    assert params["started_at"]["defaultValue"] == 0.0
    for display in ("weigh-it0", f"weigh-it{ITERATIONS - 1}", "evaluate-ensemble"):
        inputs = compiled["root"][compiled["by_display"][display]]["inputs"]["parameters"]
        assert inputs["started_at"] == {"componentInputParameter": "started_at"}
        assert inputs["job_created"]["runtimeValue"]["constant"] == (
            "{{$.pipeline_job_create_time_utc}}"
        )

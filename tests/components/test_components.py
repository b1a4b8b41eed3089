"""Each component's Python function, called with real artifacts under a temp folder.

One module-scoped chain runs the search's steps through the components for two iterations
(so the second iteration reads the controller and ensemble the first one wrote) and the
tests look at what each step wrote; a last test checks that the chain matches the
in-process reference :func:`rachel.core.search.run_search` step for step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kfp.dsl import Artifact, ClassificationMetrics, Dataset, Markdown, Metrics, Model

from rachel.components.evaluate_ensemble import evaluate_ensemble
from rachel.components.generate_candidates import generate_candidates
from rachel.components.promote_champion import promote_champion
from rachel.components.split_data import split_data
from rachel.components.train_candidate import train_candidate
from rachel.components.update_controller import update_controller
from rachel.components.weigh_ensemble import weigh_ensemble
from rachel.core.ensemble_state import EnsembleState

COMPONENTS = (
    split_data,
    generate_candidates,
    train_candidate,
    weigh_ensemble,
    update_controller,
    evaluate_ensemble,
    promote_champion,
)


def _artifact(cls: type, root: Path, name: str) -> Any:
    return cls(name=name, uri=str(root / name), metadata={})


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, data_dir: Path, tiny_config: Any) -> dict:
    root = tmp_path_factory.mktemp("components")
    cfg = json.dumps(tiny_config.to_json())
    out: dict[str, Any] = {"root": root, "config": tiny_config, "iterations": []}
    splits = _artifact(Dataset, root, "splits")
    split_data.python_func(config_json=cfg, splits=splits)
    out["splits"] = splits
    controller = ensemble = None
    for it in range(tiny_config.iterations):
        gen_out = _artifact(Artifact, root, f"controller_gen_{it}")
        state = {} if it == 0 else {"controller_in": controller, "ensemble_in": ensemble}
        cands = generate_candidates.python_func(
            config_json=cfg, iteration=it, controller_out=gen_out, **state
        )
        trained = []
        for cand in cands:
            model = _artifact(Model, root, f"model_{cand['candidate_id']}")
            metrics = _artifact(Metrics, root, f"metrics_{cand['candidate_id']}")
            train_candidate.python_func(
                config_json=cfg, candidate=cand, splits=splits, model=model, metrics=metrics
            )
            trained.append((model, metrics))
        new_ensemble = _artifact(Model, root, f"ensemble_{it}")
        weigh_metrics = _artifact(Metrics, root, f"weigh_metrics_{it}")
        extra = {} if it == 0 else {"ensemble_in": ensemble}
        weighed = weigh_ensemble.python_func(
            config_json=cfg,
            iteration=it,
            splits=splits,
            candidates=[m for m, _ in trained],
            ensemble_out=new_ensemble,
            metrics=weigh_metrics,
            **extra,
        )
        new_controller = _artifact(Artifact, root, f"controller_{it}")
        update_metrics = _artifact(Metrics, root, f"update_metrics_{it}")
        update_controller.python_func(
            config_json=cfg,
            controller_in=gen_out,
            ensemble=new_ensemble,
            controller_out=new_controller,
            metrics=update_metrics,
        )
        out["iterations"].append(
            dict(
                candidates=cands,
                trained=trained,
                ensemble=new_ensemble,
                weighed=weighed,
                weigh_metrics=weigh_metrics,
                controller=new_controller,
                update_metrics=update_metrics,
            )
        )
        controller, ensemble = new_controller, new_ensemble
    final = {
        name: _artifact(cls, root, name)
        for name, cls in (
            ("model", Model),
            ("metrics", Metrics),
            ("confusion", ClassificationMetrics),
            ("report", Markdown),
        )
    }
    evaluate_ensemble.python_func(config_json=cfg, splits=splits, ensemble=ensemble, **final)
    out["final"] = final
    return out


def test_components_are_python_components_on_our_images() -> None:
    from rachel.components.settings import CPU_IMAGE, GPU_IMAGE

    for comp in COMPONENTS:
        container = comp.component_spec.implementation.container
        assert container.image == (GPU_IMAGE if comp is train_candidate else CPU_IMAGE)
        # install_kfp_package=False: the command runs the executor, it does not pip install
        assert not any("pip install" in part for part in container.command)
        assert "config_json" in comp.component_spec.inputs


def test_split_writes_dataset_with_metadata(chain: dict) -> None:
    splits = chain["splits"]
    assert Path(splits.path).is_file()
    meta = splits.metadata
    assert (meta["train"], meta["val"], meta["test"]) == (300, 100, 100)
    assert meta["num_classes"] == 10 and meta["dataset"] == "fashion_mnist"


def test_generate_returns_json_candidates_for_parallel_for(chain: dict) -> None:
    cfg = chain["config"]
    for it, record in enumerate(chain["iterations"]):
        cands = record["candidates"]
        assert len(cands) == cfg.candidates
        assert [c["candidate_id"] for c in cands] == [f"it{it:03d}-c{k:02d}" for k in range(2)]
        json.dumps(cands)  # a ParallelFor item must be plain JSON


def test_train_writes_model_folder_and_metrics(chain: dict) -> None:
    for record in chain["iterations"]:
        for model, metrics in record["trained"]:
            folder = Path(model.path)
            assert {"candidate.json", "metrics.json"} <= {p.name for p in folder.iterdir()}
            assert model.metadata["status"] == "ok"
            assert (folder / "model.keras").is_file()
            assert 0.0 <= metrics.metadata["val_accuracy"] <= 1.0
            assert metrics.metadata["params"] > 0 and metrics.metadata["succeeded"] == 1.0
            assert all(isinstance(v, (int, float)) for v in metrics.metadata.values())


def test_weigh_chains_ensemble_state_and_counts_safety_net(chain: dict) -> None:
    total = 0
    for it, record in enumerate(chain["iterations"]):
        ensemble = record["ensemble"]
        state = json.loads((Path(ensemble.path) / "ensemble.json").read_text())
        assert len(state["history"]) == it + 1  # the second weigh read the first one's state
        entry = state["history"][-1]
        total += int(entry["safety_net_activated"])
        assert record["weighed"].safety_net_activations == total
        assert record["weighed"].keep_searching is True  # early stop disabled by default
        assert ensemble.metadata["members"] == entry["members"]
        assert set(entry["rewards"]) == {c["candidate_id"] for c in record["candidates"]}
        # Members by reference: the artifact is one file naming the trained models' URIs.
        assert [p.name for p in Path(ensemble.path).iterdir()] == ["ensemble.json"]
        models = {m.uri for r in chain["iterations"] for m, _ in r["trained"]}
        assert {
            EnsembleState.read(ensemble.path).member_uri(cid) for cid in entry["members"]
        } <= models


def test_weigh_keep_searching_false_when_target_reached(chain: dict, tmp_path: Path) -> None:
    """The configuration's stop rule, as rachel search applies it (core/stop_rules.py)."""
    record = chain["iterations"][0]
    for target, keep in ((1e-9, False), (0.0, True)):
        weighed = weigh_ensemble.python_func(
            config_json=json.dumps(chain["config"].replace(target_accuracy=target).to_json()),
            iteration=0,
            splits=chain["splits"],
            candidates=[m for m, _ in record["trained"]],
            ensemble_out=_artifact(Model, tmp_path, f"ens{target}"),
            metrics=_artifact(Metrics, tmp_path, f"m{target}"),
        )
        assert weighed.keep_searching is keep


def test_update_controller_writes_new_state(chain: dict) -> None:
    for record in chain["iterations"]:
        assert Path(record["controller"].path).exists()
        assert record["update_metrics"].metadata  # some numeric statistics were logged


def test_evaluate_writes_model_metrics_confusion_and_report(chain: dict) -> None:
    final = chain["final"]
    folder = Path(final["model"].path)
    assert {"model.keras", "saved_model", "metrics.json", "report.md"} <= {
        p.name for p in folder.iterdir()
    }
    metrics = final["metrics"].metadata
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert metrics["iterations"] == 2 and metrics["candidates_trained"] == 4
    matrix = final["confusion"].metadata["confusionMatrix"]
    assert len(matrix["annotationSpecs"]) == 10
    assert sum(sum(row["row"]) for row in matrix["rows"]) == 100  # every test example
    assert Path(final["report"].path).read_text().strip()
    assert final["model"].metadata["test_accuracy"] == metrics["test_accuracy"]


def test_chain_matches_in_process_search(chain: dict, tmp_path: Path) -> None:
    """The components run the same steps as run_search: same candidates, rewards, decisions.

    Training is reproducible for a seed (sequential seeded augmentation), so the chain of
    components and the in-process loop agree exactly, not just approximately.
    """
    from rachel.core.search import run_search

    reference = run_search(chain["config"], tmp_path / "ref")
    log = [json.loads(line) for line in (tmp_path / "ref" / "search_log.jsonl").open()]
    ref_iterations = [e for e in log if e["event"] == "iteration"]
    assert len(ref_iterations) == len(chain["iterations"])
    ref_first = [
        json.loads(
            (
                tmp_path
                / "ref"
                / "iterations"
                / "it000"
                / "candidates"
                / c["candidate_id"]
                / "candidate.json"
            ).read_text()
        )["spec"]
        for c in chain["iterations"][0]["candidates"]
    ]
    assert [c["spec"] for c in chain["iterations"][0]["candidates"]] == ref_first
    for record, ref in zip(chain["iterations"], ref_iterations, strict=True):
        state = json.loads((Path(record["ensemble"].path) / "ensemble.json").read_text())
        entry = state["history"][-1]
        assert entry["rewards"] == pytest.approx(ref["rewards"], abs=1e-6)
        assert entry["members"] == ref["members"]
        assert entry["best_candidate"] == ref["best_candidate"]
        assert entry["decision"] == ref["decision"]
    got = chain["final"]["metrics"].metadata
    assert got["test_accuracy"] == pytest.approx(reference["test_accuracy"], abs=1e-9)


def test_promote_champion_publishes_and_reports(tmp_path: Path) -> None:
    """The gate's component on small fake inputs (it copies files; no training needed)."""
    import numpy as np

    from rachel.core import registry
    from rachel.core.config import budget_config
    from rachel.core.controller import Controller, ControllerSettings
    from rachel.core.data.splits import DatasetSplits

    def part(n: int = 4) -> tuple[np.ndarray, np.ndarray]:
        x = np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 1))
        return x.copy(), np.arange(n, dtype=np.int64) % 2

    splits = _artifact(Dataset, tmp_path, "splits.npz")
    DatasetSplits(
        *part(),
        *part(),
        *part(),
        name="t",
        num_classes=2,
        class_names=("a", "b"),
        input_shape=(2, 2, 1),
        augmentation="none",
        seed=0,
        source="test",
    ).save(splits.path)
    controller = _artifact(Artifact, tmp_path, "controller")
    Controller(ControllerSettings(kind="random")).save(controller.path)
    cfg = json.dumps(budget_config("smoke").to_json())
    reg = str(tmp_path / "registry")
    outcomes = []
    for accuracy in (0.6, 0.5):
        model = _artifact(Model, tmp_path, f"model_{accuracy}")
        Path(model.path).mkdir()
        (Path(model.path) / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy}))
        (Path(model.path) / "model.keras").write_bytes(b"weights")
        metrics = _artifact(Metrics, tmp_path, f"gate_metrics_{accuracy}")
        report = _artifact(Markdown, tmp_path, f"gate_report_{accuracy}")
        promote_champion.python_func(
            config_json=cfg,
            registry=reg,
            splits=splits,
            model=model,
            controller=controller,
            metrics=metrics,
            report=report,
            promotion_margin=0.0,
            run_id="run-1",
        )
        assert sorted(p.name for p in Path(model.path).iterdir()) == [
            "metrics.json",
            "model.keras",
        ]  # the input artifact is left untouched
        outcomes.append((metrics.metadata, report))
    (first, first_report), (second, second_report) = outcomes
    assert first["promoted"] == 1.0 and second["promoted"] == 0.0
    assert second["champion_test_accuracy"] == 0.6 and second["new_test_accuracy"] == 0.5
    assert "champion kept" in Path(second_report.path).read_text()
    assert second_report.metadata["decision"] == "kept"
    record = json.loads(first_report.metadata["record"])
    assert registry.champion(reg)["version"] == record["run_version"]
    assert record["run"]["run_id"] == "run-1" and record["run"]["runner"] == "kubeflow"

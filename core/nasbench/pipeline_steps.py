"""The NAS-Bench pipeline's steps as plain functions (paths and JSON strings in, summaries
out), so that a component is one call and a test can run a step without kfp.

Each artifact path is used as a folder::

    table/       table.parquet
    surrogate/   surrogate.json (the bounded XGBoost ensemble) or ground.json only, when the
                 table is complete (the table itself is then the reward)
    agent/       agent/ (the TrainedAgent), checkpoints/, training.json
    evaluation/  report.json, report.md, plots, experiment.json
    details/     report.md, aggregate.json (the aggregate's Markdown artifact is report.md)
    published/   card.json (a copy of the registry card)

``settings_json`` holds the :class:`ExperimentSettings` fields except ``table`` and
``surrogate`` (those are artifacts); ``agent_config_json`` the :class:`AgentConfig`;
``protocol_json`` the :class:`ProtocolConfig`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from rachel.core import storage
from rachel.core.errors import ConfigError
from rachel.core.nasbench.agent import AgentConfig
from rachel.core.nasbench.evaluation import ProtocolConfig
from rachel.core.nasbench.experiment import ExperimentSettings

TABLE_FILE = "table.parquet"
SURROGATE_FILE = "surrogate.json"


def settings_to_json(settings: ExperimentSettings) -> str:
    data = dataclasses.asdict(settings)
    data.pop("table")
    data.pop("surrogate")
    data["searchers"] = list(data["searchers"])
    return json.dumps(data, sort_keys=True)


def settings_from_json(text: str, table: str, surrogate: str | None = None) -> ExperimentSettings:
    data = json.loads(text) if text else {}
    known = {f.name for f in dataclasses.fields(ExperimentSettings)} - {"table", "surrogate"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown experiment setting(s) {unknown}", f"use {sorted(known)}")
    if "searchers" in data:
        data["searchers"] = tuple(data["searchers"])
    return ExperimentSettings(table=table, surrogate=surrogate, **data)


def protocol_to_json(protocol: ProtocolConfig) -> str:
    return json.dumps(dataclasses.asdict(protocol), sort_keys=True)


def protocol_from_json(text: str) -> ProtocolConfig:
    data = json.loads(text) if text else {}
    for key in ("budgets", "curve_lengths", "intervals"):
        if key in data:
            data[key] = tuple(data[key])
    return ProtocolConfig(**data)


def _table(folder: str) -> str:
    return str(Path(folder) / TABLE_FILE)


def _surrogate(folder: str) -> str | None:
    path = Path(folder) / SURROGATE_FILE
    return str(path) if path.exists() else None


def load_table(table_uri: str, out_dir: str) -> dict[str, Any]:
    """Copy (or convert, for ``.tfrecord``) the table into ``out_dir/table.parquet``."""
    from rachel.core.nasbench.table import BenchTable, convert_tfrecord_to_parquet

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    target = _table(out_dir)
    if str(table_uri).endswith(".tfrecord"):
        convert_tfrecord_to_parquet(table_uri, target)
    else:
        storage.write_bytes(target, storage.read_bytes(table_uri))
    bench = BenchTable.load(target)
    known = int(np.sum(~np.isnan(bench.val_mean)))
    return {
        "source": str(table_uri),
        "cells": len(bench),
        "known_cells": known,
        "partial": known < len(bench),
    }


def fit_surrogate(settings_json: str, table_dir: str, out_dir: str) -> dict[str, Any]:
    """Fit (and score on a held-out split) the surrogate when the table is partial."""
    from rachel.core.nasbench.estimators import evaluate_surrogate
    from rachel.core.nasbench.index import table_or_default
    from rachel.core.nasbench.table import BenchTable

    settings = settings_from_json(settings_json, _table(table_dir))
    bench = BenchTable.load(table_or_default(settings.table))
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    known = int(np.sum(~np.isnan(bench.val_mean)))
    if known == len(bench) or settings.estimator in ("tabular", "real_subset"):
        storage.write_json(
            str(Path(out_dir) / "ground.json"),
            {
                "estimator": "tabular" if known == len(bench) else settings.estimator,
                "reason": f"{known} of {len(bench)} known",
            },
        )
        return {
            "metrics": {"known_cells": float(known)},
            "metadata": {"estimator": "tabular", "fingerprint": ""},
        }
    _, report = evaluate_surrogate(bench, **settings.surrogate_kwargs())
    # the model the agents use is fit on every known cell (the report's is on 80 %)
    from rachel.core.nasbench.estimators import SurrogateEstimator

    model = SurrogateEstimator.fit(bench, **settings.surrogate_kwargs())
    model.save(str(Path(out_dir) / SURROGATE_FILE))
    storage.write_json(str(Path(out_dir) / "held_out_report.json"), report.as_dict())
    metrics = {
        "kendall_tau": report.kendall_tau,
        "spearman_rho": report.spearman_rho,
        "rmse": report.rmse,
        "known_cells": float(known),
    }
    if "10" in report.top_k:
        metrics["top10_true_mean"] = report.top_k["10"]["true_mean_of_predicted_top"]
    return {
        "metrics": metrics,
        "metadata": {"estimator": "surrogate", "fingerprint": model.fingerprint},
    }


def train_agent(
    settings_json: str,
    agent_config_json: str,
    seed: int,
    table_dir: str,
    surrogate_dir: str,
    out_dir: str,
) -> dict[str, Any]:
    from rachel.core.nasbench.training import train_agent as train

    settings = settings_from_json(settings_json, _table(table_dir), _surrogate(surrogate_dir))
    settings = dataclasses.replace(settings, seed=int(seed))
    config = AgentConfig.from_json(agent_config_json).replace(seed=int(seed))
    return train(settings, config, out_dir)


def evaluate_agent(
    settings_json: str,
    protocol_json: str,
    table_dir: str,
    surrogate_dir: str,
    agent_dir: str,
    out_dir: str,
) -> dict[str, Any]:
    from rachel.core.nasbench.policy import TrainedAgent
    from rachel.core.nasbench.training import AGENT_NAME, evaluate_agents

    agent_uri = str(Path(agent_dir) / "agent")
    seed = TrainedAgent.load(agent_uri).config.seed
    settings = settings_from_json(settings_json, _table(table_dir), _surrogate(surrogate_dir))
    settings = dataclasses.replace(settings, seed=int(seed))
    out = evaluate_agents(settings, protocol_from_json(protocol_json), [agent_uri], out_dir)
    metrics = {
        f"{name}_at_{row['budget']}": row["mean"]
        for name, entry in out["summary"]["searchers"].items()
        for row in entry["table"]
        if name == AGENT_NAME or row["budget"] in (50, 300)
    }
    return {"metrics": metrics, "seed": seed}


def aggregate_report(
    evaluation_dirs: list[str], markdown_path: str, out_dir: str
) -> dict[str, Any]:
    """``out_dir``: report.md + aggregate.json; ``markdown_path``: the report again (the file
    KFP shows for a Markdown artifact).  Returns the best agent's seed."""
    from rachel.core.nasbench.registry import aggregate

    summary = aggregate(evaluation_dirs, out_dir)
    storage.write_bytes(markdown_path, storage.read_bytes(str(Path(out_dir) / "report.md")))
    reports = [storage.read_json(str(Path(e) / "report.json")) for e in evaluation_dirs]
    best_seed = int(reports[summary["best"]]["experiment"]["seed"])
    metrics = {
        "best_seed": float(best_seed),
        "agents": float(len(evaluation_dirs)),
        "best_mean_at_select_budget": float(summary["scores"][summary["best"]][0]),
    }
    return {"best": best_seed, "metrics": metrics}


def publish_agent(
    registry_uri: str,
    name: str,
    version: str,
    agent_dirs: list[str],
    evaluation_dirs: list[str],
    best_seed: int,
    surrogate_dir: str,
    out_dir: str,
) -> dict[str, Any]:
    """Publish the agent whose seed is ``best_seed`` (agents and evaluations are matched by
    seed, not by position in the collected lists)."""
    from rachel.core.nasbench.policy import TrainedAgent
    from rachel.core.nasbench.registry import publish

    agents = {TrainedAgent.load(str(Path(a) / "agent")).config.seed: a for a in agent_dirs}
    evals = {
        int(storage.read_json(str(Path(e) / "report.json"))["experiment"]["seed"]): e
        for e in evaluation_dirs
    }
    if best_seed not in agents or best_seed not in evals:
        raise ConfigError(
            f"no agent/evaluation for seed {best_seed}",
            "aggregate and publish the same ParallelFor's outputs",
        )
    card = publish(
        str(Path(agents[best_seed]) / "agent"),
        evals[best_seed],
        registry_uri,
        name=name,
        version=version or None,
        surrogate=_surrogate(surrogate_dir),
        extra={"seed": best_seed, "chosen_from": sorted(agents)},
    )
    storage.write_json(str(Path(out_dir) / "card.json"), card)
    return card

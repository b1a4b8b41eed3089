"""Aggregating trained agents' evaluations, and publishing the best agent to a registry.

Registry layout under a registry URI (a local folder or ``gs://bucket/prefix``)::

    <registry>/<name>/<version>/agent/        agent.json + weights.npz (TrainedAgent)
    <registry>/<name>/<version>/surrogate.json the reward the agent was trained and scored on
    <registry>/<name>/<version>/evaluation/    report.json, report.md (+ plots when present)
    <registry>/<name>/<version>/card.json      name, version, seed, the agent's table at
                                               50/100/150/300 queries, the surrogate
                                               fingerprint, the config, how it was chosen
    <registry>/<name>/latest.json              {"version": ...}, written last

:func:`resolve_agent` turns ``<registry>/<name>`` (latest), ``<registry>/<name>/<version>`` or
a plain agent folder into the agent folder, so ``rachel nasbench evaluate --agent URI`` takes
any of them.

Best agent: the highest mean best-found accuracy (report metric) of the agent searcher at
``select_budget`` queries (default 100, or the protocol's closest budget), ties broken by the
largest budget's mean.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from typing import Any

from rachel.core import storage
from rachel.core.errors import ArtifactError, ConfigError
from rachel.core.nasbench.training import AGENT_NAME

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def _table_of(report: dict[str, Any], searcher: str = AGENT_NAME) -> list[dict[str, Any]]:
    try:
        return list(report["searchers"][searcher]["table"])
    except KeyError as err:
        raise ArtifactError(
            f"the evaluation has no {searcher!r} table",
            "evaluate the agent with 'rachel nasbench evaluate --agent'",
        ) from err


def _mean_at(table: list[dict[str, Any]], budget: int) -> float:
    for row in table:
        if row["budget"] == budget:
            return float(row["mean"])
    raise ArtifactError(
        f"the evaluation table has no {budget}-query row",
        f"evaluate with budget {budget} in the protocol",
    )


def aggregate(evaluations: Sequence[str], output: str, select_budget: int = 100) -> dict[str, Any]:
    """One report over the agents' evaluations (``report.json`` folders): a Markdown table of
    every agent and the baselines of the first evaluation, and the index of the best agent."""
    if not evaluations:
        raise ConfigError("no evaluations to aggregate", "train and evaluate at least one agent")
    reports = [storage.read_json(storage.join(e, "report.json")) for e in evaluations]
    tables = [_table_of(r) for r in reports]
    larger = max(row["budget"] for row in tables[0])
    available = [row["budget"] for row in tables[0]]
    if select_budget not in available:  # a smoke protocol: the closest budget it has
        select_budget = min(available, key=lambda b: abs(b - select_budget))
    scores = [(_mean_at(t, select_budget), _mean_at(t, larger)) for t in tables]
    best = max(range(len(scores)), key=lambda i: scores[i])
    budgets = [row["budget"] for row in tables[0]]
    lines = [
        "# NAS-Bench agents",
        "",
        f"Best found (mean, {reports[0]['metrics']['report']}) at a number of queries; "
        f"best agent = highest mean at {select_budget} queries.",
        "",
        "| searcher | " + " | ".join(f"@{b}" for b in budgets) + " |",
        "|" + "---|" * (1 + len(budgets)),
    ]

    def row(name: str, table: list[dict[str, Any]]) -> str:
        by = {r["budget"]: r for r in table}
        return (
            f"| {name} | "
            + " | ".join(
                f"{100 * by[b]['mean']:.2f}% [{100 * by[b]['ci_low']:.2f}, "
                f"{100 * by[b]['ci_high']:.2f}]"
                if b in by
                else "n/a"
                for b in budgets
            )
            + " |"
        )

    for i, table in enumerate(tables):
        seed = reports[i].get("experiment", {}).get("seed", i)
        lines.append(row(f"agent {i} (seed {seed}){' **best**' if i == best else ''}", table))
    for name, entry in reports[0]["searchers"].items():
        if name != AGENT_NAME:
            lines.append(row(name, entry["table"]))
    lines.append("")
    summary = {
        "best": best,
        "select_budget": select_budget,
        "scores": scores,
        "evaluations": list(evaluations),
        "tables": tables,
        "baselines": {k: v["table"] for k, v in reports[0]["searchers"].items() if k != AGENT_NAME},
    }
    plots = []
    for i, e in enumerate(evaluations):  # each agent's curves and histograms, side by side
        curves = [f"queries_{n}" for n in reports[i]["config"]["curve_lengths"]]
        for key in (*curves, "improvement_histograms"):
            src = storage.join(e, f"{key}.png")
            if storage.exists(src):
                name = f"agent{i}_{key}.png"
                storage.write_bytes(storage.join(output, name), storage.read_bytes(src))
                plots.append(name)
    summary["plots"] = plots
    if plots:
        lines += ["Plots: " + ", ".join(plots), ""]
    storage.write_bytes(storage.join(output, "report.md"), "\n".join(lines).encode())
    storage.write_json(storage.join(output, "aggregate.json"), summary)
    return summary


def _copy_tree(src: str, dst: str) -> None:
    if storage.is_gcs(src):
        raise ConfigError(
            "publishing reads the agent from a local folder",
            "run publish where the pipeline's artifacts are local (a KFP task)",
        )
    for root, _, files in os.walk(src):
        for f in files:
            path = os.path.join(root, f)
            storage.write_bytes(
                storage.join(dst, os.path.relpath(path, src).replace(os.sep, "/")),
                storage.read_bytes(path),
            )


def publish(
    agent_dir: str,
    evaluation_dir: str,
    registry: str,
    *,
    name: str = "nasbench101",
    version: str | None = None,
    surrogate: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Copy an agent, its surrogate and its evaluation under ``<registry>/<name>/<version>``."""
    from rachel.core.nasbench.policy import TrainedAgent

    if not _NAME.match(name):
        raise ConfigError(
            f"agent name {name!r} is not a lowercase identifier",
            "use letters, digits, '.', '_' and '-'",
        )
    agent = TrainedAgent.load(agent_dir)  # validates the artifact before anything is written
    version = version or time.strftime("v%Y%m%d-%H%M%S", time.gmtime())
    if not _NAME.match(version):
        raise ConfigError(
            f"version {version!r} is not a lowercase identifier", "use e.g. v1 or v20260101-120000"
        )
    base = storage.join(registry, name, version)
    agent.save(storage.join(base, "agent"))
    report = storage.read_json(storage.join(evaluation_dir, "report.json"))
    storage.write_json(storage.join(base, "evaluation", "report.json"), report)
    md = storage.join(evaluation_dir, "report.md")
    if storage.exists(md):
        storage.write_bytes(storage.join(base, "evaluation", "report.md"), storage.read_bytes(md))
    if surrogate and storage.exists(surrogate):
        storage.write_bytes(storage.join(base, "surrogate.json"), storage.read_bytes(surrogate))
    card = {
        "name": name,
        "version": version,
        "uri": base,
        "surrogate_fingerprint": (agent.meta.get("ground") or {}).get("surrogate_fingerprint"),
        "config": agent.config.to_json(),
        "training": {
            k: agent.meta.get(k)
            for k in (
                "env_steps",
                "updates",
                "train_seconds",
                "train_env_steps_per_second",
                "backend",
            )
        },
        "table": _table_of(report),
        "report_metric": report.get("metrics", {}).get("report"),
        **(extra or {}),
    }
    storage.write_json(storage.join(base, "card.json"), card)
    storage.write_json(storage.join(registry, name, "latest.json"), {"version": version})
    return card


def resolve_agent(uri: str) -> str:
    """The agent folder behind a registry name (latest), a registry version or an agent."""
    uri = str(uri).rstrip("/")
    if storage.exists(storage.join(uri, "agent.json")):
        return uri
    if storage.exists(storage.join(uri, "agent", "agent.json")):
        return storage.join(uri, "agent")
    latest = storage.join(uri, "latest.json")
    if storage.exists(latest):
        return resolve_agent(storage.join(uri, storage.read_json(latest)["version"]))
    raise ArtifactError(
        f"no agent at {uri}",
        "pass an agent folder, <registry>/<name> or <registry>/<name>/<version>",
    )


def surrogate_beside(agent_uri: str) -> str | None:
    """The surrogate published (or trained) next to an agent folder, if any."""
    parent = str(agent_uri).rstrip("/").rsplit("/", 1)[0]
    uri = storage.join(parent, "surrogate.json")
    return uri if storage.exists(uri) else None

"""``rachel nasbench …``: the NAS-Bench-101 toolkit from the command line.

``train-agent`` trains the Ape-X search agent (every :class:`AgentConfig` field is a flag,
derived from the dataclass: ``--gamma``, ``--max-neighbours``, ``--shaping none``, ...);
``evaluate --agent URI`` runs published or trained agents against the baselines on any table;
``pipeline compile|run|submit`` builds and runs the NAS-Bench Kubeflow pipeline.  Nothing here
imports TensorFlow or kfp until a command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from typing import Any

from rachel.core.errors import ConfigError
from rachel.core.nasbench.agent import AgentConfig


# ------------------------------------------------------------------ agent settings
def _parse_value(field: dataclasses.Field, text: str) -> Any:
    default = field.default
    if text.lower() in ("none", "null", "off") and (default is None or field.name == "shaping"):
        return None
    try:
        if isinstance(default, bool):
            return text.lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float) or default is None:
            return float(text)
    except ValueError:
        raise ConfigError(
            f"--{field.name.replace('_', '-')} {text!r} is not a number",
            f"{field.metadata.get('help', '')}",
        ) from None
    return text


_SHARED = ("seed",)


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per AgentConfig field (name, default and help from the dataclass)."""
    g = parser.add_argument_group("agent and Ape-X settings (defaults: the paper's)")
    for f in dataclasses.fields(AgentConfig):
        if f.name in _SHARED:
            continue  # --seed seeds the ground and the agent together
        g.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f"agent_{f.name}",
            default=None,
            metavar="V",
            help=f"{f.metadata.get('help', '')} (default {f.default})",
        )


def agent_config_from_args(
    args: argparse.Namespace, base: AgentConfig | None = None
) -> AgentConfig:
    values = {}
    for f in dataclasses.fields(AgentConfig):
        text = getattr(args, f"agent_{f.name}", None)
        if text is not None:
            values[f.name] = _parse_value(f, str(text))
    return (base or AgentConfig()).replace(**values)


def parse_agent_settings(pairs: Sequence[str], base: AgentConfig | None = None) -> AgentConfig:
    """``["latent=64", "shaping=none"]`` -> AgentConfig (for the benchmark and --set)."""
    fields = {f.name: f for f in dataclasses.fields(AgentConfig)}
    values = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields:
            raise ConfigError(
                f"bad agent setting {pair!r}", f"write KEY=VALUE with KEY one of {sorted(fields)}"
            )
        values[key] = _parse_value(fields[key], text.strip())
    return (base or AgentConfig()).replace(**values)


TABLE_HELP = (
    "Parquet table, local or gs:// (default: $RACHEL_NASBENCH101_TABLE, else "
    "../shared/data/nasbench101/nasbench101_108.parquet beside a source checkout)"
)


def _add_ground_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--table", help=TABLE_HELP)
    p.add_argument(
        "--estimator",
        default="auto",
        choices=("auto", "surrogate", "tabular", "real_subset"),
        help="auto: tabular when the table is complete, else the surrogate on the full graph",
    )
    p.add_argument(
        "--surrogate-models", type=int, default=1, help="XGBoost models in the surrogate ensemble"
    )
    p.add_argument(
        "--surrogate-penalty", type=float, default=0.0, help="score = mean - penalty x ensemble std"
    )
    p.add_argument(
        "--max-vertices", type=int, default=7, help="<7 restricts the space (smoke runs)"
    )
    p.add_argument("--seed", type=int, default=0)


def register(sub: Any) -> None:
    p = sub.add_parser("nasbench", help="NAS-Bench-101 tools: convert, surrogate, evaluate")
    nb = p.add_subparsers(dest="nasbench_command", metavar="TOOL", required=True)

    c = nb.add_parser("convert", help="official .tfrecord -> Parquet table (once, for fast loads)")
    c.add_argument("input", help="nasbench_only108.tfrecord or nasbench_full.tfrecord (path/gs://)")
    c.add_argument("output", help="the Parquet file to write (path/gs://)")
    c.set_defaults(handler=_convert)

    s = nb.add_parser("surrogate", help="fit the XGBoost surrogate; report held-out tau/rho/RMSE")
    s.add_argument("--table", help=TABLE_HELP)
    s.add_argument("--test-fraction", type=float, default=0.2)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--models", type=int, default=1, help="XGBoost models in the ensemble")
    s.add_argument(
        "--penalty", type=float, default=0.0, help="score = ensemble mean - penalty x ensemble std"
    )
    s.add_argument("--output", help="write the report JSON here")
    s.set_defaults(handler=_surrogate)

    e = nb.add_parser(
        "evaluate", help="run agents (--agent) and the baselines through the evaluation protocol"
    )
    _add_ground_arguments(e)
    e.add_argument(
        "--agent",
        action="append",
        default=[],
        metavar="URI",
        help="a trained or published agent folder (local or gs://); repeat for "
        "several agents (the protocol's agents axis)",
    )
    e.add_argument("--report-metric", default="auto", choices=("auto", "validation", "test"))
    e.add_argument(
        "--eval-epsilon",
        type=float,
        default=None,
        help="epsilon-random valid moves of the agents while searching "
        "(default: each agent's eval_epsilon, 0 = greedy)",
    )
    e.add_argument(
        "--searchers",
        default="random_search,random_walk,local_search",
        help="baselines to run beside the agents ('' for none)",
    )
    e.add_argument("--k-sets", type=int, default=2, help="sets of initial states (paper: 5)")
    e.add_argument(
        "--m-states", type=int, default=100, help="initial states per set (paper: 10000)"
    )
    e.add_argument("--resamples", type=int, default=5000, help="bootstrap resamples")
    e.add_argument("--output", required=True, help="folder for report.json, report.md, plots")
    e.set_defaults(handler=_evaluate)

    t = nb.add_parser(
        "train-agent",
        help="train the Ape-X search agent (resumes from the output's last checkpoint)",
    )
    _add_ground_arguments(t)
    t.add_argument("--output", required=True, help="folder (or gs://) for checkpoints/, agent/")
    t.add_argument("--no-resume", action="store_true", help="ignore existing checkpoints")
    add_agent_arguments(t)
    t.set_defaults(handler=_train_agent)

    _register_pipeline(nb)


# ------------------------------------------------------------------ the NAS-Bench pipeline
def _register_pipeline(nb: Any) -> None:
    p = nb.add_parser("pipeline", help="the NAS-Bench agent pipeline: compile, run, submit")
    pc = p.add_subparsers(dest="pipeline_command", metavar="ACTION", required=True)

    def shape(q: argparse.ArgumentParser) -> None:
        q.add_argument("--seeds", default="0,1", help="agents to train in parallel (their seeds)")
        q.add_argument(
            "--smoke",
            action="store_true",
            help="tiny defaults (seconds per step; for CI) instead of full scale",
        )
        q.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an agent setting baked into the defaults (repeatable)",
        )
        q.add_argument(
            "--gpu",
            action="store_true",
            help="a GPU learner with RACHEL's L4 placement (default: CPU)",
        )
        q.add_argument("--name", default=None, help="pipeline name")
        q.add_argument(
            "--image-registry", help="registry of the images (or $RACHEL_IMAGE_REGISTRY)"
        )
        q.add_argument("--image-tag", help="tag of the images (or $RACHEL_IMAGE_TAG)")

    def target(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--table",
            required=True,
            help="Parquet or .tfrecord table (path/gs://; gs:// for submit)",
        )
        q.add_argument(
            "--registry",
            required=True,
            help="registry URI to publish to (path/gs://; gs:// for submit)",
        )
        q.add_argument("--agent-name", default="nasbench101")
        q.add_argument("--version", default="", help="registry version (default: UTC time)")

    c = pc.add_parser("compile", help="write the pipeline IR YAML")
    shape(c)
    c.add_argument("--output", required=True, help="the YAML file to write (path/gs://)")
    c.set_defaults(handler=_pipeline_compile)

    r = pc.add_parser("run", help="run the pipeline here under kfp.local")
    shape(r)
    target(r)
    r.add_argument("--output", default="runs/nasbench-pipeline", help="local pipeline root")
    r.set_defaults(handler=_pipeline_run)

    u = pc.add_parser("submit", help="upload the pipeline to Kubeflow Pipelines and start a run")
    shape(u)
    target(u)
    u.add_argument("--host", required=True, help="KFP API endpoint, e.g. https://HOST/pipeline")
    u.add_argument("--namespace", default=None)
    u.add_argument("--experiment", default="rachel-nasbench")
    u.add_argument("--pipeline-root", help="gs://BUCKET/PREFIX for the run's artifacts")
    u.set_defaults(handler=_pipeline_submit)


def _pipeline_inputs(args: argparse.Namespace) -> tuple[list[int], Any, Any]:
    from rachel.pipelines.nasbench_pipeline import NASBENCH_PLACEMENT, NasBenchRun

    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            f"--seeds {args.seeds!r} is not a list of integers", "write e.g. --seeds 0,1,2,3,4"
        ) from None
    run = NasBenchRun.smoke() if args.smoke else NasBenchRun()
    if args.set:
        run = dataclasses.replace(run, agent=parse_agent_settings(args.set, run.agent))
    placement = NASBENCH_PLACEMENT.replace(gpu=True) if args.gpu else NASBENCH_PLACEMENT
    return seeds, run, placement


def _pipeline_bytes(args: argparse.Namespace) -> bytes:
    from rachel.components.settings import Images
    from rachel.pipelines.nasbench_pipeline import PIPELINE_NAME, compile_to_bytes

    seeds, run, placement = _pipeline_inputs(args)
    images = Images.from_env(args.image_registry, args.image_tag)
    return compile_to_bytes(seeds, run, placement, name=args.name or PIPELINE_NAME, images=images)


def _pipeline_compile(args: argparse.Namespace) -> int:
    from rachel.core import storage

    data = _pipeline_bytes(args)
    storage.write_bytes(args.output, data)
    print(
        f"compiled the NAS-Bench agent pipeline ({args.seeds} seeds) to {args.output} "
        f"({len(data):,} bytes)"
    )
    return 0


def _pipeline_run(args: argparse.Namespace) -> int:
    from rachel.pipelines.nasbench_pipeline import run_local

    seeds, run, _ = _pipeline_inputs(args)
    out = run_local(
        args.table,
        args.registry,
        args.output,
        seeds=seeds,
        run=run,
        agent_name=args.agent_name,
        version=args.version,
    )
    card = out["card"]
    print(f"run: {out['run_dir']} ({out['seconds']:.0f} s)")
    print(f"published: {card['uri']} (seed {card['seed']} of {card['chosen_from']})")
    return 0


def _pipeline_submit(args: argparse.Namespace) -> int:
    import tempfile
    import time
    from pathlib import Path

    from rachel.cli.pipeline_commands import _check_pipeline_root, _kfp_errors

    package = Path(tempfile.mkdtemp(prefix="rachel-nasbench-")) / "pipeline.yaml"
    package.write_bytes(_pipeline_bytes(args))  # validates before anything is contacted
    _check_pipeline_root(args.pipeline_root)
    import kfp

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    with _kfp_errors(args.host):
        client = kfp.Client(host=args.host, namespace=args.namespace or "kubeflow")
        run = client.create_run_from_pipeline_package(
            str(package),
            arguments={
                "table_uri": args.table,
                "registry_uri": args.registry,
                "agent_name": args.agent_name,
                "version": args.version,
            },
            run_name=f"nasbench-agent-{stamp}",
            experiment_name=args.experiment,
            namespace=args.namespace,
            pipeline_root=args.pipeline_root,
        )
    print(f"started run {run.run_id} in experiment {args.experiment}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from rachel.core.nasbench.table import convert_tfrecord_to_parquet

    summary = convert_tfrecord_to_parquet(args.input, args.output)
    print(
        f"wrote {args.output}: {summary.cells:,} cells from {summary.records:,} records "
        f"in {summary.seconds:.1f} s"
    )
    return 0


def _surrogate(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from rachel.core import storage
    from rachel.core.nasbench.estimators import evaluate_surrogate
    from rachel.core.nasbench.index import default_table_path
    from rachel.core.nasbench.table import BenchTable

    bench = BenchTable.load(args.table or str(default_table_path()))
    _, report = evaluate_surrogate(
        bench,
        test_fraction=args.test_fraction,
        seed=args.seed,
        n_jobs=1,
        n_models=args.models,
        penalty=args.penalty,
    )
    data = asdict(report)
    print(json.dumps(data, indent=2, default=str))
    if args.output:
        storage.write_json(args.output, data)
    return 0


def _settings(args: argparse.Namespace, **extra: Any) -> Any:
    from rachel.core.nasbench.experiment import ExperimentSettings

    return ExperimentSettings(
        table=args.table,
        estimator=args.estimator,
        max_vertices=args.max_vertices,
        surrogate_models=args.surrogate_models,
        surrogate_penalty=args.surrogate_penalty,
        seed=args.seed,
        **extra,
    )


def _evaluate(args: argparse.Namespace) -> int:
    from rachel.core.nasbench.evaluation import ProtocolConfig
    from rachel.core.nasbench.experiment import run_experiment

    settings = _settings(
        args,
        searchers=tuple(s.strip() for s in args.searchers.split(",") if s.strip()),
        report_metric=args.report_metric,
    )
    protocol = ProtocolConfig(
        k_sets=args.k_sets, m_states=args.m_states, n_resamples=args.resamples
    )
    if args.agent:
        from rachel.core.nasbench.training import evaluate_agents

        out = evaluate_agents(
            settings, protocol, args.agent, args.output, epsilon=args.eval_epsilon
        )
    else:
        out = run_experiment(settings, protocol, args.output)
    print(
        f"{out['cells']:,} cells, estimator {out['estimator']} ({out['mode']} mode), "
        f"search {out['search_seconds']:.1f} s"
    )
    for key, note in out["notes"].items():
        if key != "report_metric":
            print(f"note: {note}")
    for name, entry in out["summary"]["searchers"].items():
        cells = ", ".join(f"@{r['budget']} {100 * r['mean']:.2f}%" for r in entry["table"])
        print(f"{name}: {cells}")
    print(f"report: {args.output}/report.md  ({', '.join(sorted(out['files']))})")
    return 0


def _train_agent(args: argparse.Namespace) -> int:
    from rachel.core.nasbench.training import train_agent

    config = agent_config_from_args(args).replace(seed=args.seed)
    settings = _settings(args, max_neighbours=config.max_neighbours)

    def progress(entry: dict[str, Any]) -> None:
        print(
            f"updates {entry['updates']:,}  env steps {entry['env_steps']:,}  "
            f"{entry['seconds']:.0f} s  loss {entry['loss']:.3g}  "
            f"train improvement {100 * entry.get('train_improvement', float('nan')):.2f} pts",
            flush=True,
        )

    out = train_agent(
        settings,
        config,
        args.output,
        resume=not args.no_resume,
        on_progress=progress,
        progress_every=1000,
    )
    for key, note in out["notes"].items():
        if key != "report_metric":
            print(f"note: {note}")
    print(
        f"trained {out['env_steps']:,} env steps, {out['updates']:,} updates in "
        f"{out['seconds']:.0f} s ({out['train_env_steps_per_second']:.0f} env steps/s)"
    )
    print(f"agent: {out['agent']}")
    return 0

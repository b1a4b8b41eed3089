"""Pipeline commands: ``rachel compile``, ``rachel run``, ``rachel submit``, ``rachel schedule``.

Exit codes (see :mod:`rachel.core.errors`), for CI/CD jobs: 0 success, 2 invalid arguments
or configuration, 3 a run that failed (or did not finish within ``--timeout``), 4 a Kubeflow
endpoint that cannot be reached or refuses us, 5 an artifact store (bucket) that cannot be
used.  Nothing here imports kfp or TensorFlow until a command runs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from rachel.cli.options import add_config_arguments, config_from_args

DEFAULT_RUN_OUTPUT = "runs/pipeline"
DEFAULT_EXPERIMENT = "rachel-nas"


# ------------------------------------------------------------------------- options
def _add_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pipeline")
    g.add_argument("--name", default=None, help="pipeline name (default: rachel-nas)")


def _add_registry_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("champion registry (the pipeline's promote-champion step)")
    g.add_argument(
        "--registry",
        default="",
        metavar="URI",
        help="registry (folder or gs://BUCKET/PREFIX): after the final evaluation "
        "the model replaces the champion only if it beats it on the same test split",
    )
    g.add_argument(
        "--promotion-margin",
        type=float,
        default=0.0,
        metavar="ACC",
        help="test-accuracy gain needed to replace the champion (default 0)",
    )


def _registry_params(args: argparse.Namespace, *, cluster: bool = False) -> dict[str, Any]:
    """The pipeline's registry parameters, when a registry is given (else its defaults).

    On a cluster (``submit``, ``schedule``) the registry must be ``gs://``: a local path
    would be the promote task's own ephemeral disk."""
    from rachel.core import storage
    from rachel.core.errors import ConfigError
    from rachel.core.registry import check_margin

    check_margin(args.promotion_margin)
    if not args.registry:
        if args.promotion_margin:
            raise ConfigError("--promotion-margin needs --registry", "pass --registry URI")
        return {}
    if cluster and not storage.is_gcs(args.registry):
        raise ConfigError(
            f"--registry {args.registry!r} is not a gs:// URI",
            "a cluster run needs a bucket: write it as gs://BUCKET/PREFIX",
        )
    return {"registry": args.registry, "promotion_margin": float(args.promotion_margin)}


def _add_placement_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("placement on Kubernetes (ignored by 'rachel run')")
    g.add_argument("--no-gpu", action="store_true", help="train on CPU nodes (no GPU request)")
    g.add_argument("--accelerator-type", help="resource name (default nvidia.com/gpu)")
    g.add_argument("--accelerator-limit", type=int, help="GPUs per training task (default 1)")
    g.add_argument(
        "--node-selector",
        metavar="KEY=VALUE",
        help="node selector of training tasks (default cloud.google.com/gke-accelerator=nvidia-l4)",
    )
    g.add_argument(
        "--toleration-key", help="taint key tolerated by training (default nvidia.com/gpu)"
    )
    g.add_argument("--cpu-request", help="CPU request of the light tasks (default 1)")
    g.add_argument("--memory-request", help="memory request of the light tasks (default 4G)")
    g.add_argument("--train-cpu-request", help="CPU request of training (default 4)")
    g.add_argument("--train-memory-request", help="memory request of training (default 16G)")
    g.add_argument(
        "--retries",
        type=int,
        dest="train_retries",
        help="retries of a training task, with exponential backoff (default 3)",
    )
    g.add_argument("--parallelism", type=int, help="candidates trained at once (default 4)")
    g.add_argument(
        "--image-registry",
        help="registry of the rachel-cpu/rachel-gpu images (or $RACHEL_IMAGE_REGISTRY)",
    )
    g.add_argument("--image-tag", help="tag of the images (or $RACHEL_IMAGE_TAG)")


def _add_endpoint_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Kubeflow Pipelines endpoint")
    g.add_argument("--host", required=True, help="KFP API endpoint, e.g. https://HOST/pipeline")
    g.add_argument("--namespace", default=None, help="Kubeflow profile namespace (multi-user)")
    g.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="experiment name")
    g.add_argument("--package", help="a compiled pipeline YAML (default: compile now)")
    g.add_argument(
        "--version",
        dest="version_name",
        help="pipeline version name (default: <image tag>-<UTC timestamp>)",
    )
    g.add_argument("--pipeline-root", help="gs://BUCKET/PREFIX for the run's artifacts")
    g.add_argument("--service-account", help="Kubernetes service account the run uses")
    g.add_argument(
        "--skip-root-check",
        action="store_true",
        help="do not check that the --pipeline-root bucket exists",
    )


def _images(args: argparse.Namespace) -> Any:
    """The images to compile in: the flags, else the environment, else the defaults."""
    from rachel.components.settings import Images

    return Images.from_env(getattr(args, "image_registry", None), getattr(args, "image_tag", None))


def _placement(args: argparse.Namespace) -> Any:
    from rachel.components.settings import DEFAULT_PLACEMENT
    from rachel.core.errors import ConfigError

    overrides: dict[str, Any] = {
        name: getattr(args, name, None)
        for name in (
            "accelerator_type",
            "accelerator_limit",
            "toleration_key",
            "cpu_request",
            "memory_request",
            "train_cpu_request",
            "train_memory_request",
            "train_retries",
            "parallelism",
        )
    }
    if getattr(args, "no_gpu", False):
        overrides["gpu"] = False
    if getattr(args, "node_selector", None):
        key, sep, value = args.node_selector.partition("=")
        if not sep or not key or not value:
            raise ConfigError(
                f"--node-selector {args.node_selector!r} is not KEY=VALUE",
                "write e.g. cloud.google.com/gke-accelerator=nvidia-l4",
            )
        overrides.update(node_selector_key=key, node_selector_value=value)
    return DEFAULT_PLACEMENT.replace(**overrides)


def _compile(args: argparse.Namespace, output: str) -> tuple[int, Any]:
    """Compile to ``output``; returns (bytes, config)."""
    config = config_from_args(args)
    images = _images(args)
    placement = _placement(args)
    from rachel.pipelines.compile import compile_pipeline
    from rachel.pipelines.rachel_pipeline import PIPELINE_NAME

    size = compile_pipeline(
        output,
        iterations=config.iterations,
        candidates=config.candidates,
        placement=placement,
        config=config,
        name=args.name or PIPELINE_NAME,
        images=images,
    )
    return size, config


# ------------------------------------------------------------------------- compile
def compile_command(args: argparse.Namespace) -> int:
    size, config = _compile(args, args.output)  # ConfigError when too large for etcd
    print(
        f"compiled {config.iterations} iteration(s) x {config.candidates} candidate(s) "
        f"to {args.output} ({size:,} bytes)"
    )
    return 0


# ----------------------------------------------------------------------------- run
def run_command(args: argparse.Namespace) -> int:
    from rachel.core import storage
    from rachel.core.errors import ConfigError

    config = config_from_args(args)  # validated before anything runs
    if storage.is_gcs(args.output):
        raise ConfigError(
            "kfp.local needs a local pipeline root",
            "pass a local --output folder; use 'rachel submit' for gs://",
        )
    placement = _placement(args)
    from rachel.core import run_clock
    from rachel.pipelines.local import run_local

    print(
        f"running the pipeline locally (kfp.local): {config.iterations} iteration(s) x "
        f"{config.candidates} candidate(s), pipeline root {args.output}",
        flush=True,
    )
    from rachel.cli.progress import printer

    plan = storage.read_json(args.plan) if args.plan else None
    result = run_local(
        config,
        args.output,
        placement=placement,
        cache=args.cache,
        on_event=printer(),
        verbose=args.verbose,
        plan=plan,
        params=_registry_params(args),
        started_at=time.time() - run_clock.process_age(),  # the budget is the command's
        **({"name": args.name} if args.name else {}),
    )
    m = result.metrics
    sys.stderr.flush()
    print(flush=True)  # kfp.local's log may leave the last line unterminated
    print(
        f"done in {result.seconds:.1f}s: test_accuracy {m['test_accuracy']:.4f}, macro_f1 "
        f"{m['macro_f1']:.4f}, params {m['params']:,}, "
        f"safety-net activations {m['safety_net_activations']}"
    )
    print(f"run:     {result.run_dir}" + ("" if args.verbose else "  (task logs: kfp-local.log)"))
    print(f"model:   {result.model_file} (SavedModel: {result.model_dir / 'saved_model'})")
    print(f"metrics: {result.metrics_file}  report: {result.model_dir / 'report.md'}")
    return 0


# ------------------------------------------------------------------ KFP endpoint
def _kfp_errors(host: str) -> Any:
    """A context manager turning connection / API errors into one-line RachelErrors."""
    import contextlib

    from rachel.core.errors import HostUnreachableError, PipelineRunError

    @contextlib.contextmanager
    def guard() -> Any:
        import urllib3
        from kfp_server_api.exceptions import ApiException

        try:
            yield
        except (urllib3.exceptions.HTTPError, ConnectionError, OSError) as err:
            reason = getattr(err, "reason", None) or err
            raise HostUnreachableError(
                f"cannot reach Kubeflow Pipelines at {host} ({_one_line(reason)})",
                "check --host, the network/port-forward, and that the KFP API is up",
            ) from None
        except ApiException as err:
            if err.status in (401, 403):
                raise HostUnreachableError(
                    f"Kubeflow Pipelines at {host} refused the request (HTTP {err.status})",
                    "check credentials and --namespace / the profile's RBAC",
                ) from None
            raise PipelineRunError(
                f"Kubeflow Pipelines at {host} answered HTTP {err.status}: "
                f"{_one_line(err.reason or err.body)}",
                "check the pipeline package and the endpoint's version",
            ) from None

    return guard()


def _one_line(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _check_pipeline_root(root: str | None) -> None:
    from rachel.core import storage
    from rachel.core.errors import ConfigError, StorageError

    if root is None:
        return
    if not storage.is_gcs(root):
        raise ConfigError(
            f"--pipeline-root {root!r} is not a gs:// URI", "write it as gs://BUCKET/PREFIX"
        )
    bucket, _ = storage.split_gcs(root)
    try:
        storage.exists(storage.join(f"gs://{bucket}", ".rachel-root-check"))
    except StorageError:
        raise
    except Exception as err:  # noqa: BLE001 - e.g. google.auth DefaultCredentialsError
        raise StorageError(
            f"cannot check bucket gs://{bucket}: {_one_line(err)}",
            "provide Google credentials (Workload Identity or "
            "GOOGLE_APPLICATION_CREDENTIALS) or pass --skip-root-check",
        ) from None


def _service_account_token() -> Any:
    """Credentials from the projected service-account token, when the pod has one.

    In a multi-user Kubeflow, the KFP API accepts a token of audience
    ``pipelines.kubeflow.org`` mounted at ``$KF_PIPELINES_SA_TOKEN_PATH`` (default
    ``/var/run/secrets/kubeflow/pipelines/token``; the CronJob in ``manifests/`` mounts it).
    kfp's client reads it only when no host is given, so it is passed explicitly; without
    the file (a laptop, a single-user install) no credentials are sent.
    """
    from kfp import client as kfp_client

    path = (
        os.environ.get(kfp_client.KF_PIPELINES_SA_TOKEN_ENV)
        or kfp_client.KF_PIPELINES_SA_TOKEN_PATH
    )
    if not Path(path).is_file():
        return None
    return kfp_client.ServiceAccountTokenVolumeCredentials(path)


def _pipeline_id(client: Any, name: str, namespace: str | None) -> str | None:
    """The id of pipeline ``name``: a namespaced one in a multi-user install (where
    ``upload_pipeline(namespace=...)`` put it, and where kfp's ``get_pipeline_id``, which
    lists only shared pipelines, does not look), else a shared one."""
    if not namespace:
        return client.get_pipeline_id(name)
    import json

    found = (
        client.list_pipelines(
            namespace=namespace,
            filter=json.dumps(
                {
                    "predicates": [
                        {"operation": 1, "key": "display_name", "stringValue": name}  # 1: EQUALS
                    ]
                }
            ),
        ).pipelines
        or []
    )
    if len(found) > 1:
        from rachel.core.errors import ConfigError

        raise ConfigError(
            f"{len(found)} pipelines named {name!r} in namespace {namespace}",
            "delete the duplicates or pass --name",
        )
    return found[0].pipeline_id if found else None


def _prepare(args: argparse.Namespace) -> tuple[Any, str, str, str]:
    """Validate, compile (or take --package), check the bucket, connect, upload a version.

    Returns (client, pipeline_id, version_id, experiment_id).  The run parameters are the
    package's compiled defaults (the configuration given on this command line when it
    compiles; the one compiled into --package otherwise).
    """
    from rachel.core.errors import ConfigError

    if args.package:
        if not Path(args.package).is_file():
            raise ConfigError(
                f"--package {args.package} does not exist",
                "run 'rachel compile --output FILE' first",
            )
        package = args.package
    else:
        package = str(Path(tempfile.mkdtemp(prefix="rachel-submit-")) / "pipeline.yaml")
        _compile(args, package)  # validates the configuration before anything is contacted
    if not args.skip_root_check:
        _check_pipeline_root(args.pipeline_root)
    name = args.name or _package_name(package)

    import kfp

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    version = args.version_name or f"{_images(args).tag}-{stamp}"
    with _kfp_errors(args.host):
        client = kfp.Client(
            host=args.host,
            namespace=args.namespace or "kubeflow",
            credentials=_service_account_token(),
        )
        pipeline_id = _pipeline_id(client, name, args.namespace)
        if pipeline_id is None:
            pipeline = client.upload_pipeline(package, pipeline_name=name, namespace=args.namespace)
            pipeline_id = pipeline.pipeline_id
            print(f"uploaded pipeline {name} ({pipeline_id})")
        pv = client.upload_pipeline_version(
            package, pipeline_version_name=version, pipeline_id=pipeline_id
        )
        print(f"uploaded pipeline version {version} ({pv.pipeline_version_id})")
        experiment = client.create_experiment(args.experiment, namespace=args.namespace)
    return client, pipeline_id, pv.pipeline_version_id, experiment.experiment_id


def _package_name(package: str) -> str:
    import yaml

    from rachel.core.errors import ConfigError

    try:
        with open(package) as fh:
            doc = next(iter(yaml.safe_load_all(fh)))
        return str(doc["pipelineInfo"]["name"])
    except (OSError, yaml.YAMLError, StopIteration, KeyError, TypeError) as err:
        raise ConfigError(
            f"{package} is not a compiled KFP pipeline ({_one_line(err)})",
            "pass a file written by 'rachel compile'",
        ) from None


def submit_command(args: argparse.Namespace) -> int:
    from rachel.core.errors import PipelineRunError

    params = _registry_params(args, cluster=True)  # before anything is contacted
    client, pipeline_id, version_id, experiment_id = _prepare(args)
    job = args.run_name or f"rachel-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    with _kfp_errors(args.host):
        run = client.run_pipeline(
            experiment_id=experiment_id,
            job_name=job,
            pipeline_id=pipeline_id,
            version_id=version_id,
            pipeline_root=args.pipeline_root,
            service_account=args.service_account,
            params=params or None,
        )
    print(f"started run {job} ({run.run_id}) in experiment {args.experiment}")
    if not args.wait:
        return 0
    with _kfp_errors(args.host):
        try:
            finished = client.wait_for_run_completion(run.run_id, timeout=args.timeout)
        except TimeoutError:
            raise PipelineRunError(
                f"run {run.run_id} did not finish within {args.timeout}s",
                "raise --timeout or follow it in the KFP UI",
            ) from None
    state = str(getattr(finished, "state", "UNKNOWN")).upper()
    if state != "SUCCEEDED":
        raise PipelineRunError(
            f"run {run.run_id} finished in state {state}",
            "open the run in the KFP UI for the failing task's log",
        )
    print(f"run {run.run_id} succeeded")
    return 0


def normalise_cron(expr: str) -> str:
    """KFP's scheduler takes 6 fields (seconds first); accept the usual 5 and prepend ``0``."""
    from rachel.core.errors import ConfigError

    fields = expr.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6 or not all(re.fullmatch(r"[0-9*/,\-?A-Za-z]+", f) for f in fields):
        raise ConfigError(
            f"--cron {expr!r} is not a cron expression",
            "write 5 fields (minute hour day month weekday), e.g. '0 3 * * 1'",
        )
    return " ".join(fields)


def schedule_command(args: argparse.Namespace) -> int:
    cron = normalise_cron(args.cron)  # invalid arguments fail before anything is contacted
    params = _registry_params(args, cluster=True)
    client, pipeline_id, version_id, experiment_id = _prepare(args)
    job = args.job_name or f"rachel-weekly-{version_id[:8]}"
    with _kfp_errors(args.host):
        recurring = client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=job,
            cron_expression=cron,
            max_concurrency=1,
            no_catchup=True,
            pipeline_id=pipeline_id,
            version_id=version_id,
            enabled=True,
            pipeline_root=args.pipeline_root,
            service_account=args.service_account,
            params=params or None,
        )
    print(f"scheduled recurring run {job} ({recurring.recurring_run_id}) with cron '{cron}'")
    return 0


# ------------------------------------------------------------------------ register
def register(sub: Any) -> None:
    # kfp.Client warns about server versions on every construction: not for CI logs
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"kfp(\.|$)")
    p = sub.add_parser(
        "compile",
        help="compile the Kubeflow pipeline to IR YAML",
        description="Compile the RACHEL Kubeflow pipeline (IR YAML) for "
        "--iterations unrolled iterations of --candidates candidates.",
    )
    add_config_arguments(p)
    _add_pipeline_arguments(p)
    _add_placement_arguments(p)
    p.add_argument("--output", required=True, help="IR YAML file (local path or gs://)")
    p.set_defaults(handler=compile_command)

    p = sub.add_parser(
        "run",
        help="run the Kubeflow pipeline locally (kfp.local)",
        description="Run the SAME Kubeflow pipeline on this machine with "
        "kfp.local (every step a subprocess) and print where the final model "
        "and metrics are.",
    )
    add_config_arguments(p)
    _add_pipeline_arguments(p)
    p.add_argument(
        "--output", default=DEFAULT_RUN_OUTPUT, help="local pipeline root (default: %(default)s)"
    )
    p.add_argument(
        "--cache",
        action="store_true",
        help="reuse cached results of deterministic steps from earlier runs",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="show kfp.local's task logs (default: kept in the run's kfp-local.log)",
    )
    p.add_argument(
        "--plan",
        metavar="FILE",
        help="replay the decisions of a recorded plan.json (from rachel search)",
    )
    _add_registry_arguments(p)
    p.set_defaults(handler=run_command, no_gpu=True)

    p = sub.add_parser(
        "submit",
        help="upload a pipeline version to KFP and start a run",
        description="Upload the pipeline (a new version) to a Kubeflow Pipelines "
        "endpoint and start a run. Exit codes: 0 ok, 2 bad arguments, 3 failed "
        "run, 4 unreachable host, 5 unusable bucket.",
    )
    add_config_arguments(p)
    _add_pipeline_arguments(p)
    _add_placement_arguments(p)
    _add_endpoint_arguments(p)
    _add_registry_arguments(p)
    p.add_argument("--run-name", help="run name (default: rachel-<UTC timestamp>)")
    p.add_argument("--wait", action="store_true", help="wait for the run; exit 3 if it fails")
    p.add_argument("--timeout", type=int, default=6 * 3600, help="seconds to wait (--wait)")
    p.set_defaults(handler=submit_command)

    p = sub.add_parser(
        "schedule",
        help="upload a pipeline version and create a recurring run",
        description="Upload the pipeline (a new version) and create a KFP "
        "recurring run on a cron schedule.",
    )
    add_config_arguments(p)
    _add_pipeline_arguments(p)
    _add_placement_arguments(p)
    _add_endpoint_arguments(p)
    _add_registry_arguments(p)
    p.add_argument(
        "--cron",
        required=True,
        help="cron schedule, 5 fields (UTC), e.g. '0 3 * * 1' = Mondays 03:00",
    )
    p.add_argument("--job-name", help="recurring run name")
    p.set_defaults(handler=schedule_command)

"""Kustomize base + GKE overlay: every manifest validates against the Kubernetes schema
(kubernetes-validate, strict), the overlay renders (``kubectl kustomize`` when installed,
else a merge of base and patches here), the values agree with the code, and the weekly
CronJob is what multi-user Kubeflow Pipelines needs: the profile namespace, a projected
token with KFP's audience where the kfp SDK reads it, the profile's ``default-editor`` for
the pipeline's pods, a Role for KFP's SubjectAccessReview checks, and no secrets."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kfp import client as kfp_client

from rachel.components import settings

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "manifests" / "base"
OVERLAY = REPO / "manifests" / "overlays" / "gke"
K8S_VERSION = "1.30.0"  # a GKE regular-channel version
EXPECTED_CPU_IMAGE = f"{settings.DEFAULT_REGISTRY}/{settings.CPU_IMAGE_NAME}:{settings.DEFAULT_TAG}"
# What KFP's API server expects in multi-user mode (backend/src/apiserver/common/const.go):
# the TokenReview audience, and the pipelines.kubeflow.org resources and verbs it asks
# Kubernetes about (SubjectAccessReview).  Recurring runs are "jobs" there.
KFP_TOKEN_AUDIENCE = "pipelines.kubeflow.org"
KFP_RBAC_RESOURCES = {"pipelines", "pipelines/versions", "experiments", "runs", "jobs"}
# the checks behind rachel submit/schedule's calls: find or upload the pipeline, upload a
# version (checked as "pipelines"), find or create the experiment, start a run (and --wait:
# get it), create a recurring run
KFP_CHECKS_OF_SUBMIT = {
    ("pipelines", "list"),
    ("pipelines", "get"),
    ("pipelines", "create"),
    ("experiments", "list"),
    ("experiments", "get"),
    ("experiments", "create"),
    ("runs", "create"),
    ("runs", "get"),
    ("jobs", "create"),
}
PROFILE_PIPELINE_SA = "default-editor"  # what Kubeflow profiles give the pipeline's pods


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kustomization(folder: Path) -> dict[str, Any]:
    (doc,) = _load(folder / "kustomization.yaml")
    return doc


def _merge(base: Any, patch: Any) -> Any:
    """Strategic-merge enough for our patches: maps merge, everything else replaces."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = _merge(base[key], value) if key in base else value
        return out
    return copy.deepcopy(patch)


def _render_in_python() -> list[dict[str, Any]]:
    base_k = _kustomization(BASE)
    docs = [d for r in base_k["resources"] for d in _load(BASE / r)]
    overlay = _kustomization(OVERLAY)
    for patch_ref in overlay.get("patches", []):
        (patch,) = _load(OVERLAY / patch_ref["path"])
        for i, doc in enumerate(docs):
            if (doc["kind"], doc["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"]):
                docs[i] = _merge(doc, patch)
    for doc in docs:
        doc["metadata"]["namespace"] = overlay["namespace"]
        for subject in doc.get("subjects", []):  # as kustomize does for ServiceAccounts
            if subject["kind"] == "ServiceAccount":
                subject["namespace"] = overlay["namespace"]
        for label in base_k.get("labels", []):
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    return docs


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl:
        done = subprocess.run(
            [kubectl, "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        docs = [d for d in yaml.safe_load_all(done.stdout) if d]
        python_docs = _render_in_python()
        key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
        assert sorted(map(key, docs)) == sorted(map(key, python_docs))
        return docs
    return _render_in_python()


def _by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


def _manifest_files() -> list[Path]:
    return sorted(p for p in (REPO / "manifests").rglob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("path", _manifest_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_manifest_validates(path: Path) -> None:
    for doc in _load(path):
        if path.parent == OVERLAY:  # a patch: validate it merged into its base resource
            (base,) = [
                d
                for r in _kustomization(BASE)["resources"]
                for d in _load(BASE / r)
                if (d["kind"], d["metadata"]["name"]) == (doc["kind"], doc["metadata"]["name"])
            ]
            doc = _merge(base, doc)
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_rendered_overlay_validates_and_is_namespaced(rendered: list[dict[str, Any]]) -> None:
    assert {d["kind"] for d in rendered} == {
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "CronJob",
    }
    for doc in rendered:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        assert doc["metadata"]["namespace"] == "rachel"
        assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "rachel-nas"


def test_workload_identity_and_bucket(rendered: list[dict[str, Any]]) -> None:
    docs = _by_kind(rendered)
    gsa = docs["ServiceAccount"]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert gsa.endswith(".iam.gserviceaccount.com") and "PROJECT_ID" not in gsa
    root = docs["ConfigMap"]["data"]["RACHEL_PIPELINE_ROOT"]
    assert root.startswith("gs://")


def test_role_is_least_privilege(rendered: list[dict[str, Any]]) -> None:
    docs = _by_kind(rendered)
    granted = set()
    for rule in docs["Role"]["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        assert not {"delete", "deletecollection", "update", "patch"} & set(rule["verbs"])
        # only KFP's own authorisation resources: nothing in the Kubernetes API itself
        assert rule["apiGroups"] == ["pipelines.kubeflow.org"]
        assert set(rule["resources"]) <= KFP_RBAC_RESOURCES, rule["resources"]
        granted |= {(r, v) for r in rule["resources"] for v in rule["verbs"]}
    assert KFP_CHECKS_OF_SUBMIT <= granted, KFP_CHECKS_OF_SUBMIT - granted
    binding = docs["RoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": docs["Role"]["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "namespace": "rachel", "name": _pod(docs)["serviceAccountName"]}
    ]
    assert binding["metadata"]["namespace"] == docs["CronJob"]["metadata"]["namespace"]


def test_configmap_images_and_placement_match_settings(rendered: list[dict[str, Any]]) -> None:
    data = _by_kind(rendered)["ConfigMap"]["data"]
    assert data["RACHEL_IMAGE_REGISTRY"] == settings.DEFAULT_REGISTRY
    assert data["RACHEL_IMAGE_TAG"] == settings.DEFAULT_TAG
    assert data["RACHEL_CPU_IMAGE"] == EXPECTED_CPU_IMAGE
    assert data["RACHEL_GPU_IMAGE"] == EXPECTED_CPU_IMAGE.replace(
        settings.CPU_IMAGE_NAME, settings.GPU_IMAGE_NAME
    )
    placement = settings.Placement()
    assert data["RACHEL_ACCELERATOR_TYPE"] == placement.accelerator_type
    assert data["RACHEL_ACCELERATOR_LIMIT"] == str(placement.accelerator_limit)
    assert data["RACHEL_NODE_SELECTOR"] == (
        f"{placement.node_selector_key}={placement.node_selector_value}"
    )
    assert data["RACHEL_TOLERATION_KEY"] == placement.toleration_key


def _pod(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def _submit_argv(docs: dict[str, dict[str, Any]], **replace: str) -> list[str]:
    """The container's command line as the shell runs it, from ``rachel`` on: the
    ConfigMap's values and the container's env (literal or downward API) substituted,
    ``replace`` overriding some (e.g. RACHEL_KFP_HOST pointing at a stand-in)."""
    cron = docs["CronJob"]
    (container,) = _pod(docs)["containers"]
    values = dict(docs["ConfigMap"]["data"])
    for var in container.get("env", []):
        if "value" in var:
            values[var["name"]] = var["value"]
        else:
            assert var["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}, var
            values[var["name"]] = cron["metadata"]["namespace"]
    values.update(replace)
    script = container["args"][0]
    for key, value in values.items():
        script = script.replace(f'"${key}"', shlex.quote(value))
    assert "$" not in script, f"unsubstituted variable in {script!r}"
    argv = shlex.split(script)
    assert argv[:3] == ["exec", "rachel", "submit"]
    return argv[1:]


def test_cronjob_runs_a_valid_rachel_submit_as_non_root(rendered: list[dict[str, Any]]) -> None:
    docs = _by_kind(rendered)
    cron = docs["CronJob"]["spec"]
    assert cron["schedule"] == "0 3 * * 1" and cron["concurrencyPolicy"] == "Forbid"
    pod = _pod(docs)
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == EXPECTED_CPU_IMAGE
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # the command line, with the ConfigMap's and env's values substituted, parses as
    # `rachel submit`
    argv = _submit_argv(docs)
    from rachel.cli.main import build_parser
    from rachel.cli.options import config_from_args
    from rachel.cli.pipeline_commands import _placement

    args = build_parser().parse_args(argv[1:])
    config = config_from_args(args)
    assert (config.iterations, config.candidates) == (10, 4)
    assert _placement(args) == settings.Placement()
    assert args.pipeline_root.startswith("gs://")
    # multi-user KFP: the profile namespace (the overlay's, read from the downward API, not
    # a second literal) and the profile's account for the pipeline's pods
    assert args.namespace == _kustomization(OVERLAY)["namespace"]
    assert {
        "name": "RACHEL_NAMESPACE",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
    } in container["env"]
    assert args.service_account == PROFILE_PIPELINE_SA
    assert args.host == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"


def test_kfp_token_volume_is_what_the_sdk_reads(rendered: list[dict[str, Any]]) -> None:
    pod = _pod(_by_kind(rendered))
    (container,) = pod["containers"]
    env = {var["name"]: var for var in container["env"]}
    # the variable the kfp SDK reads, set to the SDK's own default path
    path = PurePosixPath(env[kfp_client.KF_PIPELINES_SA_TOKEN_ENV]["value"])
    assert kfp_client.KF_PIPELINES_SA_TOKEN_ENV == "KF_PIPELINES_SA_TOKEN_PATH"
    assert path == PurePosixPath(kfp_client.KF_PIPELINES_SA_TOKEN_PATH)
    (mount,) = [
        m for m in container["volumeMounts"] if PurePosixPath(m["mountPath"]) in path.parents
    ]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    (source,) = volume["projected"]["sources"]
    token = source["serviceAccountToken"]
    assert token["audience"] == KFP_TOKEN_AUDIENCE
    assert PurePosixPath(mount["mountPath"]) / token["path"] == path
    assert token["expirationSeconds"] >= 600  # the kubelet's minimum; it rotates the file


def test_service_accounts_of_the_job_and_of_the_pipeline(rendered: list[dict[str, Any]]) -> None:
    docs = _by_kind(rendered)
    job_sa = docs["ServiceAccount"]["metadata"]["name"]
    assert _pod(docs)["serviceAccountName"] == job_sa == "rachel-pipeline-runner"
    assert docs["ConfigMap"]["data"]["RACHEL_PIPELINE_SERVICE_ACCOUNT"] == PROFILE_PIPELINE_SA
    # default-editor belongs to Kubeflow's profile controller: these manifests leave it alone
    assert PROFILE_PIPELINE_SA not in {d["metadata"]["name"] for d in rendered}


def test_cronjob_pod_stays_out_of_the_istio_mesh(rendered: list[dict[str, Any]]) -> None:
    template = _by_kind(rendered)["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]
    assert template["metadata"]["labels"]["sidecar.istio.io/inject"] == "false"


def _fake_kfp() -> Any:
    spec = importlib.util.spec_from_file_location(
        "fake_kfp", REPO / "tests" / "cli" / "fake_kfp.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for the compiled IR (compiling is tested in tests/pipelines): `rachel
    submit --package` reads only its pipeline name here; and no kfp context of this machine."""
    import kfp

    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "no-context.json"))
    path = tmp_path / "rachel.yaml"
    path.write_text("pipelineInfo:\n  name: rachel-nas\n")
    return path


def test_cronjob_command_submits_in_the_profile_namespace(
    rendered: list[dict[str, Any]], package: Path
) -> None:
    """The CronJob's own command line against a stand-in KFP API: what reaches KFP."""
    from rachel.cli.main import main

    docs = _by_kind(rendered)
    namespace = docs["CronJob"]["metadata"]["namespace"]
    with _fake_kfp().FakeKfp() as kfp:
        argv = _submit_argv(docs, RACHEL_KFP_HOST=kfp.host)
        assert main([*argv[1:], "--package", str(package), "--skip-root-check"]) == 0
        (upload,) = kfp.posted("pipelines/upload")
        (experiment,) = kfp.posted("experiments")
        (run,) = kfp.posted("runs")
    assert upload["query"]["namespace"] == [namespace]
    assert experiment["body"]["namespace"] == namespace
    assert experiment["body"]["display_name"] == docs["ConfigMap"]["data"]["RACHEL_EXPERIMENT"]
    assert run["body"]["service_account"] == PROFILE_PIPELINE_SA
    assert (
        run["body"]["runtime_config"]["pipeline_root"]
        == docs["ConfigMap"]["data"]["RACHEL_PIPELINE_ROOT"]
    )


class _RefusingKfp:
    """Answers every request 403, as multi-user KFP does without a valid identity, and
    records the Authorization header it got."""

    def __init__(self) -> None:
        self.authorization: list[str | None] = []
        seen = self.authorization

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _refuse(self) -> None:
                seen.append(self.headers.get("Authorization"))
                body = json.dumps({"error": "no identity", "code": 7}).encode()
                self.send_response(403)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _refuse  # noqa: N815 - http.server API

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _RefusingKfp:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_cronjob_command_sends_the_projected_token(
    rendered: list[dict[str, Any]], package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rachel.cli.main import main

    token = tmp_path / "token"
    token.write_text("header.payload.signature")
    docs = _by_kind(rendered)
    with _RefusingKfp() as kfp:
        argv = _submit_argv(docs, RACHEL_KFP_HOST=kfp.host)
        (container,) = _pod(docs)["containers"]
        for var in container["env"]:  # the container's environment, as the pod has it
            if "value" in var:
                monkeypatch.setenv(var["name"], var["value"])
        monkeypatch.setenv(kfp_client.KF_PIPELINES_SA_TOKEN_ENV, str(token))
        code = main([*argv[1:], "--package", str(package), "--skip-root-check"])
    assert code == 4  # refused, as the stand-in refuses everything
    assert kfp.authorization and kfp.authorization[0] == "Bearer header.payload.signature"


# ------------------------------------------------------------------------ no secrets
_SECRET_TEXT = {
    "PEM private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\."),
    "Google API key": re.compile(r"AIza[0-9A-Za-z_-]{35}"),
    "service-account key JSON": re.compile(r'"private_key(_id)?"\s*:'),
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
}
_BLOB = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)


def _strings(node: Any, where: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, f"{where}.{k}")]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _strings(v, f"{where}[{i}]")]
    return [(where, node)] if isinstance(node, str) else []


def _secret_findings(docs: list[dict[str, Any]], texts: dict[str, str]) -> list[str]:
    """Everything in ``docs`` (and the raw ``texts``, comments included) that looks like a
    secret or a key file; empty when clean."""
    found = []
    for name, text in texts.items():
        found += [f"{name}: {what}" for what, rx in _SECRET_TEXT.items() if rx.search(text)]
    for doc in docs:
        ref = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if doc.get("kind") == "Secret":
            found.append(f"{ref}: a Secret")
        for where, value in _strings(doc):
            found += [
                f"{ref}{where}: {what}" for what, rx in _SECRET_TEXT.items() if rx.search(value)
            ]
            for blob in _BLOB.findall(value):  # high-entropy: mixed case and digits
                if (
                    re.search("[a-z]", blob)
                    and re.search("[A-Z]", blob)
                    and re.search("[0-9]", blob)
                ):
                    found.append(f"{ref}{where}: a base64-like blob")
        for key in (doc.get("data") or {}) if doc.get("kind") == "ConfigMap" else ():
            if _SECRET_NAME.search(key):
                found.append(f"{ref}: ConfigMap key {key}")
        for where, node in _walk_dicts(doc):
            if "env" in node and isinstance(node["env"], list):
                for var in node["env"]:
                    literal = var.get("value")
                    if (
                        literal is not None
                        and _SECRET_NAME.search(var["name"])
                        and not (
                            literal.startswith("/var/run/secrets/")
                            and "CREDENTIAL" not in var["name"].upper()
                        )
                    ):
                        found.append(f"{ref}{where}: env {var['name']} has a literal value")
            for volume in node.get("volumes", []) if isinstance(node.get("volumes"), list) else []:
                if "secret" in volume:
                    found.append(f"{ref}{where}: volume {volume.get('name')} mounts a Secret")
    return found


def _walk_dicts(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    if isinstance(node, dict):
        out.append((where, node))
        for k, v in node.items():
            out += _walk_dicts(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _walk_dicts(v, f"{where}[{i}]")
    return out


def test_no_secret_like_literals(rendered: list[dict[str, Any]]) -> None:
    files = sorted((REPO / "manifests").rglob("*.yaml"))
    texts = {str(p.relative_to(REPO)): p.read_text() for p in files}
    raw = [d for p in files for d in _load(p)]
    assert _secret_findings(rendered + raw, texts) == []


def test_secret_scan_flags_planted_secrets() -> None:
    pem = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl"
    blob = "dGhpcyBpcyBub3QgYSByZWFsIGtleSBidXQgaXQgbG9va3MgbGlrZSBvbmU="
    docs = [
        {"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}},
        {
            "kind": "ConfigMap",
            "metadata": {"name": "c"},
            "data": {"KFP_TOKEN": "x", "NOTE": pem, "BLOB": blob},
        },
        {
            "kind": "Pod",
            "metadata": {"name": "p", "annotations": {"a": jwt}},
            "spec": {
                "volumes": [{"name": "key", "secret": {"secretName": "gsa-key"}}],
                "containers": [
                    {
                        "name": "c",
                        "env": [
                            {
                                "name": "GOOGLE_APPLICATION_CREDENTIALS",
                                "value": "/var/run/secrets/k.json",
                            },
                            {"name": "DB_PASSWORD", "value": "hunter2"},
                            {
                                "name": "KF_PIPELINES_SA_TOKEN_PATH",
                                "value": "/var/run/secrets/x/token",
                            },
                        ],
                    }
                ],
            },
        },
    ]
    found = _secret_findings(docs, {"notes.yaml": '{"private_key": "..."}'})
    for expected in (
        "a Secret",
        "ConfigMap key KFP_TOKEN",
        "PEM private key",
        "JWT",
        "base64-like blob",
        "mounts a Secret",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "DB_PASSWORD",
        "service-account key JSON",
    ):
        assert any(expected in f for f in found), (expected, found)
    assert not any("KF_PIPELINES_SA_TOKEN_PATH" in f for f in found)


def test_validator_rejects_a_broken_manifest() -> None:
    (cron,) = _load(BASE / "cronjob.yaml")
    cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = 3
    cron["spec"]["schedul"] = cron["spec"].pop("schedule")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cron, K8S_VERSION, strict=True)

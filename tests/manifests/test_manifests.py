"""Kustomize base + GKE overlay: every manifest validates against the Kubernetes schema
(kubernetes-validate, strict), the overlay renders (``kubectl kustomize`` when installed,
else a merge of base and patches here), and the values agree with the code."""

from __future__ import annotations

import copy
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from rachel.components import settings

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "manifests" / "base"
OVERLAY = REPO / "manifests" / "overlays" / "gke"
K8S_VERSION = "1.30.0"  # a GKE regular-channel version
EXPECTED_CPU_IMAGE = (f"{settings.DEFAULT_REGISTRY}/{settings.CPU_IMAGE_NAME}:"
                      f"{settings.DEFAULT_TAG}")


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
            if (doc["kind"], doc["metadata"]["name"]) == (patch["kind"],
                                                          patch["metadata"]["name"]):
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
        done = subprocess.run([kubectl, "kustomize", str(OVERLAY)], capture_output=True,
                              text=True, timeout=60)
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
            (base,) = [d for r in _kustomization(BASE)["resources"] for d in _load(BASE / r)
                       if (d["kind"], d["metadata"]["name"]) ==
                       (doc["kind"], doc["metadata"]["name"])]
            doc = _merge(base, doc)
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_rendered_overlay_validates_and_is_namespaced(rendered: list[dict[str, Any]]) -> None:
    assert {d["kind"] for d in rendered} == {
        "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "CronJob"}
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
    for rule in docs["Role"]["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"]
        assert not {"delete", "deletecollection", "update", "patch"} & set(rule["verbs"])
        assert "secrets" not in rule["resources"] and "pods/exec" not in rule["resources"]
    binding = docs["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": docs["Role"]["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "namespace": "rachel",
                                    "name": docs["ServiceAccount"]["metadata"]["name"]}]


def test_configmap_images_and_placement_match_settings(rendered: list[dict[str, Any]]) -> None:
    data = _by_kind(rendered)["ConfigMap"]["data"]
    assert data["RACHEL_IMAGE_REGISTRY"] == settings.DEFAULT_REGISTRY
    assert data["RACHEL_IMAGE_TAG"] == settings.DEFAULT_TAG
    assert data["RACHEL_CPU_IMAGE"] == EXPECTED_CPU_IMAGE
    assert data["RACHEL_GPU_IMAGE"] == EXPECTED_CPU_IMAGE.replace(
        settings.CPU_IMAGE_NAME, settings.GPU_IMAGE_NAME)
    placement = settings.Placement()
    assert data["RACHEL_ACCELERATOR_TYPE"] == placement.accelerator_type
    assert data["RACHEL_ACCELERATOR_LIMIT"] == str(placement.accelerator_limit)
    assert data["RACHEL_NODE_SELECTOR"] == (f"{placement.node_selector_key}="
                                            f"{placement.node_selector_value}")
    assert data["RACHEL_TOLERATION_KEY"] == placement.toleration_key


def test_cronjob_runs_a_valid_rachel_submit_as_non_root(rendered: list[dict[str, Any]]) -> None:
    docs = _by_kind(rendered)
    cron = docs["CronJob"]["spec"]
    assert cron["schedule"] == "0 3 * * 1" and cron["concurrencyPolicy"] == "Forbid"
    pod = cron["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["image"] == EXPECTED_CPU_IMAGE
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # the command line, with the ConfigMap's values substituted, parses as `rachel submit`
    script = container["args"][0]
    for key, value in docs["ConfigMap"]["data"].items():
        script = script.replace(f'"${key}"', shlex.quote(value))
    argv = shlex.split(script)
    assert argv[:3] == ["exec", "rachel", "submit"]
    from rachel.cli.main import build_parser
    from rachel.cli.options import config_from_args
    from rachel.cli.pipeline_commands import _placement

    args = build_parser().parse_args(argv[2:])
    config = config_from_args(args)
    assert (config.iterations, config.candidates) == (10, 4)
    assert _placement(args) == settings.Placement()
    assert args.pipeline_root.startswith("gs://")


def test_validator_rejects_a_broken_manifest() -> None:
    (cron,) = _load(BASE / "cronjob.yaml")
    cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] \
        = 3
    cron["spec"]["schedul"] = cron["spec"].pop("schedule")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(cron, K8S_VERSION, strict=True)

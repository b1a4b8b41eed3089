"""Static checks of images/Dockerfile.{cpu,gpu} (no Docker engine here): pinned bases and
packages, a non-root user, this package installed, small build context, and image names
that agree with rachel/components/settings.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

from rachel.components import settings

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
DOCKERFILES = {"cpu": IMAGES / "Dockerfile.cpu", "gpu": IMAGES / "Dockerfile.gpu"}
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def pip_specs(rest: str) -> list[str]:
    """Package specs of the ``pip install`` commands in one RUN line."""
    specs = []
    for command in re.split(r"&&|;", rest):
        words = command.replace('"', " ").split()
        if words[:2] != ["pip", "install"]:
            continue
        skip = False
        for word in words[2:]:
            if skip:
                skip = False
            elif word in ("-r", "-c", "--requirement", "--constraint"):
                skip = True
            elif not word.startswith("-"):
                specs.append(word)
    return specs


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_base_image_pinned(kind: str) -> None:
    froms = [rest for op, rest in instructions(DOCKERFILES[kind]) if op == "FROM"]
    assert froms, "no FROM"
    for ref in froms:
        image = ref.split()[0]
        assert "@sha256:" in image or re.search(r":\d+(\.\d+){1,2}[\w.-]*$", image), image
        assert not image.endswith(":latest")


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_runs_as_non_root(kind: str) -> None:
    users = [rest for op, rest in instructions(DOCKERFILES[kind]) if op == "USER"]
    assert users, "no USER: the image would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_every_pip_install_is_pinned_and_package_installed(kind: str) -> None:
    steps = instructions(DOCKERFILES[kind])
    specs = [s for op, rest in steps if op == "RUN" for s in pip_specs(rest)]
    assert "." in specs, "the package itself is not installed"
    for spec in specs:
        if spec != ".":
            assert "==" in spec, f"unpinned: {spec}"
    tensorflow = [s for s in specs if s.startswith("tensorflow")]
    assert tensorflow == (
        ["tensorflow-cpu==2.21.0"] if kind == "cpu" else ["tensorflow[and-cuda]==2.21.0"]
    )
    copied = " ".join(rest for op, rest in steps if op == "COPY")
    for folder in PYPROJECT["tool"]["setuptools"]["package-dir"].values():
        top = folder.split("/")[0]
        assert re.search(rf"(^|\s){top}(\s|$)", copied), f"{top}/ is not copied"
    assert "pyproject.toml" in copied


def test_requirements_pinned_and_cover_pyproject() -> None:
    pinned = {}
    for line in (IMAGES / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pinned[req.name.lower()] = spec.version
    for dep in PYPROJECT["project"]["dependencies"]:
        req = Requirement(dep)
        if req.name.startswith("tensorflow"):
            assert req.specifier.contains("2.21.0")  # the images' TensorFlow
            continue
        assert req.name.lower() in pinned, f"{req.name} missing from images/requirements.txt"
        assert req.specifier.contains(pinned[req.name.lower()]), (req, pinned[req.name.lower()])


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [
        ln.strip()
        for ln in (REPO / ".dockerignore").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    assert lines[0] == "**"  # everything out, then only what the images copy
    allowed = {ln[1:].split("/")[0] for ln in lines if ln.startswith("!")}
    tops = {f.split("/")[0] for f in PYPROJECT["tool"]["setuptools"]["package-dir"].values()}
    assert tops | {"pyproject.toml", "README.md", "images"} == allowed


def test_image_names_agree_with_settings() -> None:
    for kind, path in DOCKERFILES.items():
        name = settings.CPU_IMAGE_NAME if kind == "cpu" else settings.GPU_IMAGE_NAME
        assert f"$RACHEL_IMAGE_REGISTRY/{name}:$RACHEL_IMAGE_TAG" in path.read_text()
    assert settings.CPU_IMAGE.rsplit(":", 1)[0].endswith("/" + settings.CPU_IMAGE_NAME)
    assert settings.GPU_IMAGE.rsplit(":", 1)[0].endswith("/" + settings.GPU_IMAGE_NAME)
    assert settings.DEFAULT_TAG != "latest"
    manifests = "\n".join(p.read_text() for p in (REPO / "manifests").rglob("*.yaml"))
    for image in re.findall(r"[\w.-]+(?:/[\w.-]+)+/rachel-(?:cpu|gpu):[\w.-]+", manifests):
        assert image in (
            f"{settings.DEFAULT_REGISTRY}/{settings.CPU_IMAGE_NAME}:{settings.DEFAULT_TAG}",
            f"{settings.DEFAULT_REGISTRY}/{settings.GPU_IMAGE_NAME}:{settings.DEFAULT_TAG}",
        ), image


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_transitive_dependencies_are_pinned_by_constraints(kind: str) -> None:
    """Every dependency install runs under images/constraints.txt, which pins every package
    of the tested environment (and agrees with requirements.txt)."""
    installs = [
        rest
        for op, rest in instructions(DOCKERFILES[kind])
        if op == "RUN" and "pip install" in rest and " . " not in f"{rest} "
    ]
    assert installs and all("-c /tmp/constraints.txt" in rest for rest in installs), installs
    pins = {}
    for line in (IMAGES / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep, f"not a pin: {line}"
            pins[name.lower().replace("_", "-")] = version
    assert len(pins) > 50  # the whole environment, not only the direct dependencies
    for line in (IMAGES / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert pins.get(name.lower().replace("_", "-")) == version, line

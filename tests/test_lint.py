"""The repository stays ruff-clean (lint rules in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    out = subprocess.run(
        [ruff, "check", "core", "components", "pipelines", "cli", "tests", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:]


def test_ruff_format_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    out = subprocess.run(
        [ruff, "format", "--check", "core", "components", "pipelines", "cli", "tests", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout[-3000:]


def _mypy(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(REPO / ".mypy_cache")],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_mypy_checks_the_real_package_and_is_clean():
    pytest.importorskip("mypy")
    out = _mypy(REPO)
    assert out.returncode == 0, out.stdout[-3000:]
    checked = int(out.stdout.split("no issues found in ")[1].split()[0])
    assert checked >= 70  # core, components, pipelines and cli, not one folder of them


def test_a_planted_type_error_fails_the_type_check(tmp_path):
    """In a copy of the tree, ``x: int = SearchConfig()`` (a rachel.* import, which mypy used
    to see as Any) must be reported."""
    pytest.importorskip("mypy")
    for name in ("core", "components", "pipelines", "cli", "typing"):
        shutil.copytree(
            REPO / name,
            tmp_path / name,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    planted = tmp_path / "cli" / "planted.py"
    planted.write_text("from rachel.core.config import SearchConfig\n\nx: int = SearchConfig()\n")
    out = _mypy(tmp_path)
    assert out.returncode != 0
    assert "planted.py:3: error: Incompatible types in assignment" in out.stdout, out.stdout[-2000:]

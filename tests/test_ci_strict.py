"""Under CI nothing skips (tests/conftest.py): a missing data set, a missing dev tool or a
``skipif`` fails the test instead, so a green CI run has run the data-backed tests.

Proved on tiny pytest sessions in subprocesses that load the suite's conftest, with
RACHEL_SHARED_DIR pointing at an empty folder: with ``CI=true`` they fail and say why;
without CI the same tests skip.  Expected failures (xfail) are left alone.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SUITE_CONFTEST = Path(__file__).resolve().with_name("conftest.py")
PLUGIN = "rachel_suite_conftest"  # the suite's conftest, loaded with -p under this name

TESTS = """
import pytest


def test_needs_fashion(fashion_files):
    assert fashion_files.exists()


def test_needs_a_tool():
    pytest.importorskip("rachel_no_such_tool")


@pytest.mark.skipif(True, reason="a skipif mark")
def test_marked():
    pass


@pytest.mark.xfail(strict=True, reason="an expected failure")
def test_expected_failure():
    assert False
"""

COLLECTION = """
import pytest

pytest.importorskip("rachel_no_such_tool")


def test_never_collected():
    pass
"""


@pytest.fixture(scope="module")
def session_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ci_strict")
    (root / "plugin").mkdir()
    (root / "plugin" / f"{PLUGIN}.py").symlink_to(SUITE_CONFTEST)
    (root / "empty_shared").mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_tiny.py").write_text(TESTS)
    (root / "test_collection.py").write_text(COLLECTION)
    return root


def _session(root: Path, ci: str | None, *files: str) -> tuple[int, str, dict[str, str]]:
    """Run pytest on ``files``; returns (exit code, output, {test name: outcome})."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"CI", "PYTEST_ADDOPTS", "PYTEST_PLUGINS"}
    }
    env.update(
        RACHEL_SHARED_DIR=str(root / "empty_shared"),
        PYTHONPATH=str(root / "plugin"),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
    )
    if ci is not None:
        env["CI"] = ci
    xml = root / f"report-{ci}-{len(files)}.xml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            PLUGIN,
            "-q",
            "-rA",
            "-c",
            str(root / "pytest.ini"),
            "--rootdir",
            str(root),
            "--junitxml",
            str(xml),
            *files,
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    outcomes = {}
    for case in ET.parse(xml).iter("testcase"):
        child = next(iter(case), None)
        outcome = "passed" if child is None else child.tag
        if child is not None and child.get("type") == "pytest.xfail":
            outcome = "xfailed"
        outcomes[case.get("name")] = outcome
    return done.returncode, done.stdout + done.stderr, outcomes


def test_without_ci_missing_data_and_tools_skip(session_dir: Path) -> None:
    code, out, outcomes = _session(session_dir, None, "test_tiny.py", "test_collection.py")
    assert code == 0, out
    assert outcomes == {
        "test_needs_fashion": "skipped",
        "test_needs_a_tool": "skipped",
        "test_marked": "skipped",
        "test_expected_failure": "xfailed",
        "test_collection": "skipped",
    }, out
    assert "real Fashion-MNIST not found" in out and "CI is set" not in out


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_missing_data_and_tools_fail(session_dir: Path, ci: str) -> None:
    code, out, outcomes = _session(session_dir, ci, "test_tiny.py")
    assert code == 1, out
    assert outcomes == {
        "test_needs_fashion": "error",
        "test_needs_a_tool": "failure",
        "test_marked": "error",
        "test_expected_failure": "xfailed",
    }, out
    assert "real Fashion-MNIST not found" in out
    assert "rachel_no_such_tool" in out and "a skipif mark" in out
    assert out.count("CI is set, so this fails instead of skipping") >= 3, out


def test_under_ci_a_module_level_skip_fails_collection(session_dir: Path) -> None:
    code, out, _ = _session(session_dir, "true", "test_collection.py")
    assert code != 0, out
    assert "rachel_no_such_tool" in out and "CI is set" in out, out


@pytest.mark.parametrize(
    ("value", "strict"),
    [
        (None, False),
        ("", False),
        ("0", False),
        ("false", False),
        ("False", False),
        ("true", True),
        ("1", True),
        ("yes", True),
    ],
)
def test_which_ci_values_are_strict(
    value: str | None, strict: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("suite_conftest_copy", SUITE_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert module.ci_strict() is strict

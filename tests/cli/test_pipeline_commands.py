"""``rachel compile/run/submit/schedule``: exit codes a CI job can act on, one-line errors,
help without TensorFlow.  Network checks use 127.0.0.1 only (a closed port, a local GCS
emulator)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rachel.cli.pipeline_commands import normalise_cron
from rachel.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def rachel(
    *args: str, env: dict[str, str] | None = None, timeout: int = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rachel.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket is


def one_line_error(done: subprocess.CompletedProcess) -> str:
    err = done.stderr.strip()
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("command", ["compile", "run", "submit", "schedule"])
def test_help_does_not_import_tensorflow(command: str) -> None:
    code = (
        "import sys\nfrom rachel.cli.main import main\n"
        f"try:\n    main([{command!r}, '--help'])\nexcept SystemExit as e:\n    code = e.code\n"
        "sys.exit(3 if 'tensorflow' in sys.modules or 'keras' in sys.modules else code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--output" in done.stdout or "--host" in done.stdout


def test_compile_writes_ir(tmp_path: Path) -> None:
    out = tmp_path / "p.yaml"
    done = rachel(
        "compile",
        "--output",
        str(out),
        "--iterations",
        "3",
        "--candidates",
        "4",
        "--node-selector",
        "cloud.google.com/gke-accelerator=nvidia-l4",
        "--image-tag",
        "ci-42",
    )
    assert done.returncode == 0, done.stderr
    assert f"({out.stat().st_size:,} bytes)" in done.stdout
    spec, platform = yaml.safe_load_all(out.read_text())
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert {i.rsplit(":", 1)[1] for i in images} == {"ci-42"}
    assert platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]


@pytest.mark.parametrize(
    "args",
    [
        ["compile", "--output", "x.yaml", "--iterations", "0"],
        ["compile", "--output", "x.yaml", "--node-selector", "no-equals-sign"],
        ["compile", "--output", "x.yaml", "--max-width", "9999"],
        ["compile", "--output", "x.yaml", "--image-tag", "latest"],
        ["compile", "--output", "x.yaml", "--train-memory-request", "lots"],
        ["run", "--output", "gs://bucket/root"],
        ["schedule", "--host", "http://127.0.0.1:9", "--cron", "every monday"],
        ["submit", "--host", "http://127.0.0.1:9", "--package", "missing.yaml"],
    ],
)
def test_invalid_arguments_exit_2_with_one_line(args: list[str], tmp_path: Path) -> None:
    done = rachel(*[a if a != "x.yaml" else str(tmp_path / a) for a in args])
    assert done.returncode == 2, done.stderr
    assert one_line_error(done).startswith(f"rachel {args[0]}: error:")


def test_argparse_errors_exit_2() -> None:
    assert rachel("submit").returncode == 2  # --host is required
    assert rachel("compile", "--output", "x", "--iterations", "two").returncode == 2


@pytest.mark.parametrize("command", [["submit"], ["schedule", "--cron", "0 3 * * 1"]])
def test_unreachable_host_exit_4_with_one_line(command: list[str], tmp_path: Path) -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    done = rachel(*command, "--host", host, "--iterations", "1")
    assert done.returncode == 4, done.stderr
    line = one_line_error(done)
    assert "cannot reach Kubeflow Pipelines" in line and host in line


def test_missing_bucket_exit_5_before_contacting_the_host(gcs_emulator: str) -> None:
    host = f"http://127.0.0.1:{closed_port()}"
    done = rachel(
        "submit",
        "--host",
        host,
        "--iterations",
        "1",
        "--pipeline-root",
        "gs://no-such-bucket/root",
        env={"STORAGE_EMULATOR_HOST": gcs_emulator},
    )
    assert done.returncode == 5, done.stderr
    line = one_line_error(done)
    assert "gs://no-such-bucket" in line and "does not exist" in line


def test_compile_to_missing_bucket_exit_5(gcs_emulator: str) -> None:
    done = rachel(
        "compile",
        "--output",
        "gs://no-such-bucket/p.yaml",
        env={"STORAGE_EMULATOR_HOST": gcs_emulator},
    )
    assert done.returncode == 5, done.stderr
    one_line_error(done)


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("0 3 * * 1", "0 0 3 * * 1"),
        ("30 0 3 * * MON", "30 0 3 * * MON"),
        ("*/15 * * * *", "0 */15 * * * *"),
    ],
)
def test_cron_takes_five_or_six_fields(expr: str, expected: str) -> None:
    assert normalise_cron(expr) == expected


@pytest.mark.parametrize("expr", ["", "0 3 * *", "a b c d e f g", "0 3 * * 1;rm"])
def test_bad_cron_rejected(expr: str) -> None:
    with pytest.raises(ConfigError):
        normalise_cron(expr)

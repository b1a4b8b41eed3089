"""``rachel search`` end to end on real Fashion-MNIST (tiny budget), and its bad-input paths."""

import json
import os
import subprocess
import sys

import pytest

from rachel.core.errors import ConfigError

TINY_ARGS = [
    "--budget",
    "smoke",
    "--train-size",
    "1000",
    "--val-size",
    "200",
    "--test-size",
    "300",
    "--iterations",
    "2",
    "--candidates",
    "2",
    "--max-new-layers",
    "2",
    "--max-width",
    "24",
    "--epochs",
    "3",
    "--seed",
    "3",
    "--time-budget",
    "0",
]


def _rachel(args, env_extra, timeout=600):
    env = {**os.environ, **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "rachel.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.mark.e2e
def test_search_end_to_end(fashion_data_dir, tmp_path):
    out = _rachel(
        ["search", *TINY_ARGS, "--output", str(tmp_path / "run")],
        {"RACHEL_DATA_DIR": str(fashion_data_dir)},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    # progress: iterations, candidates, rewards and the safety-net decision are shown
    for needle in ("iteration 0 candidate it000-c00", "iteration 1 rewards", "ensemble =", "done:"):
        assert needle in out.stdout
    final = tmp_path / "run" / "final"
    metrics = json.loads((final / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.2  # 10 classes: chance is 0.1
    assert metrics["iterations"] == 2 and metrics["candidates_trained"] == 4
    assert metrics["config"]["seed"] == 3 and metrics["seed"] == 3
    assert (final / "model.keras").is_file() and (
        final / "saved_model" / "saved_model.pb"
    ).is_file()
    events = [
        json.loads(x) for x in (tmp_path / "run" / "search_log.jsonl").read_text().splitlines()
    ]
    assert [e["event"] for e in events].count("iteration") == 2
    assert events[-1]["event"] == "final"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "imagenet21k"], "imagenet21k"),
        (["--iterations", "0"], "iterations"),
        (["--set", "max_width=999"], "max_width"),
        (["--set", "nonsense"], "KEY=VALUE"),
    ],
)
def test_bad_input_is_one_clear_line(args, message, tmp_path):
    out = _rachel(["search", *TINY_ARGS, *args, "--output", str(tmp_path / "run")], {}, timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in out.stderr
    assert not (tmp_path / "run" / "final").exists()


def test_missing_user_file_is_a_data_error(tmp_path):
    out = _rachel(
        ["search", "--dataset", str(tmp_path / "nope.npz"), "--output", str(tmp_path / "r")],
        {},
        timeout=120,
    )
    assert out.returncode == 2 and "nope.npz" in out.stderr and "Traceback" not in out.stderr


def test_help_does_not_import_tensorflow():
    code = (
        "import sys; from rachel.cli.main import build_parser; build_parser(); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False False"


@pytest.mark.e2e
def test_time_budget_stops_starting_iterations_and_the_plan_replays(fashion_files, tmp_path):
    from rachel.core.config import budget_config
    from rachel.core.search import run_search

    cfg = budget_config(
        "smoke",
        data_dir=str(fashion_files),
        train_size=300,
        val_size=100,
        test_size=100,
        iterations=5,
        candidates=1,
        max_new_layers=1,
        max_width=16,
        epochs=1,
        time_budget_seconds=1.0,
        parallel_candidates=1,
    ).replace(train_threads=None)
    metrics = run_search(cfg, tmp_path / "run")
    assert metrics["iterations"] == 1  # the first iteration always runs; the next would overrun
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan["budget_seconds"] == 1.0 and plan["seed"] == cfg.seed
    assert [(d["iteration"], d["action"]) for d in plan["decisions"]] == [(1, "stop")]

    # Replaying the recorded plan takes its decision, not a new measurement.
    replay = run_search(cfg, tmp_path / "replay", plan=plan)
    assert replay["test_accuracy"] == metrics["test_accuracy"]
    replayed = json.loads((tmp_path / "replay" / "plan.json").read_text())["decisions"]
    assert replayed[0]["replayed"] and replayed[0]["action"] == "stop"

    # A plan recorded for another configuration is refused before any work.
    with pytest.raises(ConfigError, match="another configuration"):
        run_search(cfg.replace(seed=cfg.seed + 1), tmp_path / "other", plan=plan)
    assert not (tmp_path / "other" / "splits.npz").exists()


def test_reused_output_folder_drops_the_earlier_runs_artifacts(fashion_files, tmp_path):
    from rachel.core.config import budget_config
    from rachel.core.search import run_search

    stale = tmp_path / "run" / "iterations" / "it007"
    stale.mkdir(parents=True)
    cfg = budget_config(
        "smoke", data_dir=str(fashion_files), train_size=300, val_size=100, test_size=100,
        iterations=1, candidates=1, max_new_layers=1, max_width=16, epochs=1,
        parallel_candidates=1,
    ).replace(train_threads=None)
    run_search(cfg, tmp_path / "run")
    assert not stale.exists()
    assert sorted(p.name for p in (tmp_path / "run" / "iterations").iterdir()) == ["it000"]

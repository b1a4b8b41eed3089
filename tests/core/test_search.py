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
    "--set",
    "finish_epochs=0",  # untimed, smoke's finish would train its 20 epochs
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


def _tiny_config(fashion_files, **overrides):
    from rachel.core.config import budget_config

    settings = dict(
        data_dir=str(fashion_files),
        train_size=300,
        val_size=100,
        test_size=100,
        iterations=1,
        candidates=1,
        max_new_layers=1,
        max_width=16,
        epochs=1,
        parallel_candidates=1,
        time_budget_seconds=None,
        finish_epochs=0,
    )
    return budget_config("smoke", **{**settings, **overrides}).replace(train_threads=None)


def test_an_output_of_another_run_or_foreign_files_is_refused_untouched(fashion_files, tmp_path):
    from rachel.core.search import run_search

    cfg = _tiny_config(fashion_files)
    run_search(cfg, tmp_path / "run")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match=r"different configuration \(seed: 0 there, 1 now"):
        run_search(cfg.replace(seed=1), tmp_path / "run")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before

    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine")
    for restart in (False, True):
        with pytest.raises(ConfigError, match="todo.txt"):
            run_search(cfg, foreign, restart=restart)
    assert [p.name for p in foreign.iterdir()] == ["todo.txt"]

    # --restart discards the earlier run and starts the new configuration from scratch.
    metrics = run_search(cfg.replace(seed=1), tmp_path / "run", restart=True)
    assert metrics["seed"] == 1
    events = (tmp_path / "run" / "search_log.jsonl").read_text()
    assert '"event": "resume"' not in events and events.count('"event": "plan"') == 1


def test_a_finished_run_is_returned_not_repeated(fashion_files, tmp_path):
    from rachel.core.search import run_search

    cfg = _tiny_config(fashion_files)
    first = run_search(cfg, tmp_path / "run")
    stamp = (tmp_path / "run" / "final" / "metrics.json").stat().st_mtime_ns
    seen = []
    again = run_search(cfg, tmp_path / "run", on_event=seen.append)
    assert again["test_accuracy"] == first["test_accuracy"]
    assert [e["event"] for e in seen] == ["finished_earlier"]
    assert (tmp_path / "run" / "final" / "metrics.json").stat().st_mtime_ns == stamp


def test_a_run_resumes_only_with_the_plan_and_controller_it_started_from(fashion_files, tmp_path):
    from rachel.core.run_folder import launch_record
    from rachel.core.search import run_search

    cfg = _tiny_config(fashion_files)
    first = run_search(cfg, tmp_path / "run")
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*")}
    with pytest.raises(
        ConfigError, match=r"started differently \(--plan none there, [0-9a-f]{16} now"
    ):
        run_search(cfg, tmp_path / "run", plan=plan)
    controller = tmp_path / "controller"
    controller.mkdir()
    (controller / "weights.bin").write_bytes(b"champion 1")
    with pytest.raises(ConfigError, match="--warm-start controller none there"):
        run_search(cfg, tmp_path / "run", initial_controller=controller)
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("*")} == before

    # The same plan resumes (here: returns the finished replay) ...
    replay = run_search(cfg, tmp_path / "replay", plan=plan)
    again = run_search(cfg, tmp_path / "replay", plan=plan)
    assert again["test_accuracy"] == replay["test_accuracy"] == first["test_accuracy"]
    # ... and a controller is known by its files, not by the temporary folder it was put in.
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "weights.bin").write_bytes(b"champion 1")
    assert launch_record(None, moved) == launch_record(None, controller)
    (moved / "weights.bin").write_bytes(b"champion 2")
    assert launch_record(None, moved) != launch_record(None, controller)


def test_bad_dataset_writes_nothing(tmp_path):
    import numpy as np

    good = tmp_path / "data.npz"
    rng = np.random.default_rng(0)
    np.savez_compressed(
        good,
        x_train=rng.integers(0, 255, (400, 8, 8), dtype=np.uint8),
        y_train=np.arange(400) % 2,
        x_test=np.zeros((50, 8, 8), np.uint8),
        y_test=np.arange(50) % 2,
    )
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-300])
    out = _rachel(
        ["search", *TINY_ARGS, "--dataset", str(truncated), "--output", str(tmp_path / "run")],
        {},
        timeout=120,
    )
    assert out.returncode == 2, out.stderr[-2000:]
    assert "truncated" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # not even config.json or search_log.jsonl


def _events(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


KILL_ARGS = [*TINY_ARGS, "--parallel-candidates", "1", "--quiet"]  # one candidate at a time


@pytest.mark.e2e
def test_killed_search_resumes_to_the_uninterrupted_result(fashion_data_dir, tmp_path):
    """SIGKILL in the middle of iteration 1 (iteration 0 complete, a candidate of iteration 1
    trained, the other usually mid-training); the same command then finishes the run without
    repeating completed work, and it ends exactly where an uninterrupted run of the same seed
    ends."""
    import signal
    import time

    env = {**os.environ, "RACHEL_DATA_DIR": str(fashion_data_dir)}
    args = [sys.executable, "-m", "rachel.cli", "search", *KILL_ARGS, "--output"]
    whole = _rachel(
        ["search", *KILL_ARGS, "--output", str(tmp_path / "whole")],
        {"RACHEL_DATA_DIR": str(fashion_data_dir)},
    )
    assert whole.returncode == 0, whole.stderr[-2000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [*args, str(killed)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if any(
                e["event"] == "candidate" and e["iteration"] == 1
                for e in _events(killed / "search_log.jsonl")
            ):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the search ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not (killed / "final").exists()
    assert (killed / "iterations" / "it000" / "ensemble").is_dir()
    assert not (killed / "iterations" / "it001" / "ensemble").exists()
    # The kill lands while it001-c01 trains, or just after it finished: both must resume.
    done = sorted(
        p.name
        for p in (killed / "iterations" / "it001" / "candidates").iterdir()
        if not p.name.startswith(".")
    )
    assert "it001-c00" in done

    resumed = _rachel(
        ["search", *KILL_ARGS, "--output", str(killed)], {"RACHEL_DATA_DIR": str(fashion_data_dir)}
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    events = _events(killed / "search_log.jsonl")
    resume = [e for e in events if e["event"] == "resume"]
    assert resume and resume[0]["completed_iterations"] == 1
    retrained = [
        e["candidate_id"] for e in events[events.index(resume[0]) :] if e["event"] == "candidate"
    ]
    assert retrained == [c for c in ("it001-c00", "it001-c01") if c not in done]  # no repeats

    a = json.loads((tmp_path / "whole" / "final" / "metrics.json").read_text())
    b = json.loads((killed / "final" / "metrics.json").read_text())
    for key in ("test_accuracy", "val_loss", "mixture_weights", "members", "confusion_matrix"):
        assert a[key] == b[key], key


def test_search_output_in_a_bucket_resumes_from_its_manifest(fashion_files, gcs_bucket):
    """--output gs://…: every completed step is published (objects, then its name in
    completed.json); a run whose last steps never reached the manifest resumes from the
    bucket alone and ends with the same result."""
    from rachel.core import storage
    from rachel.core.search import run_search

    cfg = _tiny_config(fashion_files, iterations=2)
    uri = f"{gcs_bucket}/runs/weekly"
    first = run_search(cfg, uri)
    names = storage.list_files(uri)
    assert {
        "config.json",
        "splits.npz",
        "completed.json",
        "search_log.jsonl",
        "final/metrics.json",
        "final/model.keras",
    } <= set(names)
    completed = storage.read_json(f"{uri}/completed.json")
    assert completed[-1] == "final" and "iterations/it001/ensemble" in completed

    # As if killed while publishing iteration 1's ensemble: its objects are half there and
    # the manifest does not list it, nor anything after it.
    cut = completed.index("iterations/it001/ensemble")
    storage.write_bytes(f"{uri}/completed.json", json.dumps(completed[:cut]).encode())
    storage.delete_tree(f"{uri}/final")
    storage.write_bytes(f"{uri}/iterations/it001/ensemble/ensemble.json", b'{"trunc')
    seen = []
    again = run_search(cfg, uri, on_event=seen.append)
    assert seen[0]["event"] == "resume" and seen[0]["completed_iterations"] == 1
    assert [e["event"] for e in seen].count("candidate") == 0  # its candidates were published
    for key in ("test_accuracy", "val_loss", "mixture_weights", "members"):
        assert again[key] == first[key], key
    assert storage.read_json(f"{uri}/completed.json")[-1] == "final"

    with pytest.raises(ConfigError, match="different configuration"):
        run_search(cfg.replace(seed=5), uri)


def test_rachel_search_applies_the_pipelines_stop_rules(fashion_files, tmp_path):
    """target_accuracy (and max_safety_net_activations) stop rachel search as they stop the
    pipeline: the same function decides (core/stop_rules.py)."""
    from rachel.core.search import run_search

    seen = []
    metrics = run_search(
        _tiny_config(fashion_files, iterations=3, target_accuracy=1e-9),
        tmp_path / "run",
        on_event=seen.append,
    )
    assert metrics["iterations"] == 1
    (stop,) = [e for e in seen if e["event"] == "stop"]
    assert stop["after_iteration"] == 0 and "target_accuracy" in stop["reason"]


def test_restart_with_a_bad_dataset_keeps_the_earlier_run(fashion_files, tmp_path):
    from rachel.core.errors import DataError
    from rachel.core.search import run_search

    cfg = _tiny_config(fashion_files)
    first = run_search(cfg, tmp_path / "run")
    with pytest.raises(DataError):
        run_search(
            cfg.replace(dataset=str(tmp_path / "missing.npz")), tmp_path / "run", restart=True
        )
    again = run_search(cfg, tmp_path / "run")  # still there, finished: returned as it is
    assert again["test_accuracy"] == first["test_accuracy"]


def test_a_bucket_run_whose_final_publish_was_cut_resumes_instead_of_finishing(
    fashion_files, gcs_bucket
):
    """final/metrics.json is uploaded before the rest of final/: only the manifest says the
    run finished."""
    from rachel.core import storage
    from rachel.core.search import run_search

    cfg = _tiny_config(fashion_files)
    uri = f"{gcs_bucket}/runs/cut"
    first = run_search(cfg, uri)
    completed = storage.read_json(f"{uri}/completed.json")
    storage.write_bytes(f"{uri}/completed.json", json.dumps(completed[:-1]).encode())
    storage.delete(f"{uri}/final/model.keras")  # metrics.json stays, as after a cut upload
    seen = []
    again = run_search(cfg, uri, on_event=seen.append)
    assert seen[0]["event"] == "resume"
    assert again["test_accuracy"] == first["test_accuracy"]
    assert storage.exists(f"{uri}/final/model.keras")

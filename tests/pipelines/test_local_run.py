"""End to end: ``rachel run`` executes the compiled pipeline under kfp.local on real
Fashion-MNIST (a tiny budget: 2 iterations x 2 candidates and a one-epoch finish, ~2 minutes
on 2 CPU cores)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

TINY = [
    "--train-size",
    "1500",
    "--val-size",
    "200",
    "--test-size",
    "300",
    "--epochs",
    "3",
    "--max-width",
    "32",
    "--max-new-layers",
    "1",
    "--iterations",
    "2",
    "--candidates",
    "2",
    "--set",
    "ensemble_epochs=2",
    "--set",
    "final_ensemble_epochs=5",
    "--set",
    "finish_epochs=1",
    "--time-budget",
    "0",
]


@pytest.mark.e2e
def test_rachel_run_trains_and_exports_a_loadable_model(
    tmp_path: Path, fashion_data_dir: Path
) -> None:
    env = {**os.environ, "RACHEL_DATA_DIR": str(fashion_data_dir)}
    output = tmp_path / "root"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "rachel.cli", "run", "--output", str(output), *TINY],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    print(f"rachel run (kfp.local, 2x2 tiny budget): {seconds:.1f}s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    lines = {
        line.split(":", 1)[0]: line.split(":", 1)[1].split()[0]
        for line in done.stdout.splitlines()
        if line.startswith(("model:", "metrics:", "run:"))
    }
    model_file, metrics_file, run_dir = (Path(lines[k]) for k in ("model", "metrics", "run"))
    assert model_file.is_file() and metrics_file.is_file()
    assert run_dir.parent == output.resolve() and (run_dir / "pipeline.yaml").is_file()

    # every candidate of every iteration was trained by its own ParallelFor task
    trained = sorted(run_dir.glob("for-loop-*/train-candidate*/model/metrics.json"))
    assert len(trained) == 4
    assert sorted(json.loads(p.read_text())["candidate_id"] for p in trained) == [
        "it000-c00",
        "it000-c01",
        "it001-c00",
        "it001-c01",
    ]

    # each iteration keeps its own ensemble and controller folders (none overwritten)
    ensembles = sorted(run_dir.glob("weigh-ensemble*/ensemble_out/ensemble.json"))
    assert [len(json.loads(p.read_text())["history"]) for p in ensembles] == [1, 2]
    assert len(list(run_dir.glob("update-controller*/controller_out/controller.json"))) == 2

    # the finish task continued the best subnetwork and the evaluation weighed it in
    (finished,) = run_dir.glob("finish-ensemble*/ensemble_out/ensemble.json")
    state = json.loads(finished.read_text())
    assert state["finish"]["candidate_id"] == "finish" and state["finish"]["epochs_run"] == 1
    (member,) = run_dir.glob("finish-ensemble*/member/metrics.json")
    assert json.loads(member.read_text())["warm_start"] is True
    assert "finish:" in done.stdout  # the progress line of the finish

    metrics = json.loads(metrics_file.read_text())
    assert metrics["iterations"] == 2 and metrics["candidates_trained"] == 5
    assert metrics["finish"]["from"] == state["finish"]["from"]
    assert metrics["test_examples"] == 300
    assert metrics["test_accuracy"] > 0.2  # chance is 0.1
    assert 0.0 < metrics["macro_f1"] <= 1.0

    # the exported model loads with plain Keras (no rachel import) and predicts probabilities
    check = (
        "import sys, numpy as np, keras\n"
        f"m = keras.saving.load_model({str(model_file)!r})\n"
        "p = m.predict(np.zeros((4, 28, 28, 1), np.uint8), verbose=0)\n"
        "assert p.shape == (4, 10) and np.allclose(p.sum(-1), 1, atol=1e-4), p\n"
        "assert not any(k.startswith('rachel') for k in sys.modules)\n"
        "print('LOADED')\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert loaded.returncode == 0 and "LOADED" in loaded.stdout, loaded.stderr[-2000:]

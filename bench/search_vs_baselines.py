"""RACHEL against what a user would run instead, at equal wall clock, on Fashion-MNIST.

Every method gets the official split (55,000 train / 5,000 validation carved with the
run's seed / the official 10,000 test images) and the same wall-clock budget, counted
from the start of its own process (data loading, search, final training and export
included), on this 2-core machine.  Methods:

* ``rachel``, ``rachel_random`` (the random-controller ablation), ``rachel_single``
  (``--no-ensemble``): ``rachel search`` with the preset of that budget;
* ``convnet``: the Keras example convnet (Conv32-MaxPool-Conv64-MaxPool-Flatten-
  Dropout(0.5)-Dense, Adam defaults, batch 128), trained epoch after epoch for the whole
  budget (the last epoch that fits);
* ``random_search``, ``hyperband``: keras-tuner over RACHEL's block space (depth up to
  iterations x new layers, widths up to the preset's cap) with RACHEL's training recipe
  (:func:`rachel.core.training.fit_model`); a tuner starts no trial that would likely end
  past the budget, and each trial gets what is left of the budget as its time limit (the
  trainer's probe picks the epochs that fit).  Hyperband's promoted trials continue from
  their parent's weights; with the smoke preset's 2 epochs it has a single bracket, so
  there it is random search with early termination only in name;
* ``autokeras``: AutoKeras 3.0.0 ``ImageClassifier`` (default search space), its trials
  stopped at the budget.

    python bench/search_vs_baselines.py --budgets 120 --seeds 0,1,2
    python bench/search_vs_baselines.py --budgets 600 \
        --methods rachel,rachel_random,convnet,random_search

Each run is a fresh subprocess (its peak memory is the summed RSS of its process tree,
sampled every 0.5 s).  Each finished run is appended to
``bench/results/search_vs_baselines.json`` and runs already there are skipped, so the
benchmark resumes after a kill and spans sessions.  The table gives mean +- std test
accuracy over the seeds, models trained, wall time and peak memory, and the RL-minus-random
difference with a 95 % t-interval over paired seeds.  Each run records the commit it
measured (``git rev-parse`` of this checkout, ``+dirty`` with uncommitted changes; outside a
git checkout, such as a ``git archive`` copy frozen for a long run, ``RACHEL_BENCH_COMMIT``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
PRESETS = {120: "smoke", 600: "small", 1800: "medium"}
METHODS = (
    "rachel",
    "rachel_random",
    "rachel_single",
    "convnet",
    "random_search",
    "hyperband",
    "autokeras",
)


# ------------------------------------------------------------------ worker side
def _splits(args):
    from rachel.core.data import load_dataset

    return load_dataset("fashion_mnist", data_dir=args.data_dir, seed=args.seed)


def _config(args, **overrides):
    from rachel.core.config import budget_config

    return budget_config(
        PRESETS[args.budget],
        seed=args.seed,
        data_dir=args.data_dir,
        time_budget_seconds=float(args.budget),
        **overrides,
    )


def run_rachel(args, started, **overrides):
    from rachel.core.planner import plan_summary
    from rachel.core.search import run_search

    config = _config(args, **overrides)
    with tempfile.TemporaryDirectory() as out:
        metrics = run_search(config, out)
        timeline = _timeline(Path(out) / "search_log.jsonl")
    finish = metrics.get("finish") or {}
    return {
        "test_accuracy": metrics["test_accuracy"],
        "models_trained": metrics["candidates_trained"],
        "members": len(metrics["members"]),
        "member_specs": {
            m["candidate_id"]: [m["spec"], round(m["weight"], 3)] for m in metrics["members"]
        },
        "iterations": metrics["iterations"],
        "config_fingerprint": plan_summary(config)["config_fingerprint"],
        "finish_epochs_run": finish.get("epochs_run"),
        "finish_seconds": finish.get("train_seconds"),
        "finish_accepted": finish.get("accepted"),
        "timeline": timeline,
    }


def _timeline(log: Path) -> list[dict]:
    """When each candidate, iteration and the finish ended (seconds since the search's
    start), with the figures that explain the run's wall time."""
    keys = (
        "candidate_id",
        "epochs_run",
        "train_seconds",
        "step_seconds",
        "time_limit",
        "schedule",
        "epoch_seconds",
        "best_epoch",
        "val_loss",
        "val_accuracy",
    )
    rows = []
    try:
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event["event"] in ("candidate", "iteration", "finish_plan", "finish", "final"):
                rows.append(
                    {"t": event["t"], "event": event["event"]}
                    | {k: event[k] for k in keys if event.get(k) is not None}
                )
    except (OSError, ValueError, KeyError):
        return []
    return rows


def run_convnet(args, started):
    import keras
    import numpy as np

    from rachel.core.input_pipeline import normalise

    splits = _splits(args)
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential(
        [
            keras.Input(splits.input_shape),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(splits.num_classes, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = normalise(splits.x_train), splits.y_train
    epochs, epoch_seconds = 0, 0.0
    while True:
        t0 = time.time()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        epoch_seconds = max(epoch_seconds, time.time() - t0)
        epochs += 1
        if time.time() - started + epoch_seconds + 5 > args.budget:
            break
    probs = model.predict(normalise(splits.x_test), batch_size=512, verbose=0)
    return {
        "test_accuracy": float((np.argmax(probs, -1) == splits.y_test).mean()),
        "models_trained": 1,
        "epochs": epochs,
    }


def run_tuner(args, started, kind):
    import keras
    import keras_tuner as kt
    import numpy as np

    from rachel.core import steps
    from rachel.core.architecture import decode
    from rachel.core.input_pipeline import normalise
    from rachel.core.search_space import ArchitectureSpec, BlockType, Layer
    from rachel.core.training import fit_model, probe_schedule

    config = _config(args)
    splits = _splits(args)
    max_depth = config.iterations * config.max_new_layers
    best: dict = {"val_loss": float("inf"), "model": None}  # kept here: no tuner checkpoints

    class BlockSpace(kt.HyperModel):
        def build(self, hp):
            depth = hp.Int("depth", 1, max_depth)
            layers = tuple(
                Layer(
                    BlockType(hp.Int(f"block_{i}", 0, 1)),
                    hp.Int(f"width_{i}", 16, config.max_width),
                )
                for i in range(depth)
            )
            return decode(
                ArchitectureSpec(layers),
                tuple(splits.input_shape),
                splits.num_classes,
                head=config.head,
                pool_first=config.pool_first,
                downsample_residual=config.downsample_residual,
            )

        def fit(self, hp, model, *fit_args, **kwargs):
            # The trial gets what is left of the budget as its time limit: the trainer then
            # probes and trains the epochs that fit, as RACHEL's candidates do.
            left = args.budget - (time.time() - started) - 10.0
            # Hyperband promotes a trial by loading its parent's weights (``initial_epoch``):
            # train only the epochs added, and write the checkpoint keras-tuner expects.
            epochs = kwargs.get("epochs", config.epochs) - kwargs.get("initial_epoch", 0)
            settings = dataclasses.replace(
                steps.training_settings(config, args.seed),
                epochs=max(1, epochs),
                threads=None,  # one process
                time_limit=max(1.0, left),
            )
            settings, _ = probe_schedule(lambda: keras.models.clone_model(model), splits, settings)
            _, metrics = fit_model(model, splits, settings)
            for callback in kwargs.get("callbacks", []):
                if hasattr(callback, "filepath"):  # keras-tuner's SaveBestEpoch
                    model.save_weights(callback.filepath)
            if metrics["val_loss"] < best["val_loss"]:
                best.update(val_loss=metrics["val_loss"], model=model)
            return metrics["val_loss"]

    common = dict(
        objective="val_loss",
        directory=tempfile.mkdtemp(),
        project_name=kind,
        seed=args.seed,
        overwrite=True,
    )
    if kind == "random_search":
        tuner = kt.RandomSearch(BlockSpace(), max_trials=10_000, **common)
    else:
        tuner = kt.Hyperband(
            BlockSpace(), max_epochs=config.epochs, factor=3, hyperband_iterations=100, **common
        )
    _limit_trials(tuner, started, args.budget)
    keras.utils.set_random_seed(args.seed)
    tuner.search(verbose=0)
    probs = best["model"].predict(normalise(splits.x_test), batch_size=512, verbose=0)
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    return {
        "test_accuracy": float((np.argmax(probs, -1) == splits.y_test).mean()),
        "models_trained": len(trials),
    }


def _limit_trials(tuner, started, budget):
    """Start no trial that would likely end past the budget (the mean trial so far)."""
    populate = tuner.oracle.populate_space
    starts: list[float] = []  # trials run one after another: all but the last have ended

    def timed_populate(trial_id):
        elapsed = time.time() - started
        if starts and elapsed + (elapsed - starts[0]) / len(starts) > budget:
            return {"status": "STOPPED", "values": None}
        starts.append(elapsed)
        return populate(trial_id)

    tuner.oracle.populate_space = timed_populate


def run_autokeras(args, started):
    import autokeras as ak
    import keras
    import numpy as np

    splits = _splits(args)

    class Deadline(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if time.time() - started > args.budget - 10:
                self.model.stop_training = True

    # AutoKeras 3.0.0 sizes its classification head with a NumPy integer, which Keras 3.15's
    # Dense(units=...) refuses ("expected a positive integer"): cast it before the head is
    # built (patched before the classifier creates its blocks).
    from autokeras.blocks import heads

    original_build = heads.ClassificationHead.build

    def build(self, hp, inputs=None):
        if self.shape is not None:
            self.shape = tuple(int(d) for d in self.shape)
        return original_build(self, hp, inputs)

    heads.ClassificationHead.build = build
    clf = ak.ImageClassifier(
        num_classes=int(splits.num_classes),
        max_trials=100,
        overwrite=True,
        seed=args.seed,
        directory=tempfile.mkdtemp(),
    )
    _limit_trials(clf.tuner, started, args.budget)
    clf.fit(
        splits.x_train,
        splits.y_train,
        validation_data=(splits.x_val, splits.y_val),
        epochs=10,
        callbacks=[Deadline()],
        verbose=0,
    )
    probs = clf.predict(splits.x_test, verbose=0)
    pred = np.asarray(probs).reshape(len(splits.y_test), -1)
    pred = pred.argmax(-1) if pred.shape[1] > 1 else pred[:, 0].astype(int)
    trials = [t for t in clf.tuner.oracle.trials.values() if t.status == "COMPLETED"]
    return {"test_accuracy": float((pred == splits.y_test).mean()), "models_trained": len(trials)}


def worker(args) -> None:
    started = time.time()
    runners = {
        "rachel": lambda: run_rachel(args, started),
        "rachel_random": lambda: run_rachel(args, started, controller="random"),
        "rachel_single": lambda: run_rachel(args, started, ensemble=False),
        "convnet": lambda: run_convnet(args, started),
        "random_search": lambda: run_tuner(args, started, "random_search"),
        "hyperband": lambda: run_tuner(args, started, "hyperband"),
        "autokeras": lambda: run_autokeras(args, started),
    }
    result = runners[args.worker]()
    result["wall_seconds"] = time.time() - started
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------ driver side
def code_commit() -> str:
    """The commit this benchmark's code is at, so a run can be told from one of other code."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(HERE.parent), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        code = ("core", "cli", "components", "pipelines", "bench")
        dirty = git("status", "--porcelain", "--", *code)
        return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("RACHEL_BENCH_COMMIT", "unknown")


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
    except psutil.Error:
        return 0


def run_one(method: str, budget: int, seed: int, data_dir: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--budget",
        str(budget),
        "--seed",
        str(seed),
        "--data-dir",
        data_dir,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    lines = [x for x in out.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {
            "error": err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}",
            "stderr_tail": err[-2000:],
            "peak_rss_mib": peak[0] / 2**20,
        }
    return {**json.loads(lines[-1][7:]), "peak_rss_mib": peak[0] / 2**20}


def summarise(runs: list[dict]) -> None:
    import numpy as np
    from scipy import stats
    from table import print_key_values

    budgets = sorted({r["budget"] for r in runs})
    for budget in budgets:
        rows = []
        for method in METHODS:
            every = [r for r in runs if r["budget"] == budget and r["method"] == method]
            sel = [r for r in every if "error" not in r]
            if len(sel) < len(every):
                rows.append((method, f"failed: {every[-1].get('error', '?')}"))
            if not sel:
                continue
            acc = np.array([r["test_accuracy"] for r in sel])
            over = sum(r["wall_seconds"] > 1.05 * budget for r in sel)
            rows.append(
                (
                    method,
                    (
                        f"{acc.mean():.4f} +- {acc.std(ddof=1) if len(acc) > 1 else 0:.4f} "
                        f"(n={len(acc)}), "
                        f"models {np.mean([r['models_trained'] for r in sel]):.1f}, "
                        f"wall {np.mean([r['wall_seconds'] for r in sel]):.0f} s, "
                        f"peak {max(r['peak_rss_mib'] for r in sel):.0f} MiB"
                        + (f", {over} run(s) OVER BUDGET" if over else "")
                    ),
                )
            )
        print(f"\nbudget {budget} s")
        print_key_values(rows, header="method")
        ok = [r for r in runs if "error" not in r and r["budget"] == budget]
        rl = {r["seed"]: r["test_accuracy"] for r in ok if r["method"] == "rachel"}
        rnd = {r["seed"]: r["test_accuracy"] for r in ok if r["method"] == "rachel_random"}
        paired = [rl[s] - rnd[s] for s in sorted(set(rl) & set(rnd))]
        if len(paired) >= 2:
            d = np.array(paired)
            half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
            print(
                f"RL - random: {d.mean():+.4f}, 95 % CI [{d.mean() - half:+.4f}, "
                f"{d.mean() + half:+.4f}] over {len(d)} paired seeds"
            )


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data-dir", default=str(HERE.parent / ".." / "shared" / "data" / "fashion-mnist")
    )
    p.add_argument("--budgets", default="120")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--output", default=str(HERE / "results" / "search_vs_baselines.json"))
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--budget", type=int, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return 0

    try:
        import psutil  # noqa: F401  (the peak-memory sampler of every run)
    except ImportError:
        print(
            "search_vs_baselines: psutil is not installed; install the bench extra: "
            "pip install -e '.[dev,bench]'",
            file=sys.stderr,
        )
        return 2
    from resumable import ResultsFile

    results = ResultsFile(
        args.output,
        {
            "machine": f"{os.cpu_count()} CPU cores",
            "presets": {str(k): v for k, v in PRESETS.items()},
        },
    )
    commit = code_commit()
    for budget in map(int, args.budgets.split(",")):
        for seed in map(int, args.seeds.split(",")):
            for method in args.methods.split(","):
                key = f"{method}|{budget}|{seed}"
                if results.has(key):
                    continue
                run = run_one(method, budget, seed, args.data_dir)
                results.add(
                    key,
                    {"method": method, "budget": budget, "seed": seed, "commit": commit, **run},
                )
                if "error" in run:
                    print(f"{key}: FAILED {run['error']}", flush=True)
                    continue
                print(
                    f"{key}: test {run['test_accuracy']:.4f}, "
                    f"{run['wall_seconds']:.0f} s, {run['peak_rss_mib']:.0f} MiB",
                    flush=True,
                )
    summarise(results.runs)
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Candidate training (section 2.5): from scratch, Adam with a decaying learning rate,
early stopping on ``val_loss`` with the best weights restored, sparse categorical
cross-entropy from logits.

Choices the paper leaves open, decided by measurement on this project's 2-core CPU
machine (Fashion-MNIST; the figures are in ``bench/results/recipe.json``, written by
``python bench/recipe.py``):

* **Schedule horizon.** The cosine decay runs over the epochs the candidate is *planned*
  to train (the plan's ``epochs``), so the last epoch trains at the floor rate (5 % of the
  initial one).  The earlier recipe decayed over ``epochs`` = 100 even when early stopping
  ended a run at epoch 30, which then still trained at ~80 % of its initial rate.
* **Early stopping.** Keras semantics: stop once ``val_loss`` has not improved by
  ``min_delta`` for ``patience`` epochs, then restore the weights of the epoch with the
  lowest ``val_loss``.  Not in the finish (``fill_time``), which keeps training to its
  deadline: its cosine is planned to end there, and the validation loss plateaus at the
  restart rate before it falls as the rate decays (600 s, seed 0: with patience 2 the
  finish stopped after 4 of its 8 planned epochs, 123 s of its 263-s limit unused).
* **The finish keeps its last epoch**, the end of its annealed schedule, not the epoch of
  lowest ``val_loss``.  Late in the finish the model begins to fit its training set (train
  loss 0.117, val loss 0.224), and the validation loss then moves by noise while the
  accuracy still climbs.  Measured at 600 s, seed 0, 4b2531f: epoch 6 had val loss 0.2230
  and val accuracy 0.9208, epoch 8 (the last) 0.2238 and 0.9302, and the lowest loss kept
  epoch 6, 0.9 points of validation accuracy lower.  A non-finite epoch is never kept.
  The loop is written out (one ``fit`` call per epoch) so the validation logits of the
  kept epoch come for free: they are the ensemble step's only input, and no second pass
  over the validation split is needed.
* **Input.** In-memory NumPy arrays (:mod:`rachel.core.input_pipeline`), augmented per
  epoch with a seeded generator: backend-neutral, and the speed of a plain
  ``model.fit(x, y)`` on the same arrays.
* **Threads.** ``threads`` pins the backend's intra-op threads (TensorFlow: must happen
  before its runtime starts, so a process that trains one candidate sets it first).  Two
  one-thread candidates side by side train more images per second than one two-thread
  candidate on 2 cores; the search decides how many run at once.

The trainer returns the model and its *validation logits*; the ensemble step needs only
those logits, so it never has to load a model to score a candidate.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from rachel.core.architecture import decode
from rachel.core.checkpoint import EpochCheckpoint, fingerprint
from rachel.core.devices import DeviceOptions, limit_threads, training_scope
from rachel.core.ensemble import cross_entropy
from rachel.core.input_pipeline import batches_per_epoch, epoch_arrays, normalise
from rachel.core.search_space import ArchitectureSpec

LR_FLOOR = 0.05  # the cosine schedule ends at 5 % of the initial learning rate
PREDICT_BATCH = 512


@dataclass(frozen=True)
class TrainingSettings:
    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 1e-3
    patience: int = 10
    min_delta: float = 1e-3
    seed: int = 0
    augmentation: str | None = None  # None = the dataset's kind (natural / digits / none)
    threads: int | None = None  # None = the backend's default
    train_examples: int | None = None  # None = the whole training split
    head: str = "flatten"  # see rachel.core.architecture
    pool_first: bool = False
    downsample_residual: bool = False
    time_limit: float | None = None  # seconds: probe, then train the epochs that fit
    fill_time: bool = False  # the finish: use the whole limit, re-planned after each epoch
    replans: tuple[dict[str, int], ...] = ()  # the recorded re-plans (replayed)
    cut: tuple[int, int] | None = None  # recorded (epoch, batches): that epoch ended early


@dataclass
class TrainResult:
    model: Any
    val_logits: np.ndarray
    metrics: dict[str, Any] = field(default_factory=dict)


def compile_for_training(
    model: Any,
    settings: TrainingSettings,
    steps_per_epoch: int,
    *,
    xla: bool = False,
    examples: int | None = None,
) -> Any:
    """Adam with a cosine decay over the planned epochs, cross-entropy from logits.  The
    decay is the re-plannable :class:`rachel.core.lr_schedule.ContinuedCosine` at the
    segment the recorded re-plans give, for every training: a live training that may
    re-plan and its replay must run the same float operations, re-planned or not."""
    import keras

    from rachel.core.lr_schedule import ContinuedCosine

    n = examples if examples is not None else steps_per_epoch * settings.batch_size
    start, rate, end, _, _ = schedule_segment(settings, n, settings.replans)
    schedule = ContinuedCosine(rate, LR_FLOOR * settings.learning_rate, start, end)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=xla,
    )
    return schedule


def cosine_rate(step: int, start_rate: float, floor: float, start: int, end: int) -> float:
    """:class:`rachel.core.lr_schedule.ContinuedCosine`'s rate at ``step``, in Python."""
    progress = min(1.0, max(0.0, (step - start) / float(max(start + 1, end) - start)))
    return floor + (start_rate - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def schedule_segment(
    settings: TrainingSettings, examples: int, replans: Any
) -> tuple[int, float, int, int, int]:
    """The finish's schedule after ``replans`` (each ``{"after", "epochs", "examples"}``:
    after epoch ``after``, train ``epochs`` in all over ``examples`` each), starting from
    ``settings.epochs`` over ``examples`` per epoch: the current
    cosine segment (start step, start rate, end step), the planned epochs and the examples
    per epoch.  Each re-plan starts its segment at the step and rate it was taken at, so
    the rate never jumps; the last segment ends at the floor rate."""
    rate, floor, batch = (
        settings.learning_rate,
        LR_FLOOR * settings.learning_rate,
        settings.batch_size,
    )
    epochs, per_epoch = settings.epochs, batches_per_epoch(examples, batch)
    start, start_rate, end, done = 0, rate, epochs * per_epoch, 0
    for replan in sorted(replans, key=lambda r: int(r["after"])):
        step = start + (int(replan["after"]) - done) * per_epoch
        start_rate = cosine_rate(step, start_rate, floor, start, end)
        epochs, examples, done = (
            int(replan["epochs"]),
            int(replan["examples"]),
            int(replan["after"]),
        )
        per_epoch = batches_per_epoch(examples, batch)
        start, end = step, step + (epochs - done) * per_epoch
    return start, start_rate, end, epochs, examples


# A re-plan keeps the plan while its epochs fit the time left (or overrun it by less than
# KEEP_SHORT of an epoch: a re-plan re-traces the train step, which costs more) and leave
# less than KEEP_SLACK of an epoch unused.
KEEP_SLACK, KEEP_SHORT = 0.25, 0.05


def replan_epochs(
    remaining: float,
    epoch_seconds: float,
    *,
    done: int,
    planned: int,
    examples: int,
    full_examples: int,
    val_examples: int,
    max_epochs: int,
    grow: bool = True,
) -> tuple[int, int] | None:
    """After epoch ``done`` of ``planned`` (each over ``examples``, the next one estimated at
    ``epoch_seconds``, everything included), with ``remaining`` seconds left: None to keep
    the plan, else the new (epochs in all, examples per epoch), through
    :func:`fit_schedule` at the measured speed; (``done``, ``examples``) stops now.

    Why: the probe's estimate of an epoch is off by ~10-30 % (host noise: the same epoch
    measured 73 s and 88 s in two runs), and the finish is a few long epochs, so an
    open-loop plan either overruns the budget or leaves most of an epoch unused (600 s,
    seed 2: 101 s left after a 1-epoch finish).

    ``grow=False`` (a candidate, which shares the machine and the iteration with others)
    only ever shrinks a plan that would overrun: two candidates planned from their probes
    for a 150-s limit trained 186 s and 218 s (600 s, seed 1, ce2b2b7), and the finish got
    145 s of the 240 s it keeps."""
    left = planned - done
    if left < 1 or epoch_seconds <= 0:
        return None  # the plan is done: its cosine has reached the floor
    if (left - KEEP_SHORT) * epoch_seconds <= remaining and (
        not grow or remaining < (left + KEEP_SLACK) * epoch_seconds
    ):
        return None
    per_example = epoch_seconds / ((examples + val_examples / 3.0) * EPOCH_OVERRUN)
    more, n = fit_schedule(
        remaining,
        full_examples if grow else examples,
        val_examples,
        per_example,
        max_epochs=max_epochs - done if grow else left,
        fill=grow,
    )
    cost = more * (n + val_examples / 3.0) * per_example * EPOCH_OVERRUN
    if more < 1 or cost > remaining * 1.05:  # not even the smallest epoch fits
        return done, examples
    if (done + more, n) == (planned, examples):
        return None
    return done + more, n


def epoch_estimate(timings: list[tuple[float, int]], examples: int, val_examples: int) -> float:
    """The next epoch's seconds over ``examples``, from this training's measured epochs
    (``timings``: (seconds, training examples) each, in order): per example, the larger of
    the last epoch's time and the mean of the last :data:`ESTIMATE_WINDOW` epochs (leaving
    out the first, which traced the train step, once there are others).

    Why: one epoch's time moves by ~±20 % on a shared host, and re-planning from the last
    epoch alone made the finish's plan flip back and forth (600 s, seed 0, ce2b2b7: 5, 6,
    8, 8, 7, 8, 8 epochs planned after its epochs 1-7, its last epoch cut to 30,920
    examples).  The mean alone lagged behind a slowing host: its finish overran its
    249-s limit by 19 s and the run its 600-s budget by 6 s (seed 0, 1033779).  The larger
    of the two shrinks a plan at the first slow epoch, as the last epoch alone did, and
    grows it only when the recent epochs agree."""

    def per_example(window: list[tuple[float, int]]) -> float:
        cost = sum(n + val_examples / 3.0 for _, n in window)
        return sum(t for t, _ in window) / cost

    window = (timings[1:] if len(timings) > 1 else timings)[-ESTIMATE_WINDOW:]
    slowest = max(per_example(window), per_example(timings[-1:]))
    return slowest * (examples + val_examples / 3.0)


ESTIMATE_WINDOW = 3


def training_subset(splits: Any, settings: TrainingSettings) -> tuple[np.ndarray, np.ndarray]:
    """The first ``train_examples`` training examples (the split is already stratified and
    shuffled by its seed), or all of them."""
    n = settings.train_examples
    if n is None or n >= len(splits.y_train):
        return splits.x_train, splits.y_train
    return splits.x_train[:n], splits.y_train[:n]


def fit_model(
    model: Any,
    splits: Any,
    settings: TrainingSettings,
    *,
    xla: bool = False,
    verbose: int = 0,
    checkpoint: EpochCheckpoint | None = None,
    deadline: float | None = None,
    max_epochs: int | None = None,
    max_examples: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Train a compiled-or-not ``model`` with the recipe; returns (val logits, metrics).

    Used by the RACHEL trainer and by the benchmark's other methods, so every method
    trains with exactly the same recipe.  With ``checkpoint`` every finished epoch is saved
    (:mod:`rachel.core.checkpoint`) and a run that finds one continues after its epoch with
    the same weights, optimizer slots, dropout and data-order RNG states and early-stopping
    counters: it ends exactly where an uninterrupted run ends.

    With a ``deadline`` (a ``time.perf_counter()`` value) the training re-plans its epochs
    after each one (:func:`replan_epochs`, from :func:`epoch_estimate`) to end by it: the
    finish (``settings.fill_time``) to fill the time it has, a candidate only to shrink a
    plan that would overrun.  The re-plans are recorded in the metrics (``replans``) and in
    the checkpoint, and given back as ``settings.replans`` (no deadline) they are replayed
    exactly.  A finish's re-plan trains at most ``max_epochs`` epochs over at most
    ``max_examples`` examples (default: the planned epochs, the whole training split).

    The deadline is also kept inside an epoch: once the time left is no more than the last
    validation pass took, the epoch ends after its current batch, is validated, and the
    training stops.  The cut (epoch, batches trained in it) is recorded (``cut``) and given
    back as ``settings.cut`` it is replayed exactly.  Why: one epoch's time doubled from one
    epoch to the next on this host (600 s, seed 0, 67d25ca: 22 s, 25 s, 42 s over the same
    examples), so no estimate made between epochs can keep a deadline; a finish's last
    epoch overran its limit by 7 s and the run its 600-s budget by 1 s.
    """
    x_train, y_train = training_subset(splits, settings)
    augmentation = settings.augmentation or splits.augmentation
    steps_per_epoch = batches_per_epoch(len(x_train), settings.batch_size)
    first_examples = len(x_train)
    rng = np.random.default_rng(settings.seed)
    x_val, y_val = normalise(splits.x_val), splits.y_val
    keys = ("loss", "accuracy", "val_loss", "val_accuracy")
    history: dict[str, list[float]] = {k: [] for k in keys}
    best_loss, best_epoch, best_weights, best_logits = math.inf, -1, None, None
    reference, wait, first, stopped = math.inf, 0, 0, False
    cut = settings.cut  # recorded: replayed; live: taken when the deadline comes mid-epoch
    replans = [dict(r) for r in settings.replans]  # recorded: replayed at their epochs
    saved = checkpoint.load() if checkpoint is not None else None
    done = 0 if saved is None else saved.epoch + 1
    if saved is not None:
        book = saved.state["training"]
        if not settings.replans:  # a live finish: the re-plans it had taken
            replans = [dict(r) for r in book.get("replans", [])]
        if deadline is not None and book.get("seconds_left") is not None:
            deadline = time.perf_counter() + float(book["seconds_left"])
    applied = [r for r in replans if int(r["after"]) <= done]
    schedule = compile_for_training(
        model,
        replace(settings, replans=tuple(applied)),
        steps_per_epoch,
        xla=xla,
        examples=first_examples,
    )
    epochs = settings.epochs
    if applied:
        _, _, _, epochs, n = schedule_segment(settings, first_examples, applied)
        x_train, y_train = training_subset(splits, replace(settings, train_examples=n))
    if saved is not None:
        model.optimizer.build(model.trainable_variables)
        _assign(model.variables, saved.arrays, "model")
        _assign(model.optimizer.variables, saved.arrays, "optimizer")
        rng.bit_generator.state = book["rng"]
        history = book["history"]
        best_loss, best_epoch, reference, wait = (
            book["best_loss"],
            book["best_epoch"],
            book["reference"],
            book["wait"],
        )
        best_weights = [saved.arrays[f"best/{i}"] for i in range(book["best_count"])]
        best_logits = saved.arrays["best_logits"] if "best_logits" in saved.arrays else None
        first, stopped = saved.epoch + 1, bool(book["stopped"])
        if cut is None and book.get("cut"):
            cut = (int(book["cut"][0]), int(book["cut"][1]))
    epoch, mark, trained = first, time.perf_counter(), 0
    timings: list[tuple[float, int]] = []  # (seconds, examples) of this call's epochs
    validation_seconds = 0.0  # the last validation pass: what a cut must leave
    while not stopped and epoch < epochs:
        x, y = epoch_arrays(
            x_train, y_train, rng, augmentation=augmentation, batch_size=settings.batch_size
        )
        bs = settings.batch_size
        if cut is not None and cut[0] == epoch:  # recorded: the epoch's first batches only
            x, y = x[: cut[1] * bs], y[: cut[1] * bs]
        ender = None
        if deadline is not None and cut is None:
            ender = _DeadlineCut(deadline - validation_seconds)
        fit = model.fit(
            x,
            y,
            batch_size=settings.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            verbose=verbose,
            callbacks=None if ender is None else [ender.callback()],
        )
        if ender is not None and ender.trained is not None and ender.trained < len(x) // bs:
            cut = (epoch, ender.trained)
        cut_here = cut is not None and cut[0] == epoch
        trained += ender.trained * bs if ender is not None and ender.trained else len(x)
        validation_started = time.perf_counter()
        logits = np.asarray(model.predict(x_val, batch_size=PREDICT_BATCH, verbose=0), np.float32)
        validation_seconds = time.perf_counter() - validation_started
        val_loss = cross_entropy(logits, y_val)
        history["loss"].append(float(fit.history["loss"][-1]))
        history["accuracy"].append(float(fit.history["accuracy"][-1]))
        history["val_loss"].append(val_loss)
        history["val_accuracy"].append(float((logits.argmax(-1) == y_val).mean()))
        if not math.isfinite(val_loss):
            break  # diverged: keep the best epoch so far (none: the caller sees NaN)
        if val_loss < best_loss or settings.fill_time:  # the finish keeps its last epoch
            best_loss, best_epoch, best_logits = val_loss, epoch, logits
            best_weights = model.get_weights()
        if val_loss < reference - settings.min_delta:
            reference, wait = val_loss, 0
        else:
            wait += 1
            stopped = wait >= settings.patience and not settings.fill_time
        epoch += 1
        timings.append((time.perf_counter() - mark, len(x_train)))
        stopped = stopped or cut_here  # a cut epoch is the last one
        if not stopped:
            # the recorded re-plan after this epoch, else the one the measured epochs ask for
            replan = next((r for r in replans if int(r["after"]) == epoch), None)
            if replan is None and deadline is not None:
                new = replan_epochs(
                    deadline - time.perf_counter(),
                    epoch_estimate(timings, len(x_train), len(y_val)),
                    done=epoch,
                    planned=epochs,
                    examples=len(x_train),
                    full_examples=max_examples or len(splits.y_train),
                    val_examples=len(y_val),
                    max_epochs=max(epochs, max_epochs or settings.epochs),
                    grow=settings.fill_time,
                )
                if new is not None:
                    replan = {"after": epoch, "epochs": new[0], "examples": new[1]}
            mark = time.perf_counter()
            if replan is not None:
                if replan not in replans:
                    replans.append(replan)
                taken = [r for r in replans if int(r["after"]) <= epoch]
                start, rate, end, epochs, n = schedule_segment(settings, first_examples, taken)
                schedule.set(rate, LR_FLOOR * settings.learning_rate, start, end)
                x_train, y_train = training_subset(splits, replace(settings, train_examples=n))
                model.make_train_function(force=True)
        if checkpoint is not None:
            _save_epoch(
                checkpoint,
                epoch - 1,
                model,
                rng,
                history,
                best_loss,
                best_epoch,
                best_weights,
                best_logits,
                reference,
                wait,
                stopped,
                replans=replans,
                seconds_left=None if deadline is None else deadline - time.perf_counter(),
                cut=cut,
            )
        if stopped:
            break
    if best_weights is None or best_logits is None:
        raise FloatingPointError("the validation loss was not finite at any epoch")
    if best_epoch != len(history["val_loss"]) - 1:
        model.set_weights(best_weights)
    metrics = {
        "epochs_run": len(history["val_loss"]),
        "best_epoch": best_epoch + 1,
        "val_loss": history["val_loss"][best_epoch],
        "val_accuracy": history["val_accuracy"][best_epoch],
        "train_accuracy": history["accuracy"][best_epoch],
        "train_examples": int(first_examples),
        "augmentation": augmentation,
        "replans": replans,
        "cut": None if cut is None else {"epoch": cut[0], "batches": cut[1]},
        "examples_trained": trained,  # in this call (a resumed run: since the resume)
        "epoch_seconds": [round(t, 2) for t, _ in timings],  # in this call, as measured
        "history": history,
    }
    return best_logits, metrics


class _DeadlineCut:
    """Ends an epoch once ``time.perf_counter()`` passes ``deadline``: the batch that finds
    it so is the epoch's last.  ``trained``: the batches the epoch then trained (None: it
    was not cut).  Checked as a batch begins, which Keras calls in line with training (a
    batch-end hook would turn off its asynchronous dispatch), so the count is exact and a
    replay trains exactly the epoch's first ``trained`` batches."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.trained: int | None = None

    def callback(self) -> Any:
        import keras

        cut = self

        class _Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
                if cut.trained is None and time.perf_counter() >= cut.deadline:
                    cut.trained = batch + 1  # this batch still trains, then the epoch ends
                    self.model.stop_training = True

        return _Callback()


def _assign(variables: Any, arrays: dict[str, np.ndarray], prefix: str) -> None:
    count = sum(1 for name in arrays if name.startswith(f"{prefix}/"))
    if count != len(variables):
        from rachel.core.errors import ArtifactError

        raise ArtifactError(
            f"checkpoint holds {count} {prefix} variables, the model has {len(variables)}",
            "delete the checkpoint to train from scratch",
        )
    for i, variable in enumerate(variables):
        variable.assign(arrays[f"{prefix}/{i}"])


def _save_epoch(
    checkpoint: EpochCheckpoint,
    epoch: int,
    model: Any,
    rng: Any,
    history: dict[str, list[float]],
    best_loss: float,
    best_epoch: int,
    best_weights: list[np.ndarray] | None,
    best_logits: np.ndarray | None,
    reference: float,
    wait: int,
    stopped: bool,
    *,
    replans: list[dict[str, int]],
    seconds_left: float | None,
    cut: tuple[int, int] | None = None,
) -> None:
    arrays = {f"model/{i}": np.asarray(v) for i, v in enumerate(model.variables)}
    slots = model.optimizer.variables
    arrays.update({f"optimizer/{i}": np.asarray(v) for i, v in enumerate(slots)})
    arrays.update({f"best/{i}": w for i, w in enumerate(best_weights or [])})
    if best_logits is not None:
        arrays["best_logits"] = best_logits
    checkpoint.save(
        epoch,
        {
            "training": {
                "rng": rng.bit_generator.state,
                "history": history,
                "best_loss": best_loss,
                "best_epoch": best_epoch,
                "best_count": len(best_weights or []),
                "reference": reference,
                "wait": wait,
                "stopped": stopped,
                "replans": replans,
                "seconds_left": seconds_left,
                "cut": None if cut is None else list(cut),
            }
        },
        arrays,
    )


# The probe times a short and a long fit of a throw-away copy (after one traced batch) and
# takes the difference: the per-batch cost without the fixed cost of a ``fit`` call.  Timing
# one fit of 6 batches instead over-estimated a 2-thread epoch by 1.34x (a pool -> conv64 ->
# res64 -> conv96 net: 97.7 s predicted, 73.0 s measured; two probes of the same net 25 %
# apart), which left a finish one epoch short (``bench/search_vs_baselines.py``, 600 s, seed
# 2: 1 epoch of 136 s planned against a 237 s limit).
PROBE_SHORT, PROBE_LONG = 3, 12  # batches
MIN_EXAMPLES = 1000
# An epoch costs more than its timed training steps (the per-epoch augmentation copy, the
# fit and predict calls, the checkpoint).  ``python bench/probe_accuracy.py`` (one epoch over
# 16,000 examples against this probe's estimate, conv64/res64/conv96 and conv32/conv64, 1 and
# 2 threads, two repeats each, a fresh process each): 0.74-1.54x, mean 1.16; 1 thread (the
# candidates) 0.86-1.32x, mean 1.08.  The same epoch took 24.3 s and 45.5 s in two runs: host
# noise this large is why the finish corrects its plan after every epoch
# (:func:`replan_epochs`); the candidates plan with this factor.
EPOCH_OVERRUN = 1.1


def fit_schedule(
    limit: float,
    examples: int,
    val_examples: int,
    per_example: float,
    *,
    max_epochs: int,
    fill: bool = False,
    min_epochs: int = 1,
) -> tuple[int, int]:
    """(epochs, examples) that fit ``limit`` seconds at ``per_example`` training seconds:
    the most epochs up to ``max_epochs`` over all ``examples``, each costing its training
    steps, its validation pass (inference, ~1/3 of a training step) and the
    :data:`EPOCH_OVERRUN`; when not even one fits, one epoch over fewer examples (at least
    :data:`MIN_EXAMPLES`).

    ``fill`` (the finish, which has the rest of the budget to itself): when 2.9 epochs fit,
    train 3 epochs over 97 % of the examples instead of 2 over all of them.  Seen on the
    ``small`` preset, seed 0 (one run each): with the floor the finish trained 2 epochs, the
    run ended 54 s early and returned test accuracy 0.909; an earlier run (planned without
    :data:`EPOCH_OVERRUN`) whose finish trained 3 epochs returned 0.923.

    ``min_epochs`` (with ``fill``): plan at least this many shorter epochs.  The finish's
    first plan takes 2, so that it re-plans at least once from a measured epoch: planned as
    one epoch over fewer examples (the probe predicted more than its 226-s limit for one),
    it trained one 161-s epoch and left 60 s unused (600 s, seed 1)."""
    validation = val_examples * per_example / 3.0
    epoch_seconds = (examples * per_example + validation) * EPOCH_OVERRUN
    fits = limit / epoch_seconds
    shorter = (limit / max(1, min_epochs) / EPOCH_OVERRUN - validation) / per_example
    if fill and fits < min_epochs <= max_epochs and shorter >= MIN_EXAMPLES:
        fits = float(min_epochs) - 0.5  # min_epochs shorter epochs
    if fill and 1.0 <= fits < max_epochs and fits != int(fits):
        epochs = math.ceil(fits)
        per_epoch = limit / epochs / EPOCH_OVERRUN - validation
        filled = int(min(examples, per_epoch // per_example))
        if filled >= MIN_EXAMPLES:  # else the floor below: fewer epochs over all examples
            return epochs, filled
    epochs = int(min(max_epochs, fits))
    if epochs >= 1:
        return epochs, examples
    fewer = int((limit / EPOCH_OVERRUN - validation) // per_example)
    return 1, int(min(examples, max(MIN_EXAMPLES, fewer)))


def probe_schedule(
    build: Any, splits: Any, settings: TrainingSettings, *, xla: bool = False
) -> tuple[TrainingSettings, dict[str, Any]]:
    """Time a few training steps of a throw-away copy of the model and return the settings
    with the most epochs (at most ``settings.epochs``), then examples, that fit
    ``settings.time_limit`` seconds, plus what was measured.

    The real model is built afresh from the seed afterwards, so the result depends only
    on the chosen schedule: a replayed plan passes that schedule and skips the probe.
    """
    probe_started = time.perf_counter()
    x_train, y_train = training_subset(splits, settings)
    batch = settings.batch_size
    model = build()
    compile_for_training(model, settings, batches_per_epoch(len(x_train), batch), xla=xla)
    n = min(len(x_train), batch * (1 + PROBE_SHORT + PROBE_LONG))
    x, y = normalise(x_train[:n]), y_train[:n]
    model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)  # trace
    short_end = batch * (1 + PROBE_SHORT)
    long_batches = min(PROBE_LONG, (n - short_end) // batch)  # whole batches: no retrace
    if long_batches > PROBE_SHORT:  # the long fit's extra batches cost what an epoch's do
        short = _timed_fit(model, x[batch:short_end], y[batch:short_end], batch)
        long_end = short_end + long_batches * batch
        long = _timed_fit(model, x[short_end:long_end], y[short_end:long_end], batch)
        per_example = (long - short) / ((long_batches - PROBE_SHORT) * batch)
        if per_example <= 0.0:  # timer noise on a very fast model
            per_example = (short + long) / ((PROBE_SHORT + long_batches) * batch)
    else:  # a tiny training split: one fit over its whole batches after the traced one
        lo = batch if n >= 2 * batch else 0  # (a partial batch would trace a second shape)
        hi = lo + ((n - lo) // batch) * batch if n - lo >= batch else n
        per_example = _timed_fit(model, x[lo:hi], y[lo:hi], batch) / (hi - lo)
    # the probe itself is part of the limit
    limit = float(settings.time_limit or math.inf) - (time.perf_counter() - probe_started)
    epochs, n = fit_schedule(
        limit,
        len(x_train),
        len(splits.y_val),
        per_example,
        max_epochs=settings.epochs,
        fill=settings.fill_time,
        min_epochs=2 if settings.fill_time else 1,
    )
    probe = {"seconds_per_example": per_example, "time_limit": settings.time_limit}
    return replace(settings, epochs=epochs, train_examples=n, time_limit=None), probe


def _timed_fit(model: Any, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    return time.perf_counter() - started


def train_candidate_model(
    spec: ArchitectureSpec,
    splits: Any,
    settings: TrainingSettings,
    devices: DeviceOptions,
    *,
    verbose: int = 0,
    checkpoint_uri: str | None = None,
    initial_weights: list[np.ndarray] | None = None,
) -> TrainResult:
    """Train ``spec`` on ``splits`` (a :class:`rachel.core.data.splits.DatasetSplits`).

    ``initial_weights``: start from these weights (a trained model of the same ``spec``:
    the finish, :mod:`rachel.core.finish`) instead of the seeded initialisation; the
    optimizer and the schedule start afresh (a warm restart).

    Keras draws initial weights and dropout masks from its global generator, so the
    candidate's own seed is set there right before the model is built; each candidate
    runs in its own process in the pipeline, and the seed is recorded in its metrics.

    ``checkpoint_uri``: where each finished epoch is saved; a training that finds its own
    checkpoint there (same architecture, recipe and data shape) continues from it, with the
    schedule the interrupted run had chosen (no new probe), and so ends where it would have.
    """
    limit_threads(settings.threads)
    import keras

    def build() -> Any:
        return decode(
            spec,
            tuple(splits.input_shape),
            splits.num_classes,
            head=settings.head,
            pool_first=settings.pool_first,
            downsample_residual=settings.downsample_residual,
        )

    started = time.perf_counter()
    deadline = None if settings.time_limit is None else started + settings.time_limit
    max_epochs, max_examples = settings.epochs, len(training_subset(splits, settings)[1])
    probe: dict[str, Any] | None = None
    checkpoint = None
    if checkpoint_uri:
        key = fingerprint(
            spec.to_json(),
            asdict(settings),
            list(splits.input_shape),
            int(splits.num_classes),
            len(splits.y_train),
            _weights_digest(initial_weights),
        )
        checkpoint = EpochCheckpoint(checkpoint_uri, key)
    recorded = checkpoint.peek() if checkpoint is not None else None
    with training_scope(devices):
        if settings.time_limit is not None and recorded and recorded.get("schedule"):
            schedule, probe = recorded["schedule"], recorded.get("probe")
            settings = replace(
                settings,
                epochs=schedule["epochs"],
                train_examples=schedule["examples"],
                time_limit=None,
            )
        elif settings.time_limit is not None:
            settings, probe = probe_schedule(build, splits, settings, xla=devices.xla)
        if checkpoint is not None:
            checkpoint.extra = {
                "schedule": {"epochs": settings.epochs, "examples": settings.train_examples},
                "probe": probe,
            }
        keras.utils.set_random_seed(settings.seed)
        model = build()
        if initial_weights is not None:
            model.set_weights(initial_weights)
        val_logits, metrics = fit_model(
            model,
            splits,
            settings,
            xla=devices.xla,
            verbose=verbose,
            checkpoint=checkpoint,
            deadline=deadline,
            max_epochs=max_epochs,
            max_examples=max_examples,
        )
        if recorded:
            metrics["resumed_after_epoch"] = int(recorded["epoch"]) + 1
        metrics["warm_start"] = initial_weights is not None
    train_seconds = time.perf_counter() - started
    metrics.update(
        schedule={
            "epochs": settings.epochs,
            "examples": metrics["train_examples"],
            **({"replans": metrics["replans"]} if metrics["replans"] else {}),
            **({"cut": metrics["cut"]} if metrics["cut"] else {}),
        },
        probe=probe,
        train_seconds=train_seconds,
        images_per_second=metrics["examples_trained"] / train_seconds,
        params=int(model.count_params()),
        seed=settings.seed,
        threads=settings.threads,  # None: the backend's default, over these cpus
        cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        backend=keras.backend.backend(),
        device=devices.device_kind,
        mixed_precision=devices.mixed_precision,
        xla=devices.xla,
    )
    return TrainResult(model=model, val_logits=val_logits, metrics=metrics)


def _weights_digest(weights: list[np.ndarray] | None) -> str | None:
    """A checkpoint resumes only the training that started from the same weights."""
    if weights is None:
        return None
    import hashlib

    digest = hashlib.sha256()
    for array in weights:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]

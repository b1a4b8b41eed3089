"""Candidate training (section 2.5): from scratch, Adam with a decaying learning rate,
early stopping on ``val_loss`` (min_delta 0.001, patience 10, best weights restored),
sparse categorical cross-entropy from logits.

The trainer returns the model and its *validation logits*; the ensemble step needs only
those logits, so it never has to load a model to score a candidate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rachel.core.architecture import decode
from rachel.core.devices import DeviceOptions, training_scope
from rachel.core.input_pipeline import make_dataset
from rachel.core.search_space import ArchitectureSpec


@dataclass(frozen=True)
class TrainingSettings:
    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 1e-3
    patience: int = 10
    min_delta: float = 1e-3
    seed: int = 0


@dataclass
class TrainResult:
    model: Any
    val_logits: np.ndarray
    metrics: dict[str, Any] = field(default_factory=dict)


def training_datasets(splits: Any, settings: TrainingSettings) -> tuple[Any, Any, int]:
    """The recipe's input pipelines: (augmented shuffled train, val, steps per epoch)."""
    train_ds = make_dataset(
        splits.x_train,
        splits.y_train,
        batch_size=settings.batch_size,
        training=True,
        augmentation=splits.augmentation,
        seed=settings.seed,
    )
    val_ds = make_dataset(splits.x_val, splits.y_val, batch_size=max(settings.batch_size, 256))
    steps_per_epoch = max(1, int(np.ceil(len(splits.x_train) / settings.batch_size)))
    return train_ds, val_ds, steps_per_epoch


def compile_for_training(
    model: Any, settings: TrainingSettings, steps_per_epoch: int, *, xla: bool
) -> None:
    """Adam with a cosine-decaying learning rate, cross-entropy from logits, accuracy."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(
        settings.learning_rate, decay_steps=settings.epochs * steps_per_epoch, alpha=0.05
    )
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=xla,
    )


def early_stopping(settings: TrainingSettings) -> Any:
    """Early stopping on val_loss with the best weights restored (section 2.5)."""
    import keras

    return keras.callbacks.EarlyStopping(
        monitor="val_loss",
        min_delta=settings.min_delta,
        patience=settings.patience,
        restore_best_weights=True,
    )


def train_candidate_model(
    spec: ArchitectureSpec,
    splits: Any,
    settings: TrainingSettings,
    devices: DeviceOptions,
    *,
    verbose: int = 0,
) -> TrainResult:
    """Train ``spec`` on ``splits`` (a :class:`rachel.core.data.splits.DatasetSplits`).

    Keras draws initial weights and dropout masks from its global generator, so the
    candidate's own seed is set there right before the model is built; each candidate
    runs in its own process in the pipeline, and the seed is recorded in its metrics.
    """
    import keras
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notices: one predict function per model
    keras.utils.set_random_seed(settings.seed)
    train_ds, val_ds, steps_per_epoch = training_datasets(splits, settings)
    started = time.perf_counter()
    with training_scope(devices):
        model = decode(spec, tuple(splits.input_shape), splits.num_classes)
        compile_for_training(model, settings, steps_per_epoch, xla=devices.xla)
        history = model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=settings.epochs,
            callbacks=[early_stopping(settings)],
            shuffle=False,
            verbose=verbose,  # the tf.data pipeline shuffles (seeded)
        )
    train_seconds = time.perf_counter() - started
    val_logits = model.predict(val_ds, verbose=0).astype(np.float32)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    best = int(np.argmin(hist["val_loss"]))
    metrics = {
        "epochs_run": len(hist["val_loss"]),
        "best_epoch": best + 1,
        "val_loss": hist["val_loss"][best],
        "val_accuracy": hist["val_accuracy"][best],
        "train_accuracy": hist["accuracy"][best],
        "train_seconds": train_seconds,
        "params": int(model.count_params()),
        "seed": settings.seed,
        "device": devices.device_kind,
        "mixed_precision": devices.mixed_precision,
        "xla": devices.xla,
        "history": hist,
    }
    return TrainResult(model=model, val_logits=val_logits, metrics=metrics)

"""The training learning-rate schedule: a cosine that can be re-planned between epochs.

Every training decays its rate over its planned epochs.  With a deadline it re-plans its
epochs after each one from the measured times (:func:`rachel.core.training.replan_epochs`:
the finish, :mod:`rachel.core.finish`, to fill its time; a candidate to shrink a plan that
would overrun), so its cosine must be able to change its end without a jump:
:class:`ContinuedCosine` runs from ``start_rate`` at step ``start`` to ``floor`` at step
``end``, and a re-plan starts a new segment at the current step and rate
(:func:`rachel.core.training.schedule_segment`).  The segment's bounds are plain Python
numbers read when the train step is traced, so the trainer re-traces after a re-plan.

Registered with Keras so that a saved finish member's optimizer configuration loads again,
in a process that has imported this module (``keras.saving.load_model(path)`` elsewhere
needs ``compile=False``, as the search itself loads models, or
``custom_objects={"rachel>ContinuedCosine": ContinuedCosine}``).  Imports Keras: imported
lazily.
"""

from __future__ import annotations

import math
from typing import Any

import keras


@keras.saving.register_keras_serializable(package="rachel")
class ContinuedCosine(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, start_rate: float, floor: float, start: int, end: int) -> None:
        self.set(start_rate, floor, start, end)

    def set(self, start_rate: float, floor: float, start: int, end: int) -> None:
        self.start_rate, self.floor = float(start_rate), float(floor)
        self.start, self.end = int(start), max(int(start) + 1, int(end))

    def __call__(self, step: Any) -> Any:
        ops = keras.ops
        progress = (ops.cast(step, "float32") - self.start) / float(self.end - self.start)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * ops.clip(progress, 0.0, 1.0)))
        return self.floor + (self.start_rate - self.floor) * cosine

    def get_config(self) -> dict[str, Any]:
        return {
            "start_rate": self.start_rate,
            "floor": self.floor,
            "start": self.start,
            "end": self.end,
        }

"""Search configuration: the paper's defaults, named budgets, and validated overrides.

``SearchConfig`` is frozen and JSON-serialisable; every run records it (seed included)
in its artifacts so a run can be repeated.  Validation happens here, before any data is
loaded or any GPU time is spent.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from rachel.core.errors import ConfigError
from rachel.core.search_space import MAX_WIDTH, MIN_WIDTH

CONTROLLERS = ("rl", "random")
DEVICE_OPTIONS = ("auto", "on", "off")


@dataclass(frozen=True)
class SearchConfig:
    # data
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    train_size: int | None = None  # None = the dataset's official split size
    val_size: int | None = None
    test_size: int | None = None
    seed: int = 0
    # search (paper section 2.5)
    iterations: int = 10
    candidates: int = 4
    max_new_layers: int = 3
    max_width: int = MAX_WIDTH
    controller: str = "rl"  # "random" = the random-search ablation
    ensemble: bool = True  # False = the "best single model" ablation
    time_budget_seconds: float | None = None  # stop starting iterations past this wall time
    temperature: float = 1.5
    temperature_decay: float = 0.95
    controller_learning_rate: float = 1e-3
    gamma: float = 0.9
    entropy_coef: float = 0.01
    critic_coef: float = 0.5
    # candidate training
    epochs: int = 100
    batch_size: int = 128
    learning_rate: float = 1e-3
    patience: int = 10
    min_delta: float = 1e-3
    # ensemble weighting and safety net
    ensemble_epochs: int = 10
    final_ensemble_epochs: int = 50
    ensemble_learning_rate: float = 1e-3
    ensemble_batch_size: int = 32
    safety_tolerance: float = 0.01
    # GPU-only options ("auto" = on when a GPU is present)
    mixed_precision: str = "auto"
    xla: str = "auto"
    multi_gpu: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        positive = {
            "iterations": self.iterations,
            "candidates": self.candidates,
            "max_new_layers": self.max_new_layers,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "ensemble_epochs": self.ensemble_epochs,
            "final_ensemble_epochs": self.final_ensemble_epochs,
            "ensemble_batch_size": self.ensemble_batch_size,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("train_size", "val_size", "test_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive integer or unset, got {value!r}")
        if not MIN_WIDTH <= self.max_width <= MAX_WIDTH:
            raise ConfigError(
                f"max_width must be within {MIN_WIDTH}..{MAX_WIDTH}, got {self.max_width}"
            )
        if self.controller not in CONTROLLERS:
            raise ConfigError(
                f"unknown controller {self.controller!r}", f"choose one of {', '.join(CONTROLLERS)}"
            )
        for name in ("mixed_precision", "xla", "multi_gpu"):
            if getattr(self, name) not in DEVICE_OPTIONS:
                raise ConfigError(f"{name} must be one of {DEVICE_OPTIONS}")
        for name in ("temperature", "learning_rate", "ensemble_learning_rate"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0")
        if not 0 < self.temperature_decay <= 1:
            raise ConfigError("temperature_decay must be in (0, 1]")
        if self.time_budget_seconds is not None and not self.time_budget_seconds > 0:
            raise ConfigError("time_budget_seconds must be > 0 or unset")
        if self.patience < 0 or self.min_delta < 0 or self.safety_tolerance < 0:
            raise ConfigError("patience, min_delta and safety_tolerance must be >= 0")

    def replace(self, **overrides: Any) -> SearchConfig:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        return dataclasses.replace(self, **overrides)

    def temperature_at(self, iteration: int) -> float:
        """1.5 x 0.95^iteration (section 2.3)."""
        return self.temperature * self.temperature_decay**iteration

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any] | str) -> SearchConfig:
        data: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) in config: {', '.join(unknown)}")
        return cls(**data)


# Named budgets.  "paper" is section 2.5 on the full dataset; the others shrink the data,
# the epochs and the width cap so they fit a laptop CPU (residual blocks near width 256 at
# full resolution cost seconds per batch on 2 cores).
BUDGETS: dict[str, dict[str, Any]] = {
    "smoke": dict(
        train_size=2000,
        val_size=500,
        test_size=2000,
        iterations=2,
        candidates=2,
        max_new_layers=2,
        max_width=32,
        epochs=4,
        batch_size=64,
        patience=2,
        learning_rate=5e-3,
        ensemble_epochs=5,
        final_ensemble_epochs=20,
    ),
    "small": dict(
        train_size=12000,
        val_size=2000,
        test_size=10000,
        iterations=3,
        candidates=3,
        max_new_layers=2,
        max_width=96,
        epochs=10,
        batch_size=128,
        patience=3,
    ),
    "paper": dict(),
}


def budget_config(budget: str, **overrides: Any) -> SearchConfig:
    """The named budget's config with ``overrides`` (``None`` values are ignored)."""
    if budget not in BUDGETS:
        raise ConfigError(f"unknown budget {budget!r}", f"choose one of {', '.join(BUDGETS)}")
    values = {**BUDGETS[budget], **{k: v for k, v in overrides.items() if v is not None}}
    return SearchConfig().replace(**values)

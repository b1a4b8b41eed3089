"""Per-purpose seeds derived from the run's seed (one stream per use, recorded where used)."""

from __future__ import annotations

import numpy as np


def derived_seed(seed: int, *keys: int) -> int:
    """A per-purpose 31-bit seed from the run seed (recorded wherever it is used)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0] & 0x7FFFFFFF)

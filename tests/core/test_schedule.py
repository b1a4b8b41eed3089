"""How the trainer turns a time limit into epochs (rachel.core.training.fit_schedule)."""

import pytest

from rachel.core.training import EPOCH_OVERRUN, MIN_EXAMPLES, fit_schedule

PER_EXAMPLE = 1e-3  # seconds per training example
EPOCH = 55_000 * PER_EXAMPLE + 5_000 * PER_EXAMPLE / 3  # 56.7 s of steps and validation


def test_the_epochs_that_fit_leave_room_for_the_measured_overrun():
    # 3.05 epochs of timed steps fit, but not 3 epochs of what an epoch really costs
    assert fit_schedule(3.05 * EPOCH, 55_000, 5_000, PER_EXAMPLE, max_epochs=20) == (2, 55_000)
    limit = 3 * EPOCH * EPOCH_OVERRUN + 0.1
    assert fit_schedule(limit, 55_000, 5_000, PER_EXAMPLE, max_epochs=20) == (3, 55_000)


def test_the_configured_epochs_cap_the_schedule():
    assert fit_schedule(1e6, 55_000, 5_000, PER_EXAMPLE, max_epochs=4) == (4, 55_000)


@pytest.mark.parametrize(
    "limit, examples",
    [(0.5 * EPOCH * EPOCH_OVERRUN, None), (0.001, MIN_EXAMPLES)],
    ids=["half-an-epoch", "no-time"],
)
def test_under_one_epoch_trains_one_epoch_on_fewer_examples(limit, examples):
    epochs, n = fit_schedule(limit, 55_000, 5_000, PER_EXAMPLE, max_epochs=4)
    assert epochs == 1 and MIN_EXAMPLES <= n < 55_000
    if examples is not None:
        assert n == examples
    else:  # about half of the examples, what half an epoch's time allows
        assert 25_000 < n < 29_000


def test_the_finish_fills_its_limit_with_one_more_epoch_over_fewer_examples():
    limit = 2.9 * EPOCH * EPOCH_OVERRUN
    assert fit_schedule(limit, 55_000, 5_000, PER_EXAMPLE, max_epochs=20) == (2, 55_000)
    epochs, n = fit_schedule(limit, 55_000, 5_000, PER_EXAMPLE, max_epochs=20, fill=True)
    assert epochs == 3 and 52_000 < n < 55_000
    # its planned cost is the limit, not more
    planned = epochs * (n * PER_EXAMPLE + 5_000 * PER_EXAMPLE / 3) * EPOCH_OVERRUN
    assert limit - 0.01 < planned <= limit
    # capped by its epochs, it trains every example
    assert fit_schedule(1e6, 55_000, 5_000, PER_EXAMPLE, max_epochs=20, fill=True) == (20, 55_000)

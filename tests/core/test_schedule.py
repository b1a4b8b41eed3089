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


def test_the_finish_plans_at_least_two_shorter_epochs_to_re_plan_from_a_measured_one():
    limit = 0.8 * EPOCH * EPOCH_OVERRUN  # not even one whole epoch fits
    assert fit_schedule(limit, 55_000, 5_000, PER_EXAMPLE, max_epochs=20, fill=True)[0] == 1
    epochs, n = fit_schedule(
        limit, 55_000, 5_000, PER_EXAMPLE, max_epochs=20, fill=True, min_epochs=2
    )
    assert epochs == 2 and n < 55_000 / 2
    planned = epochs * (n * PER_EXAMPLE + 5_000 * PER_EXAMPLE / 3) * EPOCH_OVERRUN
    assert limit - 0.01 < planned <= limit
    # more than two epochs that fit are planned as before; one allowed epoch stays one
    assert fit_schedule(
        1e6, 55_000, 5_000, PER_EXAMPLE, max_epochs=20, fill=True, min_epochs=2
    ) == (20, 55_000)
    assert (
        fit_schedule(limit, 55_000, 5_000, PER_EXAMPLE, max_epochs=1, fill=True, min_epochs=2)[0]
        == 1
    )


# ------------------------------------------------- the finish's re-plans after each epoch
from rachel.core.training import (  # noqa: E402
    LR_FLOOR,
    TrainingSettings,
    cosine_rate,
    epoch_estimate,
    replan_epochs,
    schedule_segment,
)

FINISH = TrainingSettings(epochs=3, batch_size=100, learning_rate=1e-3, fill_time=True)


def test_a_replan_continues_the_cosine_from_the_rate_it_was_taken_at():
    floor = LR_FLOOR * FINISH.learning_rate
    assert schedule_segment(FINISH, 1000, []) == (0, 1e-3, 30, 3, 1000)
    start, rate, end, epochs, examples = schedule_segment(
        FINISH, 1000, [{"after": 1, "epochs": 5, "examples": 800}]
    )
    # after 1 of 3 epochs (10 of 30 steps) the old cosine stood at 75 % of its way down
    assert start == 10 and rate == pytest.approx(cosine_rate(10, 1e-3, floor, 0, 30))
    assert rate == pytest.approx(floor + (1e-3 - floor) * 0.75)
    assert (end, epochs, examples) == (10 + 4 * 8, 5, 800)  # 4 more epochs of 8 steps
    assert cosine_rate(end, rate, floor, start, end) == pytest.approx(floor)
    # a second re-plan starts where the first segment then stood
    start2, rate2, _, _, _ = schedule_segment(
        FINISH,
        1000,
        [{"after": 2, "epochs": 2, "examples": 1000}, {"after": 1, "epochs": 5, "examples": 800}],
    )
    assert start2 == 18 and rate2 == pytest.approx(cosine_rate(18, rate, floor, 10, 42))


def _replan(remaining, epoch_seconds, done=1, planned=3, examples=55_000, max_epochs=20, grow=True):
    return replan_epochs(
        remaining,
        epoch_seconds,
        done=done,
        planned=planned,
        examples=examples,
        full_examples=55_000,
        val_examples=5_000,
        max_epochs=max_epochs,
        grow=grow,
    )


def test_a_plan_that_fits_the_time_left_is_kept():
    assert _replan(2.1 * 100.0, 100.0) is None  # 2 epochs left, 2.1 epochs of time
    assert _replan(500.0, 100.0, done=3, planned=3) is None  # done: the cosine is at its floor


def test_a_slower_epoch_than_planned_shrinks_the_plan_to_end_in_time():
    epochs, examples = _replan(150.0, 100.0)  # 2 epochs planned, 1.5 epochs of time left
    assert epochs == 3 and examples < 55_000  # filled: 2 shorter epochs
    cost = (epochs - 1) * (examples + 5_000 / 3) * 100.0 / (55_000 + 5_000 / 3)
    assert 0.9 * 150.0 <= cost <= 150.0


def test_a_faster_epoch_than_planned_grows_the_plan_up_to_the_cap():
    epochs, examples = _replan(400.0, 100.0)
    assert epochs == 5 and examples == 55_000  # 4 more whole epochs fit exactly
    assert _replan(5_000.0, 100.0, max_epochs=6) == (6, 55_000)


def test_no_time_for_another_epoch_stops_now():
    assert _replan(2.0, 100.0) == (1, 55_000)


def test_a_candidate_only_shrinks_a_plan_that_would_overrun():
    # time for 4 more epochs: the finish grows its plan, a candidate keeps its own
    assert _replan(400.0, 100.0) == (5, 55_000)
    assert _replan(400.0, 100.0, grow=False) is None
    # 1.5 epochs of time for the 2 left: the candidate drops to 1 more whole epoch
    assert _replan(150.0, 100.0, grow=False) == (2, 55_000)
    # less than one epoch left: one more epoch over the examples that fit, never more
    epochs, examples = _replan(60.0, 100.0, examples=40_000, grow=False)
    assert epochs == 2 and examples < 40_000
    assert _replan(2.0, 100.0, grow=False) == (1, 55_000)  # nothing fits: stop now


def test_the_epoch_estimate_takes_the_slower_of_the_last_epoch_and_the_recent_mean():
    val = 3_000  # a third of it costs 1,000 training examples' time
    assert epoch_estimate([(12.0, 11_000)], 11_000, val) == pytest.approx(12.0)  # all there is
    # a fast last epoch: the mean of the last 3 (the traced first left out) decides
    timings = [(30.0, 11_000), (12.0, 11_000), (10.0, 11_000), (8.0, 11_000)]
    assert epoch_estimate(timings, 11_000, val) == pytest.approx(10.0)
    # per example: a next epoch over 5,000 examples costs (5,000 + 1,000) of 12,000's time
    assert epoch_estimate(timings, 5_000, val) == pytest.approx(10.0 * 6_000 / 12_000)
    # a slow last epoch decides at once
    slow = [(30.0, 11_000), (10.0, 11_000), (10.0, 11_000), (16.0, 11_000)]
    assert epoch_estimate(slow, 11_000, val) == pytest.approx(16.0)
    many = [(30.0, 11_000)] + [(100.0, 11_000)] * 3 + [(10.0, 11_000)] * 3
    assert epoch_estimate(many, 11_000, val) == pytest.approx(10.0)  # only the last 3

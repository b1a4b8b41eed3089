"""The stop rules both runners apply, on hand-written histories (no training)."""

from rachel.core.stop_rules import stop_reason


def _entry(accuracy, fired=False, stop=False):
    entry = {
        "candidates": {"c0": {"val_accuracy": accuracy}, "c1": {"val_accuracy": None}},
        "safety_net_activated": fired,
    }
    if stop:
        entry["next"] = {"action": "stop"}
    return entry


def test_no_rule_no_stop():
    assert stop_reason([]) is None
    assert stop_reason([_entry(0.99, fired=True)] * 3) is None


def test_the_time_budget_comes_first():
    reason = stop_reason([_entry(0.5, stop=True)], target_accuracy=0.4)
    assert reason and reason.startswith("time budget")


def test_safety_net_activations_are_counted_over_the_whole_history():
    history = [_entry(0.5, fired=True), _entry(0.5), _entry(0.5, fired=True)]
    assert stop_reason(history[:2], max_safety_net_activations=2) is None
    assert "fired 2 time(s)" in stop_reason(history, max_safety_net_activations=2)


def test_target_accuracy_on_the_last_iteration():
    assert stop_reason([_entry(0.80)], target_accuracy=0.81) is None
    assert "0.8100" in stop_reason([_entry(0.81)], target_accuracy=0.81)
    assert stop_reason([_entry(0.9), _entry(0.5)], target_accuracy=0.85) is None  # last only

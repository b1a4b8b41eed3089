"""The tiny search configuration the step-level tests share (real Fashion-MNIST subsets)."""

TINY = dict(
    train_size=600,
    val_size=200,
    test_size=200,
    iterations=1,
    candidates=2,
    max_new_layers=1,
    max_width=16,
    epochs=1,
    batch_size=64,
    ensemble_epochs=3,
    final_ensemble_epochs=5,
    parallel_candidates=1,
    finish_epochs=0,  # the smoke preset's finish is off here; its tests turn it on
)
# budget_config ignores None overrides: these are applied with SearchConfig.replace
UNTIMED = dict(time_budget_seconds=None, train_threads=None, max_candidate_seconds=None)

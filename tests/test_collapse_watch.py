"""MaskCollapseWatch: one warning when the pairwise loss says the masks went uniform, none otherwise."""
import logging
from types import SimpleNamespace

import pytest
from detectron2.utils.events import EventStorage

from wsis_d2.engine.collapse_watch import MaskCollapseWatch


def run_watch(values, name="loss_pairwise", window=20):
    """Feeds ``values`` (one per iteration) to a watch as the trainer would; returns the watch."""
    watch = MaskCollapseWatch(window=window)
    with EventStorage(0) as storage:
        watch.trainer = SimpleNamespace(iter=0, storage=storage)
        for iteration, value in enumerate(values):
            storage.iter = watch.trainer.iter = iteration
            storage.put_scalars(**{name: value, "loss_prj": 0.9})
            watch.after_step()
    return watch


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_uniform_masks_are_reported_once_with_the_iteration(caplog):
    caplog.set_level(logging.WARNING)
    values = [0.05] * 40 + [2e-4] * 100  # healthy, then collapsed at iteration 40
    watch = run_watch(values)
    messages = warnings_of(caplog)
    assert watch.warned and len(messages) == 1
    # the first full window of collapsed values ends at iteration 59
    assert messages[0].startswith("iteration 59: loss_pairwise has a median of 2.0e-04")
    assert "SOLVER.BASE_LR" in messages[0]


@pytest.mark.parametrize("values", [
    [0.05] * 200,                               # healthy: edges inside the boxes
    [0.003] * 200,                              # the transient near-collapse runs recover from: above 1e-3
    [0.05] * 30 + [1e-5] * 5 + [0.05] * 100,    # a few low iterations: the median ignores them
    [1e-5] * 19,                                # fewer iterations than one window
    [],                                         # no iteration at all
])
def test_no_warning_for_masks_with_edges_or_too_little_history(values, caplog):
    caplog.set_level(logging.WARNING)
    assert not run_watch(values).warned
    assert warnings_of(caplog) == []


def test_models_without_the_pairwise_loss_are_not_watched(caplog):
    caplog.set_level(logging.WARNING)
    assert not run_watch([0.0] * 100, name="loss_mask").warned
    assert warnings_of(caplog) == []

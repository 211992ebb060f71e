"""MaskCollapseWatch: one warning when the pairwise loss says the masks went uniform, none otherwise."""
import logging
from types import SimpleNamespace

import pytest
from detectron2.engine import PeriodicWriter
from detectron2.utils.events import EventStorage

from wsis_d2.engine.collapse_watch import MaskCollapseWatch
from wsis_d2.engine.trainer import Trainer

from .conftest import small_config


def run_watch(values, name="loss_pairwise", weight=1.0, warmup_iters=0, start_iter=0, window=20):
    """Feeds ``values`` (one per iteration from ``start_iter``, as logged: weight x ramp x the loss) to a
    watch as the trainer would; returns the watch."""
    watch = MaskCollapseWatch(weight=weight, warmup_iters=warmup_iters, window=window)
    with EventStorage(start_iter) as storage:
        watch.trainer = SimpleNamespace(iter=start_iter, storage=storage)
        for iteration, value in enumerate(values, start=start_iter):
            storage.iter = watch.trainer.iter = iteration
            storage.put_scalars(**{name: value, "loss_prj": 0.9})
            watch.after_step()
    return watch


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def ramped(raw, weight, warmup_iters, iterations):
    """What the log holds for a pairwise loss of ``raw`` at each iteration of a ramp."""
    return [raw * weight * min(i / warmup_iters, 1.0) for i in range(iterations)]


def test_uniform_masks_are_reported_once_with_the_iteration(caplog):
    caplog.set_level(logging.WARNING)
    values = [0.05] * 40 + [2e-4] * 100  # healthy, then collapsed at iteration 40
    watch = run_watch(values)
    messages = warnings_of(caplog)
    assert watch.warned and len(messages) == 1
    # the first full window of collapsed values ends at iteration 59
    assert messages[0].startswith("iteration 59: loss_pairwise (divided by its weight and ramp) has a median of 2.0e-04")
    assert "SOLVER.BASE_LR" in messages[0]


def test_the_weight_and_ramp_are_divided_out(caplog):
    caplog.set_level(logging.WARNING)
    # healthy masks early in the papers' 10k-iteration ramp at weight 1: logged values ~1e-5 .. 1e-2
    assert not run_watch(ramped(0.69, 1.0, 10000, 300), warmup_iters=10000).warned
    # the same uniform masks under a heavy weight are still uniform
    assert run_watch(ramped(2e-4, 8.0, 300, 200), weight=8.0, warmup_iters=300).warned
    assert len(warnings_of(caplog)) == 1


@pytest.mark.parametrize("values", [
    [0.05] * 200,                               # healthy: edges inside the boxes
    [0.003] * 200,                              # the transient near-collapse runs recover from: above 1e-3
    [0.05] * 30 + [1e-5] * 5 + [0.05] * 100,    # a few low iterations: the median ignores them
    [0.0] * 200,                                # every object has a mask (mixed supervision): no box term
    [0.0, 0.0, 0.0, 1e-4] * 50,                 # uniform, but box-only objects in a quarter of the batches only
    [1e-5] * 19,                                # fewer iterations than one window
    [],                                         # no iteration at all
])
def test_no_warning_for_masks_with_edges_or_too_little_history(values, caplog):
    caplog.set_level(logging.WARNING)
    assert not run_watch(values).warned
    assert warnings_of(caplog) == []


def test_a_resumed_run_is_watched_from_its_first_full_window(caplog):
    caplog.set_level(logging.WARNING)
    assert not run_watch([2e-4] * 9, start_iter=1010).warned  # its first window (ending at 1019) holds 9
    assert run_watch([2e-4] * 10, start_iter=1010).warned  # ... 10 of 20: half a window is enough
    assert warnings_of(caplog)[0].startswith("iteration 1019:")


def test_half_the_batches_with_uniform_box_only_masks_warn(caplog):
    caplog.set_level(logging.WARNING)
    assert run_watch([0.0, 1e-4] * 100).warned


def test_models_without_the_pairwise_loss_are_not_watched(caplog):
    caplog.set_level(logging.WARNING)
    assert not run_watch([0.0] * 100, name="loss_mask").warned
    assert warnings_of(caplog) == []


def test_every_training_gets_the_watch_before_the_writer(tiny_shapes, tmp_path):
    cfg = small_config("BoxInst/R18_shapes.yaml", train="tiny_box", output_dir=tmp_path,
                       MODEL__BOXINST__PAIRWISE__WARMUP_ITERS="123")
    hooks = Trainer(cfg)._hooks
    watches = [h for h in hooks if isinstance(h, MaskCollapseWatch)]
    assert len(watches) == 1 and watches[0].warmup_iters == 123
    assert hooks.index(watches[0]) < max(i for i, h in enumerate(hooks) if isinstance(h, PeriodicWriter))

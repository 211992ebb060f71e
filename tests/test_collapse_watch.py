"""MaskCollapseWatch: one warning when the pairwise loss says the masks went uniform or the projection
loss says they never took the boxes' shape, none otherwise."""
import logging
from types import SimpleNamespace

import pytest
from detectron2.engine import PeriodicWriter
from detectron2.utils.events import EventStorage

from wsis_d2.engine.collapse_watch import MaskCollapseWatch
from wsis_d2.engine.trainer import Trainer

from wsis_d2.model_zoo import get_config

from .conftest import small_config


def run_watch(values, name="loss_pairwise", weight=1.0, warmup_iters=0, start_iter=0, window=20,
              stall_iter=10**6, others=None, projection_weight=1.0):
    """Feeds ``values`` (one per iteration from ``start_iter``, as logged: weight x ramp x the loss) to a
    watch as the trainer would, with ``others`` (name -> value per iteration) beside them; returns the
    watch. The projection loss stays at a stalled 0.9 unless ``others`` gives it (None: not logged);
    ``stall_iter`` says from when the watch reads it."""
    watch = MaskCollapseWatch(weight=weight, warmup_iters=warmup_iters, stall_iter=stall_iter, window=window,
                              projection_weight=projection_weight)
    others = {k: v for k, v in {"loss_prj": [0.9] * len(values), **(others or {})}.items() if v is not None}
    with EventStorage(start_iter) as storage:
        watch.trainer = SimpleNamespace(iter=start_iter, storage=storage)
        for i, (iteration, value) in enumerate(enumerate(values, start=start_iter)):
            storage.iter = watch.trainer.iter = iteration
            storage.put_scalars(**{**{k: v[i] for k, v in others.items()}, name: value})
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
    assert watches[0].stall_iter == max(cfg.SOLVER.MAX_ITER // 3, 2 * cfg.SOLVER.WARMUP_ITERS)
    assert hooks.index(watches[0]) < max(i for i, h in enumerate(hooks) if isinstance(h, PeriodicWriter))


@pytest.mark.parametrize("max_iter, warmup, stall_iter", [(600, 100, 200), (90000, 1000, 30000), (110, 100, 200)])
def test_the_stall_check_waits_for_a_third_of_the_schedule_and_twice_the_warm_up(max_iter, warmup, stall_iter):
    # (110, 100): a short check run is never read for a stall (its loss is still near its start)
    cfg = get_config("BoxLevelSet/MV2_pennfudan.yaml")
    cfg.SOLVER.MAX_ITER, cfg.SOLVER.WARMUP_ITERS = max_iter, warmup
    watch = MaskCollapseWatch.from_config(cfg)
    assert watch.stall_iter == stall_iter and watch.projection_weight == 3.0


HEALTHY_PAIRWISE = [0.03] * 600  # edges inside the boxes throughout


def test_masks_that_never_take_the_boxes_shape_are_reported_a_third_of_the_way_in(caplog):
    # balloon, BoxInst seed 2 with the 300-iteration ramp: loss_prj 0.92 at iteration 79 and 0.78-0.97
    # to the end, loss_pairwise (unscaled) 0.002-0.008, above the collapse threshold
    caplog.set_level(logging.WARNING)
    stalled = [0.9] * 80 + [0.85] * 520
    watch = run_watch([0.005] * 600, stall_iter=200, others={"loss_prj": stalled})
    messages = warnings_of(caplog)
    assert watch.warned and len(messages) == 1
    assert messages[0].startswith("iteration 199: loss_prj (divided by its weight) has a median of 0.85")
    assert "not taken the boxes' shape" in messages[0] and "SOLVER.BASE_LR" in messages[0]


@pytest.mark.parametrize("projection", [
    [0.9] * 100 + [0.8] * 40 + [0.62] * 60 + [0.3] * 400,  # slow but shaped by a third (SIM seed 1: 0.62 at 199)
    [0.8] * 180 + [0.1] * 420,                             # stalled only before the third
    [0.0] * 600,                                           # every object has a mask: no box term
    # a known limit: stalled box-only objects in a quarter of the batches fill less than half a window
    [0.9, 0.0, 0.0, 0.0] * 150,
])
def test_no_stall_warning_for_shaped_masks_masked_objects_or_too_few_values(projection, caplog):
    caplog.set_level(logging.WARNING)
    assert not run_watch(HEALTHY_PAIRWISE, stall_iter=200, others={"loss_prj": projection}).warned
    assert warnings_of(caplog) == []


def test_a_stall_after_the_third_is_reported_where_it_happens(caplog):
    caplog.set_level(logging.WARNING)
    projection = [0.5] * 300 + [0.95] * 300  # shaped, then lost (the collapse, seen by this loss)
    assert run_watch(HEALTHY_PAIRWISE, stall_iter=200, others={"loss_prj": projection}).warned
    assert warnings_of(caplog)[0].startswith("iteration 319: loss_prj (divided by its weight) has a median of 0.95")


def test_half_the_batches_with_stalled_box_only_masks_warn(caplog):
    caplog.set_level(logging.WARNING)
    assert run_watch(HEALTHY_PAIRWISE, stall_iter=200, others={"loss_prj": [0.9, 0.0] * 300}).warned


def test_the_projection_weight_is_divided_out(caplog):
    caplog.set_level(logging.WARNING)
    # BoxLevelSet's weight 3: a healthy 0.24 logs as 0.72
    assert not run_watch(HEALTHY_PAIRWISE, stall_iter=200, projection_weight=3.0,
                         others={"loss_prj": [0.72] * 600}).warned
    assert run_watch(HEALTHY_PAIRWISE, stall_iter=200, projection_weight=3.0, others={"loss_prj": [2.7] * 600}).warned
    assert len(warnings_of(caplog)) == 1


def test_a_collapse_and_a_stall_together_warn_once_as_the_collapse(caplog):
    caplog.set_level(logging.WARNING)
    # both hold from the first window on (stall_iter 20): the collapse is the one reported
    assert run_watch([2e-4] * 600, stall_iter=20).warned
    messages = warnings_of(caplog)
    assert len(messages) == 1 and messages[0].startswith("iteration 19: loss_pairwise")


def test_models_without_the_projection_loss_are_not_watched_for_a_stall(caplog):
    caplog.set_level(logging.WARNING)
    assert not run_watch(HEALTHY_PAIRWISE, stall_iter=200, others={"loss_prj": None}).warned
    # a CondInst dice loss as high as a stalled projection loss is not read
    assert not run_watch([0.9] * 600, name="loss_mask", stall_iter=200, others={"loss_prj": None}).warned
    assert warnings_of(caplog) == []

"""Warn when a box-supervised model's masks have gone uniform or never took the boxes' shape.

BoxInst's colour-pairwise term (Tian et al., CVPR 2021, Sec. 3.2) costs nothing for a mask that is
the same everywhere, all on or all off. Early in training, with too high a learning rate or a ramp of
that term that does not suit the data, the masks can fall into that state, and the projection term
alone often does not pull them out: the run goes on, its detection losses fall, and only the final
mask AP (near 0) shows it. The realphoto benchmarks (benchmarks/README.md) logged two ways in:

- *collapse*: the pairwise loss, divided by its weight and ramp, is ~0.05-0.7 while the masks have
  edges and falls to ~1e-4 when they go uniform (Penn-Fudan, BoxTeacher seed 3, around the end of the
  LR warm-up);
- *stall*: the masks never take the boxes' shape, so the projection loss (Dice on the x projection
  plus Dice on the y projection: 0 for a perfect fit, ~2 for empty masks, ~1 for masks filling the
  photo; ~1.2 at the start) stays high, ~0.8-1.0, while the pairwise loss sits at ~0.002-0.008, above
  the collapse threshold (balloon, BoxInst seed 2 with the 300-iteration ramp). The healthy runs were at
  0.62 or below a third of the way through their 600 iterations and ~0.1 at the end.

The thresholds were set on the 600-iteration photo runs of 2026-12-07/08 (30 logging the projection
loss, three of them with failed masks).
:class:`MaskCollapseWatch` reads both traces from the event storage and says so once, with what to
change, instead of leaving the user to find it in the final AP.
"""
import logging
import statistics
from typing import Callable, List, Optional

from detectron2.engine import HookBase

from ..modeling.losses.registry import linear_ramp

logger = logging.getLogger(__name__)

PAIRWISE = "loss_pairwise"
PROJECTION = "loss_prj"
REMEDY = ("Try a lower SOLVER.BASE_LR or another seed (with the colour-pairwise term: another "
          "MODEL.BOXINST.PAIRWISE.WARMUP_ITERS); look at the training masks (WSIS.VIS_PERIOD)")


class MaskCollapseWatch(HookBase):
    """Every ``window`` iterations, until it has warned once, takes the median over the last
    ``window`` iterations of

    - ``loss_pairwise`` (BoxInst's colour-pairwise term and the models built on it) divided by the
      term's weight and warm-up ramp: below ``threshold``, the masks are uniform;
    - ``loss_prj`` (the projection term) divided by its weight, in the windows that end at or after
      ``stall_iter``: at or above ``stall_threshold``, the masks have not taken the boxes' shape.

    Exact zeros are left out: they are batches without a box-only object (mixed supervision), not
    uniform masks. A window needs at least half its iterations logged with a non-zero value, so in a
    mixed run whose box-only objects are in fewer than half the batches the watch stays silent; on
    several GPUs the logged losses are averages over the workers, zeros included. Models without these
    losses are not watched. ``warned`` is not checkpointed: a resumed run in the same state warns again.
    """

    def __init__(self, weight: float, warmup_iters: int, stall_iter: int, projection_weight: float = 1.0,
                 window: int = 20, threshold: float = 1e-3, stall_threshold: float = 0.7):
        """
        Args:
            weight, warmup_iters: the pairwise term's ``MODEL.BOXINST.PAIRWISE.WEIGHT`` and
                ``WARMUP_ITERS``, by which its logged value is scaled.
            stall_iter: from the window that ends at or after this iteration on, a projection loss
                still at ``stall_threshold`` counts as a stall (:meth:`from_config`: a third of
                ``SOLVER.MAX_ITER``, but not before twice the LR warm-up).
            projection_weight: ``MODEL.BOXINST.PROJECTION_WEIGHT``, by which ``loss_prj`` is scaled.
        """
        self.weight = weight
        self.warmup_iters = warmup_iters
        self.stall_iter = stall_iter
        self.projection_weight = projection_weight
        self.window = window
        self.threshold = threshold
        self.stall_threshold = stall_threshold
        self.warned = False

    @classmethod
    def from_config(cls, cfg) -> "MaskCollapseWatch":
        pairwise = cfg.MODEL.BOXINST.PAIRWISE
        return cls(weight=pairwise.WEIGHT, warmup_iters=pairwise.WARMUP_ITERS,
                   stall_iter=max(cfg.SOLVER.MAX_ITER // 3, 2 * cfg.SOLVER.WARMUP_ITERS),
                   projection_weight=cfg.MODEL.BOXINST.PROJECTION_WEIGHT)

    def unscaled(self, value: float, iteration: int) -> Optional[float]:
        """A logged pairwise ``value`` divided by the term's weight and ramp at ``iteration``; None
        where they are 0."""
        scale = self.weight * linear_ramp(iteration, self.warmup_iters)
        return value / scale if scale > 0 else None

    def recent_median(self, name: str, transform: Callable[[float, int], Optional[float]]) -> Optional[float]:
        """Median of ``transform(value, iteration)`` over the last ``window`` iterations' non-zero
        values of ``name``; None without the loss or with fewer than half a window of values."""
        history = self.trainer.storage.histories().get(name)
        if history is None:
            return None
        iteration = self.trainer.iter
        recent: List[float] = [transform(value, it) for value, it in history.values()[-self.window:]
                               if it > iteration - self.window and value != 0]
        recent = [value for value in recent if value is not None]
        return statistics.median(recent) if len(recent) >= self.window // 2 else None

    def after_step(self):
        iteration = self.trainer.iter
        if self.warned or (iteration + 1) % self.window:
            return
        pairwise = self.recent_median(PAIRWISE, self.unscaled)
        if pairwise is not None and pairwise < self.threshold:
            self.warn(
                f"iteration {iteration}: {PAIRWISE} (divided by its weight and ramp) has a median of {pairwise:.1e} "
                f"over the last {self.window} iterations: the predicted masks are uniform (all on or all off), "
                "and box supervision often does not recover them.")
            return
        if iteration + 1 < self.stall_iter:
            return
        projection = self.recent_median(PROJECTION, lambda value, it: value / self.projection_weight)
        if projection is not None and projection >= self.stall_threshold:
            self.warn(
                f"iteration {iteration}: {PROJECTION} (divided by its weight) has a median of {projection:.2f} "
                f"over the last {self.window} iterations, a third or more of the way through training: the "
                "predicted masks have not taken the boxes' shape (2 is empty masks, ~1 masks filling the photo; "
                "healthy runs were at 0.62 or below by then), and runs in this state have ended near 0 mask AP.")

    def warn(self, finding: str):
        self.warned = True
        logger.warning(f"{finding} {REMEDY}")

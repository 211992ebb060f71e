"""Warn when a box-supervised model's masks have gone uniform during training.

BoxInst's colour-pairwise term (Tian et al., CVPR 2021, Sec. 3.2) costs nothing for a mask that is
the same everywhere, all on or all off. Early in training, with too high a learning rate or too short
a ramp of that term, the masks can fall into that state, and the projection term alone often does
not pull them out: the run goes on, its detection losses fall, and only the final mask AP (near 0)
shows it. On Penn-Fudan photos at ``SOLVER.BASE_LR 0.01`` and batch 4 this happened at some seeds
around the end of the LR warm-up (benchmarks/README.md, realphoto preset). Its trace in the log is
sharp: the pairwise loss, divided by its weight and ramp, is ~0.05-0.7 while the masks have edges and
falls to ~1e-4 when they are uniform. :class:`MaskCollapseWatch` reads that trace from the event
storage and says so once, with what to change, instead of leaving the user to find it in the final AP.
"""
import logging
import statistics

from detectron2.engine import HookBase

from ..modeling.losses.registry import linear_ramp

logger = logging.getLogger(__name__)

LOSS = "loss_pairwise"


class MaskCollapseWatch(HookBase):
    """Every ``window`` iterations, warns once if the median of ``loss_pairwise`` (the colour-pairwise
    term of BoxInst and the models built on it) over the last ``window`` iterations, divided by the
    term's weight and warm-up ramp, is below ``threshold``. Models without that loss are not watched.

    Exact zeros are left out: they are batches without a box-only object (mixed supervision), not
    uniform masks. A window needs at least half its iterations logged with a non-zero value.
    """

    def __init__(self, weight: float, warmup_iters: int, window: int = 20, threshold: float = 1e-3):
        """
        Args:
            weight, warmup_iters: the term's ``MODEL.BOXINST.PAIRWISE.WEIGHT`` and ``WARMUP_ITERS``,
                by which the logged value is scaled.
        """
        self.weight = weight
        self.warmup_iters = warmup_iters
        self.window = window
        self.threshold = threshold
        self.warned = False

    @classmethod
    def from_config(cls, cfg) -> "MaskCollapseWatch":
        pairwise = cfg.MODEL.BOXINST.PAIRWISE
        return cls(weight=pairwise.WEIGHT, warmup_iters=pairwise.WARMUP_ITERS)

    def unscaled(self, value: float, iteration: int):
        """``value`` divided by the term's weight and ramp at ``iteration``; None where they are 0."""
        scale = self.weight * linear_ramp(iteration, self.warmup_iters)
        return value / scale if scale > 0 else None

    def after_step(self):
        iteration = self.trainer.iter
        if self.warned or (iteration + 1) % self.window:
            return
        history = self.trainer.storage.histories().get(LOSS)
        if history is None:
            return
        recent = [self.unscaled(value, it) for value, it in history.values()[-self.window:]
                  if it > iteration - self.window and value != 0]
        recent = [value for value in recent if value is not None]
        if len(recent) < self.window // 2:
            return
        median = statistics.median(recent)
        if median < self.threshold:
            self.warned = True
            logger.warning(
                f"iteration {iteration}: {LOSS} (divided by its weight and ramp) has a median of {median:.1e} over "
                f"the last {self.window} iterations: the predicted masks are uniform (all on or all off), and box "
                "supervision often does not recover them. Try a lower SOLVER.BASE_LR or a longer "
                "MODEL.BOXINST.PAIRWISE.WARMUP_ITERS; look at the training masks (WSIS.VIS_PERIOD)")

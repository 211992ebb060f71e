"""Warn when a box-supervised model's masks have gone uniform during training.

BoxInst's colour-pairwise term (Tian et al., CVPR 2021, Sec. 3.2) costs nothing for a mask that is
the same everywhere, all on or all off. Early in training, with too high a learning rate or too short
a ramp of that term, the masks can fall into that state and the projection term alone rarely pulls
them out: the run goes on, its detection losses fall, and only the final mask AP (near 0) shows it.
On Penn-Fudan photos at ``SOLVER.BASE_LR 0.01`` and batch 4 this happened at some seeds around the
end of the LR warm-up (benchmarks/README.md, realphoto preset). Its trace in the log is sharp: the
pairwise loss, ~0.02-0.15 while the masks have edges, falls to ~1e-4 and stays there.
:class:`MaskCollapseWatch` reads that trace from the event storage and says so once, with what to
change, instead of leaving the user to find it in the final AP.
"""
import logging
import statistics

from detectron2.engine import HookBase

logger = logging.getLogger(__name__)

LOSS = "loss_pairwise"


class MaskCollapseWatch(HookBase):
    """Every ``window`` iterations, warns once if the median of ``loss_pairwise`` over the last
    ``window`` iterations is below ``threshold``. Models without that loss are not watched."""

    def __init__(self, window: int = 20, threshold: float = 1e-3):
        self.window = window
        self.threshold = threshold
        self.warned = False

    def after_step(self):
        iteration = self.trainer.iter
        if self.warned or (iteration + 1) % self.window:
            return
        histories = self.trainer.storage.histories()
        if LOSS not in histories:
            return
        recent = [value for value, it in histories[LOSS].values() if it > iteration - self.window]
        if len(recent) < self.window:
            return
        median = statistics.median(recent)
        if median < self.threshold:
            self.warned = True
            logger.warning(
                f"iteration {iteration}: {LOSS} has a median of {median:.1e} over the last {self.window} iterations: "
                "the predicted masks are uniform (all on or all off), and box supervision seldom recovers them. "
                "Try a lower SOLVER.BASE_LR, SOLVER.CLIP_GRADIENTS.ENABLED True, or a longer "
                "MODEL.BOXINST.PAIRWISE.WARMUP_ITERS; check the training masks (WSIS.VIS_PERIOD)")

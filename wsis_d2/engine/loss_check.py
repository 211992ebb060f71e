"""Stop training at a NaN or infinite loss, naming the iteration, the loss and the batch's files.

detectron2's trainer stops on a non-finite *total* loss with the loss dict only; a pairwise-loss
blow-up on one image (reported for BoxInst on one-class data, AdelaiDet #614) then leaves the user
without the image to look at. Here every loss is checked before the optimizer's step (so the weights
stay finite) and :class:`NonFiniteLossError` says, in one line,
``iteration 12: loss_pairwise is nan; batch: a.jpg, b.jpg``.
"""
import math
from typing import Dict, List

import torch
from detectron2.engine import AMPTrainer, SimpleTrainer


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the message names the iteration, the losses and the batch."""


def check_finite_losses(loss_dict: Dict[str, torch.Tensor], iteration: int, file_names: List[str]) -> None:
    """Raise :class:`NonFiniteLossError` when a loss of ``loss_dict`` is NaN or +-inf."""
    bad = []
    for name, value in loss_dict.items():
        value = float(value.detach().float().sum()) if torch.is_tensor(value) else float(value)
        if not math.isfinite(value):
            bad.append(f"{name} is {value}")
    if bad:
        batch = ", ".join(file_names) if file_names else "(file names unknown)"
        raise NonFiniteLossError(f"iteration {iteration}: {', '.join(bad)}; batch: {batch}")


class FileNameRecordingLoader:
    """Iterates ``loader``'s batches (lists of dataset dicts), keeping the ``file_name`` of the last one."""

    def __init__(self, loader):
        self.loader = loader
        self.last_file_names: List[str] = []

    def __iter__(self):
        for batch in self.loader:
            self.last_file_names = [str(d.get("file_name", "?")) for d in batch]
            yield batch

    def __getattr__(self, name):  # the wrapped loader's attributes (dataset, batch_size, ...)
        if name == "loader":  # not set yet (copy / unpickle): no recursion
            raise AttributeError(name)
        return getattr(self.loader, name)


class _FiniteLossCheck:
    """Checks the losses where detectron2 logs them: after backward, before the optimizer's step."""

    def _write_metrics(self, loss_dict, data_time, *args, **kwargs):
        check_finite_losses(loss_dict, self.iter, getattr(self.data_loader, "last_file_names", []))
        super()._write_metrics(loss_dict, data_time, *args, **kwargs)


class CheckedSimpleTrainer(_FiniteLossCheck, SimpleTrainer):
    pass


class CheckedAMPTrainer(_FiniteLossCheck, AMPTrainer):
    pass


CHECKED = {SimpleTrainer: CheckedSimpleTrainer, AMPTrainer: CheckedAMPTrainer}


def check_losses_of(inner_trainer) -> None:
    """Make DefaultTrainer's inner trainer (a SimpleTrainer or AMPTrainer it built) check every loss."""
    checked = CHECKED.get(type(inner_trainer))
    if checked is not None:
        inner_trainer.__class__ = checked

"""Mean teacher: an exponential moving average of the student's weights (Tarvainen & Valpola,
NeurIPS 2017), as BoxTeacher, SIM and PointWSSIS use it.

The teacher is a submodule of the model, so detectron2's checkpointer saves
and ``--resume`` restores it with the student; its parameters never require
gradients, so the optimizer skips them. :class:`EMAUpdateHook` updates it after
every optimiser step; in multi-process training every process applies the same
update to the same (synchronised) student, so the teachers stay identical.
"""
import torch
from detectron2.engine import HookBase
from torch import nn


def ema_momentum(iteration: int, momentum: float) -> float:
    """min(momentum, 1 - 1 / (iteration + 1)): early on the teacher follows the student closely."""
    return min(momentum, 1.0 - 1.0 / (iteration + 1.0))


class MeanTeacher(nn.Module):
    """Holds the teacher ``model``: always in eval mode, no gradients.

    Args:
        model: a freshly built model of the student's architecture; call
            :meth:`copy_from` to start it at the student's weights.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.model.requires_grad_(False)
        self.model.eval()

    def train(self, mode: bool = True):
        # model.train() on the whole meta-arch must not switch the teacher to training behaviour
        return super().train(False)

    @torch.no_grad()
    def copy_from(self, student: nn.Module) -> None:
        self.model.load_state_dict(student.state_dict())

    @torch.no_grad()
    def update(self, student: nn.Module, momentum: float) -> None:
        """teacher = momentum * teacher + (1 - momentum) * student, for parameters and float buffers;
        integer buffers (e.g. BatchNorm's batch counter) are copied."""
        student_state = student.state_dict()
        for name, value in self.model.state_dict().items():
            source = student_state[name]
            if value.dtype.is_floating_point:
                value.mul_(momentum).add_(source.detach(), alpha=1.0 - momentum)
            else:
                value.copy_(source)

    def forward(self, *args, **kwargs):
        with torch.no_grad():
            return self.model(*args, **kwargs)


class EMAUpdateHook(HookBase):
    """After each optimiser step: ``model.update_teacher(iteration)`` for models that have a teacher."""

    def after_step(self):
        model = self.trainer.model
        model = getattr(model, "module", model)  # DistributedDataParallel
        if hasattr(model, "update_teacher"):
            model.update_teacher(self.trainer.iter)

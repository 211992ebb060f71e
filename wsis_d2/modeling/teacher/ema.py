"""Mean teacher: an exponential moving average of the student's weights (Tarvainen & Valpola,
NeurIPS 2017), as BoxTeacher, SIM and PointWSSIS use it.

The teacher is a submodule of the model, so detectron2's checkpointer saves
and ``--resume`` restores it with the student; its parameters never require
gradients, so the optimizer skips them. :class:`EMAUpdateHook` updates it after
every optimiser step. In multi-process training the students' parameters are
the same in every process (DistributedDataParallel averages their gradients),
but their BatchNorm statistics are not (detectron2 builds DDP with
``broadcast_buffers=False``, so each process keeps those of its own images): the
teacher's update takes the student's floating-point buffers averaged over the
processes, so every process holds the same teacher.
"""
from typing import Dict

import torch
import torch.distributed as dist
from detectron2.engine import HookBase
from detectron2.utils import comm
from torch import nn


def _float_buffers_averaged_over_processes(module: nn.Module,
                                           state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The entries of ``state`` (``module.state_dict()``) that are floating-point buffers (e.g. BatchNorm
    running statistics), averaged over the processes: one all-reduce per dtype, so call it in every
    process. The module itself is left as it is."""
    names = [name for name, b in module.named_buffers() if name in state and b.dtype.is_floating_point]
    averaged = {}
    # in the buffers' order, so that every process issues the same all-reduces in the same order
    for dtype in dict.fromkeys(state[name].dtype for name in names):
        of_dtype = [name for name in names if state[name].dtype == dtype]
        flat = torch.cat([state[name].detach().flatten() for name in of_dtype])
        dist.all_reduce(flat)
        flat /= comm.get_world_size()
        for name, chunk in zip(of_dtype, flat.split([state[name].numel() for name in of_dtype])):
            averaged[name] = chunk.view_as(state[name])
    return averaged


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
        integer buffers (e.g. BatchNorm's batch counter) are copied. The student's floating-point
        buffers enter averaged over the processes (see the module docstring): with several processes
        every one of them must call this."""
        student_state = student.state_dict()
        if comm.get_world_size() > 1:
            student_state.update(_float_buffers_averaged_over_processes(student, student_state))
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

"""MODEL.CONDINST.DETACH_CONTROLLER_INPUT: the mask losses train the controller, never FCOS's box tower.

On Penn-Fudan photos (benchmarks/README.md, "Real photos: BoxInst on Penn-Fudan"), BoxInst's mask
losses reach the box tower through the controller with several times the box losses' gradient, and
the box regression died (GIoU loss exactly 1.0 from iteration ~20: every positive's box of zero size).
"""
import torch
from detectron2.utils.events import EventStorage

from wsis_d2.engine.trainer import Trainer
from wsis_d2.model_zoo import get_config

from .conftest import small_config

MASK_LOSSES = ("loss_prj", "loss_pairwise")


def _mask_loss_grads(cfg):
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    batch = next(iter(Trainer.build_train_loader(cfg)))
    with EventStorage(500):  # past the warm-up: the pairwise term at full weight
        losses = model(batch)
    head = model.fcos.head
    params = list(head.box_tower.parameters()) + list(head.extra.parameters()) + list(head.box_pred.parameters())
    grads = torch.autograd.grad(sum(losses[k] for k in MASK_LOSSES), params, allow_unused=True)
    norm = lambda gs: sum(float(g.abs().sum()) for g in gs if g is not None)  # noqa: E731
    n_tower, n_extra = len(list(head.box_tower.parameters())), len(list(head.extra.parameters()))
    return norm(grads[:n_tower]), norm(grads[n_tower: n_tower + n_extra]), norm(grads[n_tower + n_extra:])


def test_detached_controller_input_keeps_mask_losses_off_the_box_tower(tiny_shapes):
    cfg = small_config("BoxInst/R18_shapes.yaml", train="tiny_box")
    tower, controller, box_pred = _mask_loss_grads(cfg)
    assert tower > 0 and controller > 0 and box_pred == 0  # the papers' sharing: the tower gets them
    cfg.defrost()
    cfg.MODEL.CONDINST.DETACH_CONTROLLER_INPUT = True
    tower, controller, box_pred = _mask_loss_grads(cfg)
    assert tower == 0 and controller > 0 and box_pred == 0


def test_photo_boxinst_config_detaches_the_controller_input():
    assert get_config("BoxInst/MV2_pennfudan.yaml").MODEL.CONDINST.DETACH_CONTROLLER_INPUT
    assert not get_config("BoxInst/R18_shapes.yaml").MODEL.CONDINST.DETACH_CONTROLLER_INPUT

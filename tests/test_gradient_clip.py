"""BoxLevelSet's photo configs clip each parameter's gradient to norm 1, as the reference trains.

Without it, on Penn-Fudan (benchmarks/README.md, "Half the learning rate"), the masks emptied after the
warm-up and FCOS stalled, at LR 0.01 and 0.005 alike (0.0 mask AP); with it 29.9.
"""
import pytest
import torch
from torch import nn

from wsis_d2.engine.trainer import Trainer
from wsis_d2.model_zoo import get_config


def _first_step(cfg, grad_norm: float) -> float:
    """Norm of the first SGD update the trainer's optimizer makes on a weight with a gradient of
    ``grad_norm`` (the weight starts at zero, so weight decay adds nothing)."""
    model = nn.Linear(4, 4, bias=False)
    nn.init.zeros_(model.weight)
    optimizer = Trainer.build_optimizer(cfg, model)
    model.weight.grad = torch.full_like(model.weight, grad_norm / 4.0)  # 16 entries: norm grad_norm
    optimizer.step()
    return float(model.weight.detach().norm())


@pytest.mark.parametrize("config", ["BoxLevelSet/MV2_pennfudan.yaml", "BoxLevelSet/MV2_balloon.yaml"])
def test_photo_boxlevelset_configs_clip_each_gradient_to_norm_one(config):
    cfg = get_config(config)
    assert (cfg.SOLVER.CLIP_GRADIENTS.ENABLED, cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE,
            cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE) == (True, "norm", 1.0)
    lr = cfg.SOLVER.BASE_LR
    assert _first_step(cfg, 1000.0) == pytest.approx(lr * 1.0, rel=1e-5)  # clipped to norm 1
    assert _first_step(cfg, 0.5) == pytest.approx(lr * 0.5, rel=1e-5)  # below the norm: untouched


def test_shapes_boxlevelset_config_does_not_clip():
    cfg = get_config("BoxLevelSet/R18_shapes.yaml")
    assert not cfg.SOLVER.CLIP_GRADIENTS.ENABLED
    assert _first_step(cfg, 1000.0) == pytest.approx(cfg.SOLVER.BASE_LR * 1000.0, rel=1e-5)

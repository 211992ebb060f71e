"""Shared fixtures: a tiny shapes dataset (generated once per session) and small configs."""
import os

import pytest
import torch

import wsis_d2  # noqa: F401  (registration)
from wsis_d2.data.register import register_shapes
from wsis_d2.data.shapes import generate_shapes
from wsis_d2.model_zoo import get_config

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def tiny_shapes(tmp_path_factory):
    """8 train / 4 val shapes images, registered as ``tiny_{full,box,point,semi_*,val}``."""
    root = tmp_path_factory.mktemp("data") / "shapes"
    files = generate_shapes(root, num_train=8, num_val=4, seed=3)
    register_shapes(str(root), prefix="tiny")
    return {"root": str(root), "files": files}


def small_config(config="CondInst/R18_shapes.yaml", train="tiny_full", output_dir=None, **overrides):
    """A shipped config made tiny: batch 2, 128 px, no workers, 2 iterations."""
    cfg = get_config(config)
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "DATASETS.TRAIN", f"('{train}',)", "DATASETS.TEST", "('tiny_val',)",
        "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "2", "SOLVER.WARMUP_ITERS", "1",
        "DATALOADER.NUM_WORKERS", "0", "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MIN_SIZE_TEST", "128",
        "WSIS.VIS_NUM_IMAGES", "1",
    ])
    if output_dir is not None:
        cfg.OUTPUT_DIR = str(output_dir)
    for key, value in overrides.items():
        cfg.merge_from_list([key.replace("__", "."), value])
    return cfg


def check_empty_image_and_tiny_boxes(cfg, iteration: int = 200):
    """One training step of ``cfg``'s model on a batch whose first image has no annotation and whose
    second has only 2 x 1 px boxes (their points, if any, moved inside): losses and gradients finite."""
    import copy

    from detectron2.structures import Boxes, Instances
    from detectron2.utils.events import EventStorage

    from wsis_d2.engine.trainer import Trainer

    model = Trainer.build_model(cfg)
    batch = copy.deepcopy(next(iter(Trainer.build_train_loader(cfg))))
    h, w = batch[0]["image"].shape[-2:]
    batch[0]["instances"] = Instances((h, w), gt_boxes=Boxes(torch.zeros((0, 4))),
                                      gt_classes=torch.zeros(0, dtype=torch.long))
    tiny = batch[1]["instances"]
    tiny.gt_boxes.tensor[:] = torch.tensor([20.0, 30.0, 22.0, 31.0])
    if tiny.has("gt_point_coords"):
        tiny.gt_point_coords[:] = torch.tensor([21.0, 30.5])
    with EventStorage(iteration):
        losses = model(batch)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    return losses

"""Shared fixtures: a tiny shapes dataset (generated once per session) and small configs."""
import os

import numpy as np
import pytest
import torch

import wsis_d2  # noqa: F401  (registration)
from wsis_d2.autolabel import register_shapes_pseudo
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
    register_shapes_pseudo(str(root), prefix="tiny")
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


def box_batch_with_gt_masks(config: str, cfg):
    """One training batch of ``cfg`` (a box view of tiny shapes) on the full view's images, and the
    full view's batch (the loader is seeded alike, so the two hold the same images and objects)."""
    from detectron2.structures import Instances

    from wsis_d2.engine.trainer import Trainer

    # detectron2's TrainingSampler draws its shuffle seed, and the mapper its flips, from numpy's global
    # generator: the same state before each loader gives both the same images, and every run the same batch
    np.random.seed(0)
    batch = next(iter(Trainer.build_train_loader(cfg)))
    full_cfg = small_config(config, train="tiny_full")
    full_cfg.INPUT.MASK_FORMAT = "bitmask"
    np.random.seed(0)
    full = next(iter(Trainer.build_train_loader(full_cfg)))
    batch = [dict(b, image=f["image"], instances=Instances(f["instances"].image_size,
                                                           gt_boxes=f["instances"].gt_boxes,
                                                           gt_classes=f["instances"].gt_classes))
             for b, f in zip(batch, full)]
    return batch, full


def teacher_from_gt_masks(model, full_inputs):
    """Replace a teacher-student ``model``'s teacher predictions by the GT masks (score .9) and features
    along channel 1 on the objects, channel 2 off them (on the feature grid of the padded batch, as
    CondInst's): a teacher that knows the answer."""
    from detectron2.structures import Instances

    teacher = model.teacher.model
    stride, divisibility = teacher.mask_branch.out_stride, teacher.size_divisibility

    def predictions(batched_inputs, with_mask_feats=False):
        outputs = []
        batch_h, batch_w = (max(x["image"].shape[d] for x in batched_inputs) for d in (-2, -1))
        for x, full in zip(batched_inputs, full_inputs):
            gt = full["instances"]
            masks = gt.gt_masks.tensor.float()
            h, w = masks.shape[-2:]
            inst = Instances((h, w), pred_boxes=gt.gt_boxes.clone(), scores=torch.full((len(gt),), 0.9),
                             pred_classes=gt.gt_classes, pred_mask_probs=masks * 0.95)
            padded = [(d + divisibility - 1) // divisibility * divisibility for d in (batch_h, batch_w)]
            feats = torch.zeros((16, padded[0] // stride, padded[1] // stride))
            on_object = masks.amax(0)[::stride, ::stride] > 0
            feats[1, : on_object.shape[0], : on_object.shape[1]] = on_object.float()
            feats[2] = 1.0 - feats[1]
            outputs.append({"instances": inst, "mask_feats": feats})
        return outputs
    model.teacher_predictions = predictions
    model.teacher_mask_features = lambda batched_inputs: [out["mask_feats"] for out in predictions(batched_inputs)]

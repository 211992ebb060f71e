"""Training shows what it does: the mask-loss terms every iteration, pictures of the training masks in
TensorBoard, and a NaN / inf loss stopped with the iteration, the loss and the batch's files."""
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.structures import Boxes, Instances
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.conftest import small_config
from wsis_d2.config import ConfigError
from wsis_d2.config.ranges import check_run_config
from wsis_d2.engine.loss_check import NonFiniteLossError, check_finite_losses
from wsis_d2.engine.trainer import Trainer
from wsis_d2.engine.training_masks import GAP, PANEL, draw_training_masks
from wsis_d2.modeling.condinst.snapshot import training_mask_snapshot
from wsis_d2.modeling.roi_heads.box_supervised import roi_training_mask_snapshot


def test_check_finite_losses_names_every_bad_loss_and_the_files():
    check_finite_losses({"loss_a": torch.tensor(1.0), "loss_b": torch.tensor(0.0)}, 3, ["a.jpg"])
    with pytest.raises(NonFiniteLossError) as e:
        check_finite_losses({"loss_a": torch.tensor(1.0), "loss_pairwise": torch.tensor(float("nan")),
                             "loss_prj": torch.tensor(float("-inf"))}, 12, ["x/a.jpg", "x/b.jpg"])
    assert str(e.value) == "iteration 12: loss_pairwise is nan, loss_prj is -inf; batch: x/a.jpg, x/b.jpg"
    assert isinstance(e.value, FloatingPointError)


def test_a_nan_loss_stops_training_before_the_step_naming_iteration_loss_and_files(tiny_shapes, tmp_path):
    cfg = small_config("BoxInst/R18_shapes.yaml", train="tiny_box", output_dir=tmp_path, WSIS__VIS_PERIOD="0")
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.model.mask_losses[1].weight = float("nan")  # PairwiseColorLoss: nan x its warm-up factor
    before = {k: v.detach().clone() for k, v in trainer.model.named_parameters()}
    with pytest.raises(NonFiniteLossError) as e:
        trainer.train()
    match = re.fullmatch(r"iteration 0: loss_pairwise is nan; batch: (.+)", str(e.value))
    assert match, str(e.value)
    files = match.group(1).split(", ")
    assert len(files) == 2 and all(Path(f).is_file() and f.startswith(tiny_shapes["root"]) for f in files)
    after = dict(trainer.model.named_parameters())
    assert all(torch.equal(before[k], after[k]) for k in before)  # the optimizer never stepped on it


@pytest.mark.parametrize("config, train, terms", [
    ("BoxInst/R18_shapes.yaml", "tiny_box", ["loss_prj", "loss_pairwise"]),
    ("PointSup/CondInst_R18_shapes.yaml", "tiny_point", ["loss_point"]),
    ("BoxTeacher/R18_shapes.yaml", "tiny_box", ["loss_prj", "loss_pairwise", "loss_pseudo_mask"]),
    ("BoxInst/MaskRCNN_R18_shapes.yaml", "tiny_box", ["loss_prj", "loss_pairwise"]),
    ("PointSup/MaskRCNN_R18_shapes.yaml", "tiny_point", ["loss_point"]),
])
def test_mask_terms_every_iteration_and_training_mask_pictures_in_tensorboard(config, train, terms, tiny_shapes,
                                                                             tmp_path):
    cfg = small_config(config, train=train, output_dir=tmp_path, WSIS__VIS_PERIOD="1",
                       TEST__EVAL_PERIOD="0", WSIS__VIS_NUM_IMAGES="0")
    cfg.DATASETS.TEST = ()
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    for term in terms:  # every iteration, not only every writer period (20)
        assert [it for _, it in trainer.storage.history(term).values()] == [0, 1], term
    events = EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    events.Reload()
    pictures = events.Images("training_masks")
    assert [p.step for p in pictures] == [0, 1]
    assert all(p.width == 3 * PANEL + 2 * GAP and p.height % (PANEL + GAP) in (0, PANEL) for p in pictures)
    assert max(p.height for p in pictures) > PANEL  # a few instances, one row each
    assert all(m.training_masks is None and not m.record_training_masks
               for m in trainer.model.modules() if hasattr(m, "record_training_masks"))


def test_no_pictures_with_vis_period_0_and_a_negative_period_is_refused(tiny_shapes, tmp_path):
    cfg = small_config("BoxInst/R18_shapes.yaml", train="tiny_box", output_dir=tmp_path, WSIS__VIS_PERIOD="0")
    assert not any(type(h).__name__ == "TrainingMaskPictureHook" for h in Trainer(cfg)._hooks)
    cfg.WSIS.VIS_PERIOD = -1
    with pytest.raises(ConfigError, match=r"WSIS.VIS_PERIOD is -1; it must lie in \[0, inf\)"):
        check_run_config(cfg)


def test_snapshot_keeps_the_best_positive_of_each_instance():
    raw = torch.zeros((2, 3, 8, 8))
    raw[1, 2] = 300.0  # clamped to 255
    boxes = [torch.tensor([[0.0, 0.0, 4.0, 4.0], [2.0, 2.0, 6.0, 8.0]]), torch.tensor([[1.0, 1.0, 3.0, 3.0]])]
    im_inds, gt_inds = torch.tensor([0, 0, 1, 0]), torch.tensor([0, 0, 0, 1])
    scores = torch.tensor([0.1, 0.9, 0.5, 0.3])
    logits = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2).clone()
    snap = training_mask_snapshot(raw, [(8, 8), (6, 5)], boxes, im_inds, gt_inds, scores, logits, 4, "BGR")
    # instances by their best positive's score: (0, 0) via positive 1, (1, 0) via 2, (0, 1) via 3
    assert torch.equal(snap["boxes"], torch.stack([boxes[0][0], boxes[1][0], boxes[0][1]]))
    assert torch.allclose(snap["mask_probs"][:, 0, 0], torch.tensor([1.0, 2.0, 3.0]).sigmoid())
    assert snap["image_index"].tolist() == [0, 1, 0] and [tuple(i.shape) for i in snap["images"]] == [(3, 8, 8),
                                                                                                     (3, 6, 5)]
    assert snap["images"][1].dtype == torch.uint8 and int(snap["images"][1][2].max()) == 255
    one = training_mask_snapshot(raw, [(8, 8), (6, 5)], boxes, im_inds, gt_inds, scores, logits, 4, "BGR", 1)
    assert len(one["boxes"]) == 1 and len(one["images"]) == 1
    none = training_mask_snapshot(raw, [(8, 8)], boxes, im_inds[:0], gt_inds[:0], scores[:0], logits[:0], 4, "BGR")
    assert len(none["boxes"]) == 0 and none["mask_probs"].shape[0] == 0 and draw_training_masks(none).shape == (
        PANEL, 3 * PANEL + 2 * GAP, 3)


def test_drawing_image_box_and_mask_panels():
    image = torch.zeros((3, 24, 24), dtype=torch.uint8)
    image[2, 8:16, 8:16] = 255  # red in BGR
    probs = torch.zeros((12, 12))
    probs[5:7, 5:7] = 1.0  # stride 2: pixels 10..13, the middle of the box
    snap = {"images": [image], "image_index": torch.tensor([0]), "boxes": torch.tensor([[8.0, 8.0, 16.0, 16.0]]),
            "mask_probs": probs[None], "stride": 2, "format": "BGR"}
    picture = draw_training_masks(snap)
    assert picture.shape == (PANEL, 3 * PANEL + 2 * GAP, 3)
    # the crop is the box plus 4 px each side (16 px -> 96: 6x); the box's middle is the panel's middle
    middle = PANEL // 2
    img, box, mask = (picture[:, k * (PANEL + GAP): k * (PANEL + GAP) + PANEL] for k in range(3))
    assert img[middle, middle].tolist() == [255, 0, 0]  # shown as RGB
    assert img[2, 2].tolist() == [0, 0, 0]
    assert box[middle, middle].tolist() == [255] * 3 and box[2, 2].tolist() == [0] * 3
    assert mask[middle, middle].tolist() == [255] * 3 and mask[30, 30].tolist() == [0] * 3  # inside box, off mask
    assert np.all(picture[:, PANEL:PANEL + GAP] == 255)


def test_roi_snapshot_pastes_the_best_roi_of_each_gt_of_the_first_image_with_foreground():
    empty = Instances((8, 8), proposal_boxes=Boxes(torch.zeros((0, 4))), gt_boxes=Boxes(torch.zeros((0, 4))))
    gt = torch.tensor([[4.0, 4.0, 12.0, 12.0], [4.0, 4.0, 12.0, 12.0], [0.0, 0.0, 6.0, 6.0]])
    proposals = torch.tensor([[0.0, 0.0, 10.0, 10.0], [4.0, 4.0, 12.0, 12.0], [0.0, 0.0, 6.0, 6.0]])
    image = Instances((16, 20), proposal_boxes=Boxes(proposals), gt_boxes=Boxes(gt))
    logits = torch.full((3, 1, 4, 4), 20.0)
    logits[0] = -20.0  # the first RoI of the first GT overlaps it less: not chosen
    raw = torch.zeros((2, 3, 16, 24))
    raw[1, 0, :, :] = 300.0
    snap = roi_training_mask_snapshot([empty, image], logits, raw, "BGR")
    assert snap["image_index"].tolist() == [0, 0] and snap["stride"] == 1 and snap["format"] == "BGR"
    assert [tuple(i.shape) for i in snap["images"]] == [(3, 16, 20)] and int(snap["images"][0][0].min()) == 255
    assert torch.equal(snap["boxes"], gt[[1, 2]])
    probs = snap["mask_probs"]
    assert probs.shape == (2, 16, 20)
    # detectron2's paste: bilinear with zero padding, so the box's edge pixels blur to 0.5 .. 1
    assert probs[0, 5:11, 5:11].min() > 0.99 and probs[0, 4:12, 4:12].min() > 0.5
    assert probs[0, 13:, :].max() < 0.01 and probs[0, :, 13:].max() < 0.01 and probs[0, :3, :].max() < 0.01
    assert probs[1, 1:5, 1:5].min() > 0.99 and probs[1, 7:, :].max() < 0.01
    picture = draw_training_masks(snap)
    assert picture.shape == (2 * PANEL + GAP, 3 * PANEL + 2 * GAP, 3)
    black = roi_training_mask_snapshot([image], logits, None, "BGR", max_instances=1)
    assert len(black["boxes"]) == 1 and int(black["images"][0].max()) == 0
    none = roi_training_mask_snapshot([empty], logits[:0], raw, "BGR")
    assert len(none["boxes"]) == 0 and draw_training_masks(none).shape == (PANEL, 3 * PANEL + 2 * GAP, 3)

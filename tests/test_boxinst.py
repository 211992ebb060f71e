"""BoxInst / BoxLevelSet models: train from the box view only, refuse mask losses, CondInst inference."""

import pytest
import torch
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from wsis_d2.engine.trainer import Trainer
from wsis_d2.modeling.condinst import CondInst

from .conftest import check_empty_image_and_tiny_boxes, small_config

BOX_CONFIGS = {
    "BoxInst/R18_shapes.yaml": {"loss_prj", "loss_pairwise"},
    "BoxLevelSet/R18_shapes.yaml": {"loss_prj", "loss_levelset"},
}


@pytest.mark.parametrize("config", list(BOX_CONFIGS))
def test_trains_from_boxes_only(tiny_shapes, config):
    cfg = small_config(config, train="tiny_box")
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    assert isinstance(model, CondInst)  # CondInst's detector, heads and inference
    batch = next(iter(Trainer.build_train_loader(cfg)))
    assert all(not d["instances"].has("gt_masks") for d in batch)
    with EventStorage(50):  # past half of the shapes warm-up: the pairwise term is on
        losses = model(batch)
    assert BOX_CONFIGS[config] <= set(losses) and "loss_mask" not in losses
    assert all(torch.isfinite(v) for v in losses.values())
    assert all(losses[k] > 0 for k in BOX_CONFIGS[config])
    sum(losses.values()).backward()
    grads = [p.grad for p in model.mask_branch.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads) and sum(g.abs().sum() for g in grads) > 0


@pytest.mark.parametrize("config", list(BOX_CONFIGS) + ["BoxTeacher/R18_shapes.yaml"])
def test_no_annotations_and_tiny_boxes(tiny_shapes, config):
    # iteration 600: past every warm-up, and past BoxTeacher's START_ITER (its teacher labels the batch)
    check_empty_image_and_tiny_boxes(small_config(config, train="tiny_box"), iteration=600)


def test_box_models_refuse_a_mask_reading_loss(tiny_shapes):
    cfg = small_config("BoxInst/R18_shapes.yaml", train="tiny_box")
    cfg.MODEL.CONDINST.MASK_LOSSES = ["ProjectionLoss", "DiceMaskLoss"]
    with pytest.raises(ValueError, match="DiceMaskLoss reads \\['masks'\\]"):
        Trainer.build_model(cfg)


def test_pairwise_warmup_is_linear():
    from wsis_d2.model_zoo import get_config
    from wsis_d2.modeling.losses import PairwiseColorLoss

    loss = PairwiseColorLoss(get_config("BoxInst/R18_shapes.yaml"))
    assert [loss.warmup_factor(i) for i in (0, 50, 100, 500)] == [0.0, 0.5, 1.0, 1.0]


def test_box_supervised_mask_rcnn(tiny_shapes):
    """detectron2's Mask R-CNN with the same registered losses, computed in each RoI's frame."""
    from detectron2.modeling.meta_arch import GeneralizedRCNN

    cfg = small_config("BoxInst/MaskRCNN_R18_shapes.yaml", train="tiny_box")
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    assert type(model) is GeneralizedRCNN
    batch = next(iter(Trainer.build_train_loader(cfg)))
    assert all(not d["instances"].has("gt_masks") for d in batch)
    with EventStorage(100):
        losses = model(batch)
    assert {"loss_prj", "loss_pairwise"} <= set(losses) and "loss_mask" not in losses
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_prj"] > 0
    sum(losses.values()).backward()
    head = model.roi_heads.mask_head
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in head.parameters())
    model.eval()
    with torch.no_grad():
        out = model([{"image": batch[0]["image"], "height": 40, "width": 60}])
    assert out[0]["instances"].pred_masks.shape[1:] == (40, 60)


def test_roi_frame_maps_the_gt_box_into_the_grid():
    from wsis_d2.modeling.roi_heads import RoIFrameInputs

    inputs = RoIFrameInputs(proposal_boxes=torch.tensor([[10.0, 20.0, 38.0, 34.0]]),
                            gt_boxes=torch.tensor([[17.0, 20.0, 52.0, 27.0]]), resolution=28,
                            roi_lab=torch.zeros((1, 3, 28, 28)))
    # x: (17 - 10) * 28 / 28 = 7 .. clipped to 28; y: (20 - 20) * 2 = 0 .. (27 - 20) * 2 = 14
    assert inputs.boxes().tolist() == [[7.0, 0.0, 28.0, 14.0]]
    sim, valid = inputs.color_graph(3, 2)
    assert sim.shape == valid.shape == (1, 8, 28, 28) and torch.allclose(sim, torch.ones_like(sim))
    without_colors = RoIFrameInputs(inputs.proposal_boxes, inputs.gt_boxes, 28)
    with pytest.raises(ValueError, match="BoxSupervisedROIHeads"):
        without_colors.color_graph(3, 2)


def test_roi_context_ring_anchors_the_box_filled_mask_to_background():
    from wsis_d2.modeling.losses import pairwise_color_loss
    from wsis_d2.modeling.roi_heads import RoIFrameInputs

    # 4 x 4 RoI grid on a 4 x 4 px proposal, 1 context cell (3 x 3 edges at dilation 1), uniform colour
    proposal = torch.tensor([[10.0, 10.0, 14.0, 14.0]])
    inputs = RoIFrameInputs(proposal, proposal.clone(), 4, roi_lab=torch.zeros((1, 3, 6, 6)))
    box_filled = torch.full((1, 1, 4, 4), 10.0)
    logits, in_box = inputs.graph_logits(box_filled)
    assert logits.shape == (1, 1, 6, 6) and in_box[0, 0].sum() == 16 and in_box[0, 0, 1:5, 1:5].all()
    sim, valid = inputs.color_graph(3, 1)
    loss = pairwise_color_loss(logits, (sim >= 0.3) & valid, in_box, 3, 1)
    # 128 edges start in the box: 84 stay inside (both ends fg), 44 reach the background ring
    p = torch.sigmoid(torch.tensor(10.0))
    inside = -torch.log(p * p + (1 - p) * (1 - p))
    crossing = -torch.log(1 - p)
    assert loss.item() == pytest.approx(((84 * inside + 44 * crossing) / 128).item(), rel=1e-4)
    # a GT box reaching 2 px beyond the proposal on the right: those context cells are unknown
    wider = RoIFrameInputs(proposal, torch.tensor([[10.0, 10.0, 16.0, 14.0]]), 4, roi_lab=torch.zeros((1, 3, 6, 6)))
    _, valid = wider.color_graph(3, 1)
    right = 4  # neighbour offset (0, +1)
    assert not valid[0, right, 1:5, 4].any() and valid[0, right, 1:5, 3].all()
    assert valid[0, 1, 1, 1:5].all()  # edges up into the ring (outside the GT box) count
    # ring cells outside the image have no colour: their edges do not count either
    in_image = torch.ones((1, 1, 6, 6), dtype=torch.bool)
    in_image[:, :, 0, :] = False
    clipped = RoIFrameInputs(proposal, proposal.clone(), 4, roi_lab=torch.zeros((1, 3, 6, 6)), roi_in_image=in_image)
    _, valid = clipped.color_graph(3, 1)
    assert not valid[0, 1, 1, 1:5].any() and valid[0, 6, 4, 1:5].all()


def test_roi_colors_mark_ring_cells_outside_the_image(tiny_shapes):
    from detectron2.structures import ImageList

    cfg = small_config("BoxInst/MaskRCNN_R18_shapes.yaml", train="tiny_box")
    heads = Trainer.build_model(cfg).roi_heads
    images = ImageList(torch.zeros((1, 3, 64, 64)), [(40, 64)])  # rows 40.. are batch padding
    proposals = [Instances((40, 64), proposal_boxes=Boxes(torch.tensor([[0.0, 12.0, 28.0, 40.0]])))]
    heads._attach_roi_colors(images, proposals)
    in_image = proposals[0].roi_in_image[0, 0]  # 32 x 32: 28 cells of 1 px + a 2-cell ring
    assert proposals[0].roi_lab.shape == (1, 3, 32, 32) and in_image.shape == (32, 32)
    assert not in_image[:, :2].any() and in_image[:, 2:].all(dim=1)[2:30].all()  # left ring: x < 0
    assert not in_image[30:].any() and in_image[:30, 2:].all()  # bottom ring: y > 40 (padding)


def test_box_supervised_roi_head_edge_cases(tiny_shapes):
    cfg = small_config("BoxInst/MaskRCNN_R18_shapes.yaml", train="tiny_box")
    head = Trainer.build_model(cfg).roi_heads.mask_head
    empty = Instances((64, 64), proposal_boxes=Boxes(torch.zeros((0, 4))), gt_boxes=Boxes(torch.zeros((0, 4))),
                      gt_classes=torch.zeros(0, dtype=torch.long), roi_lab=torch.zeros((0, 3, 28, 28)))
    head.train()
    with EventStorage(0):
        losses = head(torch.zeros((0, 64, 14, 14)), [empty])
    assert set(losses) == {"loss_prj", "loss_pairwise"} and all(v.item() == 0 for v in losses.values())
    cfg.MODEL.ROI_MASK_HEAD.MASK_LOSSES = ["ProjectionLoss", "LevelSetLoss"]
    with pytest.raises(ValueError, match="LevelSetLoss needs full-image logits"):
        Trainer.build_model(cfg)

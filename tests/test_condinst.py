import copy

import pytest
import torch
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

from wsis_d2.engine.trainer import Trainer
from wsis_d2.modeling.condinst.condinst import select_top_positives_per_instance
from wsis_d2.modeling.condinst.dynamic_mask_head import DynamicMaskHead, dynamic_head_param_count
from wsis_d2.modeling.fcos.fcos import FCOSPositives
from wsis_d2.modeling.losses import ImageFrameInputs, dice_loss

from .conftest import small_config


def test_param_count_matches_the_paper():
    assert dynamic_head_param_count(8, 8, 3) == 169
    assert dynamic_head_param_count(16, 8, 3) == 233


def test_dynamic_head_relative_coordinates_hand_case():
    """One linear layer that returns the x relative coordinate: (x_inst - x) / soi."""
    head = DynamicMaskHead(in_channels=1, channels=8, num_layers=1, sizes_of_interest=[64])
    params = torch.tensor([[1.0, 0.0, 0.0, 0.5]])  # w_relx, w_rely, w_feat, bias
    feats = torch.zeros((1, 1, 2, 3))
    out = head(feats, 8, torch.tensor([0]), torch.tensor([[12.0, 4.0]]), torch.tensor([0]), params)
    xs = torch.tensor([4.0, 12.0, 20.0])
    assert torch.allclose(out[0, 0], ((12.0 - xs) / 64 + 0.5).expand(2, 3))
    level1 = head(feats, 8, torch.tensor([0]), torch.tensor([[12.0, 4.0]]), torch.tensor([1]), params)
    assert torch.allclose(level1[0, 0, 0], (12.0 - xs) / 128 + 0.5)  # last level: 2 x last boundary
    assert head(feats, 8, torch.zeros(0).long(), torch.zeros((0, 2)), torch.zeros(0).long(),
                torch.zeros((0, 4))).shape == (0, 1, 2, 3)


def test_dice_loss_hand_case_and_gradient():
    p = torch.tensor([[1.0, 0.0, 0.5, 0.5]], requires_grad=True)
    t = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    loss = dice_loss(p, t)
    assert torch.isclose(loss, torch.tensor([1 - 3 / 3.5]), atol=1e-5).all()
    loss.sum().backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert dice_loss(torch.zeros((1, 4)), torch.zeros((1, 4))).item() == pytest.approx(1.0)


def test_gt_masks_are_area_pooled_to_the_logit_stride():
    m = torch.zeros((1, 6, 8), dtype=torch.bool)
    m[0, :4, :2] = True
    inst = Instances((6, 8), gt_masks=BitMasks(m))
    inputs = ImageFrameInputs([Instances((6, 8), gt_masks=BitMasks(torch.zeros((0, 6, 8)))), inst],
                              im_inds=torch.tensor([1]), gt_inds=torch.tensor([0]), stride=4, padded_size=(8, 8))
    out = inputs.gt_masks()
    assert out.shape == (1, 1, 2, 2)
    assert out[0, 0].tolist() == [[0.5, 0.0], [0.0, 0.0]]


def test_topk_positives_per_instance():
    pos = FCOSPositives(im_inds=torch.tensor([0, 0, 0, 0, 1]), gt_inds=torch.tensor([0, 0, 0, 1, 0]),
                        locations=torch.zeros((5, 2)), levels=torch.zeros(5).long(), top_feats=torch.zeros((5, 1)),
                        scores=torch.tensor([0.1, 0.9, 0.5, 0.2, 0.3]))
    gts = [Instances((1, 1), gt_classes=torch.zeros(2)), Instances((1, 1), gt_classes=torch.zeros(1))]
    kept = select_top_positives_per_instance(pos, gts, topk_per_image=2)  # 1 per GT in image 0
    assert sorted(kept.scores.tolist()) == pytest.approx([0.2, 0.3, 0.9])


@pytest.fixture(scope="module")
def model_and_batch(tiny_shapes):
    torch.manual_seed(0)
    cfg = small_config()
    model = Trainer.build_model(cfg)
    batch = next(iter(Trainer.build_train_loader(cfg)))
    return cfg, model, batch


def test_forward_backward(model_and_batch):
    _, model, batch = model_and_batch
    model.train()
    with EventStorage(0):
        losses = model(batch)
    assert set(losses) == {"loss_fcos_cls", "loss_fcos_loc", "loss_fcos_ctr", "loss_mask"}
    assert all(torch.isfinite(v) for v in losses.values())
    model.zero_grad()
    sum(losses.values()).backward()
    for module in (model.fcos.head.extra, model.mask_branch, model.backbone):
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0


def test_image_without_instances_in_the_batch(model_and_batch):
    _, model, batch = model_and_batch
    batch = copy.deepcopy(batch)
    h, w = batch[0]["image"].shape[-2:]
    # as detectron2's loader yields an image without annotations: no gt_masks field at all
    batch[0]["instances"] = Instances((h, w), gt_boxes=Boxes(torch.zeros((0, 4))),
                                      gt_classes=torch.zeros(0, dtype=torch.long))
    model.train()
    with EventStorage(0):
        losses = model(batch)
    assert all(torch.isfinite(v) for v in losses.values())
    for d in batch:
        d["instances"] = d["instances"][:0]
    with EventStorage(0):
        losses = model(batch)
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_mask"].item() == 0


def test_inference_outputs_at_the_requested_size(model_and_batch):
    _, model, batch = model_and_batch
    model.eval()
    # a nearly untrained model scores low: lower the threshold so masks are produced
    model.fcos.score_thresh = 0.0
    inputs = [{"image": batch[0]["image"], "height": 50, "width": 70}, {"image": batch[1]["image"]}]
    with torch.no_grad():
        out = model(inputs)
    model.fcos.score_thresh = 0.05
    first, second = out[0]["instances"], out[1]["instances"]
    assert first.image_size == (50, 70) and first.pred_masks.shape[1:] == (50, 70)
    assert first.pred_masks.dtype == torch.bool and len(first) > 0
    assert (first.pred_boxes.tensor[:, 2] <= 70).all() and (first.pred_boxes.tensor[:, 3] <= 50).all()
    assert second.pred_masks.shape[1:] == tuple(batch[1]["image"].shape[-2:])
    assert (first.scores[:-1] >= first.scores[1:]).all() or len(first.pred_classes.unique()) > 1


def test_dice_loss_refuses_a_box_only_view(tiny_shapes):
    cfg = small_config(train="tiny_box")
    model = Trainer.build_model(cfg)
    batch = next(iter(Trainer.build_train_loader(cfg)))
    with EventStorage(0), pytest.raises(ValueError, match="needs GT masks, but the data view has none"):
        model(batch)

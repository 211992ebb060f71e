"""PointSup: the point loss (hand cases, frames, gradients), both detectors, the views tool."""
import json
import math

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.data import transforms as T
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from wsis_d2.cli import main as cli_main
from wsis_d2.data.mapper import points_to_tensors
from wsis_d2.data.views import sample_box_points
from wsis_d2.engine.trainer import Trainer
from wsis_d2.modeling.losses import ImageFrameInputs, point_loss, sample_at_points
from wsis_d2.modeling.roi_heads.box_supervised import RoIFrameInputs

from .conftest import check_empty_image_and_tiny_boxes, small_config


def _bce(logit, label):
    return math.log1p(math.exp(-logit)) if label == 1 else math.log1p(math.exp(logit))


def test_point_loss_hand_case_integer_and_half_pixel_points():
    # 2 x 2 logits; cell centres at normalised 0.25 / 0.75
    logits = torch.tensor([[[[0.0, 2.0], [4.0, 6.0]]]], requires_grad=True)
    coords = torch.tensor([[[0.25, 0.25], [0.75, 0.25], [0.5, 0.5], [0.5, 0.25], [0.25, 0.75]]])
    labels = torch.tensor([[1.0, 0.0, 1.0, 0.0, -1.0]])
    # at cell centres: the logit itself; half-way: the bilinear mean
    assert sample_at_points(logits, coords)[0, 0].tolist() == pytest.approx([0.0, 2.0, 3.0, 1.0, 4.0])
    loss = point_loss(logits, coords, labels)
    expected = (_bce(0.0, 1) + _bce(2.0, 0) + _bce(3.0, 1) + _bce(1.0, 0)) / 4  # the -1 point ignored
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    # d/dz of the mean BCE at one point is (sigmoid(z) - y) / 4, spread with the bilinear weights
    s = torch.sigmoid
    g00 = (s(torch.tensor(0.0)) - 1) / 4 + 0.25 * (s(torch.tensor(3.0)) - 1) / 4 + 0.5 * s(torch.tensor(1.0)) / 4
    assert logits.grad[0, 0, 0, 0].item() == pytest.approx(g00.item(), rel=1e-5)
    assert logits.grad[0, 0, 1, 0].item() == pytest.approx((0.25 * (s(torch.tensor(3.0)) - 1) / 4).item(), rel=1e-5)


def test_point_loss_edge_cases():
    empty = torch.zeros((0, 1, 4, 4), requires_grad=True)
    loss = point_loss(empty, torch.zeros((0, 3, 2)), torch.zeros((0, 3)))
    assert loss.item() == 0 and loss.requires_grad
    logits = torch.randn(2, 1, 4, 4, requires_grad=True)
    all_ignored = point_loss(logits, torch.rand(2, 3, 2), torch.full((2, 3), -1.0))
    all_ignored.backward()
    assert all_ignored.item() == 0 and logits.grad.abs().sum() == 0


def test_image_frame_points_land_on_their_logit_cells():
    # padded batch 16 x 24, logits at stride 4 (4 x 6); a point at input pixel (x, y) is read
    # from the cell covering it; cell (j, i) has its centre at (4i + 2, 4j + 2)
    inst = Instances((16, 24), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 24.0, 16.0]])),
                     gt_classes=torch.tensor([0]),
                     gt_point_coords=torch.tensor([[[6.0, 2.0], [22.0, 14.0], [8.0, 4.0]]]),
                     gt_point_labels=torch.tensor([[1.0, 0.0, 1.0]]))
    empty = Instances((16, 24), gt_boxes=Boxes(torch.zeros((0, 4))), gt_classes=torch.zeros(0, dtype=torch.long))
    inputs = ImageFrameInputs([empty, inst], torch.tensor([1]), torch.tensor([0]), stride=4, padded_size=(16, 24))
    coords, labels = inputs.points()
    logits = torch.arange(24, dtype=torch.float32).view(1, 1, 4, 6)
    values = sample_at_points(logits, coords)[0, 0]
    # (6, 2) -> cell (0, 1) = 1; (22, 14) -> cell (3, 5) = 23; (8, 4) -> corner of cells 1, 2, 7, 8
    assert values.tolist() == pytest.approx([1.0, 23.0, (1 + 2 + 7 + 8) / 4])
    assert labels.tolist() == [[1.0, 0.0, 1.0]]


def test_roi_frame_points_follow_the_flip_and_leave_the_roi_ignored():
    # one object in a 10 x 20 (h x w) image, flipped: x -> 20 - x
    anno = {"bbox": [2.0, 1.0, 8.0, 6.0], "bbox_mode": 1, "category_id": 0,
            "point_coords": [[3.5, 2.5], [9.5, 6.5]], "point_labels": [1, 0]}
    coords, labels = points_to_tensors([anno], T.TransformList([T.HFlipTransform(width=20)]), (10, 20))
    assert coords[0].tolist() == [[16.5, 2.5], [10.5, 6.5]]
    # flipped box [10, 1, 18, 7]; a RoI of 4 x 4 cells over [10, 1, 18, 5] sees the first point only
    frame = RoIFrameInputs(torch.tensor([[10.0, 1.0, 18.0, 5.0]]), torch.tensor([[10.0, 1.0, 18.0, 7.0]]), 4,
                           point_coords=coords, point_labels=labels)
    roi_coords, roi_labels = frame.points()
    assert roi_coords[0, 0].tolist() == pytest.approx([6.5 / 8, 1.5 / 4])
    assert roi_labels.tolist() == [[1.0, -1.0]]  # (10.5, 6.5) lies below the RoI
    # the first point sits at x = 6.5 / 8 * 4 = 3.25 cells: between cell centres 2.5 and 3.5
    logits = torch.arange(16, dtype=torch.float32).view(1, 1, 4, 4)
    value = sample_at_points(logits, roi_coords)[0, 0, 0].item()
    assert value == pytest.approx(4 * 1.0 + 2 + 0.75)  # row y = 1.5 cells (centre of row 1), x between 2 and 3


def test_points_per_instance_keeps_the_first_points():
    anno = {"point_coords": [[1.5, 1.5], [2.5, 2.5], [3.5, 3.5]], "point_labels": [1, 0, 1]}
    coords, labels = points_to_tensors([anno], T.TransformList([]), (10, 10), points_per_instance=2)
    assert coords.shape == (1, 2, 2) and labels.tolist() == [[1.0, 0.0]]


POINTSUP_CONFIGS = {"PointSup/CondInst_R18_shapes.yaml": "loss_point",
                    "PointSup/MaskRCNN_R18_shapes.yaml": "loss_point"}


@pytest.mark.parametrize("config", list(POINTSUP_CONFIGS))
def test_trains_from_points_without_masks(tiny_shapes, config):
    cfg = small_config(config, train="tiny_point")
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    batch = next(iter(Trainer.build_train_loader(cfg)))
    assert all(not d["instances"].has("gt_masks") and d["instances"].has("gt_point_coords") for d in batch)
    with EventStorage(0):
        losses = model(batch)
    assert POINTSUP_CONFIGS[config] in losses and "loss_mask" not in losses
    assert all(torch.isfinite(v) for v in losses.values()) and losses["loss_point"] > 0
    losses["loss_point"].backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0


@pytest.mark.parametrize("config", list(POINTSUP_CONFIGS))
def test_no_annotations_and_tiny_boxes(tiny_shapes, config):
    check_empty_image_and_tiny_boxes(small_config(config, train="tiny_point"), iteration=0)


def test_point_models_refuse_a_mask_reading_loss_and_need_points(tiny_shapes):
    cfg = small_config("PointSup/CondInst_R18_shapes.yaml", train="tiny_point")
    cfg.MODEL.CONDINST.MASK_LOSSES = ["PointLoss", "DiceMaskLoss"]
    with pytest.raises(ValueError, match="DiceMaskLoss reads"):
        Trainer.build_model(cfg)
    cfg = small_config("PointSup/MaskRCNN_R18_shapes.yaml", train="tiny_point")
    cfg.MODEL.ROI_MASK_HEAD.MASK_LOSSES = ["DiceMaskLoss"]
    with pytest.raises(ValueError, match="DiceMaskLoss reads"):
        Trainer.build_model(cfg)
    # a point model fed a box view says what is missing
    cfg = small_config("PointSup/MaskRCNN_R18_shapes.yaml", train="tiny_box")
    model = Trainer.build_model(cfg)
    batch = next(iter(Trainer.build_train_loader(cfg)))
    with EventStorage(0), pytest.raises(ValueError, match="needs labelled points"):
        model(batch)


def test_sample_box_points_float_boxes_stay_inside():
    mask = np.zeros((20, 20), bool)
    mask[5:10, 5:10] = True
    rng = np.random.default_rng(0)
    for bbox in ([4.7, 4.2, 6.1, 6.6], [3.2, 3.9, 0.3, 0.2], [18.4, 0.0, 5.0, 2.0]):
        coords, labels = sample_box_points(mask, bbox, 50, rng)
        xs, ys = np.array(coords).T
        assert (xs >= bbox[0]).all() and (xs <= bbox[0] + bbox[2]).all()
        assert (ys >= bbox[1]).all() and (ys <= bbox[1] + bbox[3]).all()
        assert labels == [int(mask[int(y), min(int(x), 19)]) for x, y in coords]


def test_views_tool(tiny_shapes, tmp_path):
    src = tmp_path / "mine.json"
    full = json.loads(open(tiny_shapes["files"]["full"]).read())
    src.write_text(json.dumps(full))
    before = src.read_text()
    assert cli_main(["views", "--input", str(src), "--views", "box,point,semi_50", "--num-points", "4"]) == 0
    assert src.read_text() == before
    point = json.loads((tmp_path / "mine_point.json").read_text())
    box = json.loads((tmp_path / "mine_box.json").read_text())
    assert all("segmentation" not in a for a in point["annotations"] + box["annotations"])
    assert all("point_coords" not in a for a in box["annotations"])
    masks = {a["id"]: mask_util.decode(a["segmentation"]) for a in full["annotations"]}
    for a in point["annotations"]:
        assert len(a["point_coords"]) == 4
        assert a["point_labels"] == [int(masks[a["id"]][int(y), int(x)]) for x, y in a["point_coords"]]
    # seeded: the same command again gives the same points; an existing output is kept unless asked
    with pytest.raises(SystemExit, match="exists"):
        cli_main(["views", "--input", str(src), "--views", "point", "--num-points", "4"])
    cli_main(["views", "--input", str(src), "--views", "point", "--num-points", "4", "--overwrite"])
    assert json.loads((tmp_path / "mine_point.json").read_text()) == point
    # a view of a box-only file needs masks
    with pytest.raises(SystemExit, match="annotation id .* has no field 'segmentation'"):
        cli_main(["views", "--input", str(tmp_path / "mine_box.json"), "--views", "point",
                  "--output-dir", str(tmp_path / "out")])
    with pytest.raises(SystemExit):
        cli_main(["views", "--input", str(src), "--views", "scribble"])

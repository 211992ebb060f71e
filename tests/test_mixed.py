"""Mixed supervision per object (MODEL.MIXED_SUPERVISION): each mask loss trains exactly the instances
that carry its labels; the data keeps the kinds apart; teachers take real masks; the mixed view and
its label cost."""
import itertools
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import BitMasks, Boxes, Instances
from detectron2.utils.events import EventStorage

from wsis_d2.config import ConfigError, add_wsis_config
from wsis_d2.data.cli import views_main
from wsis_d2.data.config_checks import check_training_supervision, supervision_counts
from wsis_d2.data.mapper import WSISDatasetMapper
from wsis_d2.data.rle import decode, encode_mask
from wsis_d2.data.sampling import build_masked_image_sampler, masked_image_repeat_factors
from wsis_d2.data.views import mixed_view, parse_view
from wsis_d2.engine.trainer import Trainer
from wsis_d2.modeling.losses import (DiceMaskLoss, ImageFrameInputs, PairwiseColorLoss, PointLoss, ProjectionLoss,
                                     dice_loss, point_loss, projection_loss)
from wsis_d2.modeling.losses.per_object import apply_mask_losses, configured_mask_losses, kinds_trained
from wsis_d2.modeling.teacher import TeacherStudent
from wsis_d2.report.label_cost import supervision

from .conftest import small_config

S = 4  # logit stride
H = W = 32


def loss_cfg():
    cfg = get_cfg()
    add_wsis_config(cfg)
    cfg.MODEL.BOXINST.PAIRWISE.WARMUP_ITERS = 0  # full weight from iteration 0
    cfg.MODEL.BOXINST.BOTTOM_PIXELS_REMOVED = 0
    return cfg


def all_losses():
    cfg = loss_cfg()
    return [DiceMaskLoss(cfg), ProjectionLoss(cfg), PairwiseColorLoss(cfg), PointLoss(cfg)]


BOXES = torch.tensor([[2.0, 3.0, 18.0, 20.0], [10.0, 8.0, 30.0, 28.0], [4.0, 12.0, 24.0, 30.0]])
POINTS = torch.tensor([[[6.0, 20.0], [20.0, 14.0], [12.0, 28.0]]] * 3)
POINT_LABELS = torch.tensor([[1.0, 0.0, 1.0]] * 3)


def instance_fields(kinds, placeholder_fill=0.0):
    """GT fields of one H x W image whose instance i is ``kinds[i]`` ("mask", "box" or "points"), as the
    mapper makes them for a mixed image: placeholders (``placeholder_fill``) for masks not drawn, -1 for
    points not clicked, and the flags."""
    n = len(kinds)
    masks = torch.full((n, H, W), placeholder_fill)
    real = torch.zeros((n, H, W))
    real[:, 6:18, 4:16] = 1.0  # the drawn mask
    has_mask = torch.tensor([k == "mask" for k in kinds])
    has_points = torch.tensor([k == "points" for k in kinds])
    masks[has_mask] = real[has_mask]
    labels = torch.where(has_points[:, None], POINT_LABELS[:n], torch.full_like(POINT_LABELS[:n], -1.0))
    return dict(gt_boxes=Boxes(BOXES[:n].clone()), gt_classes=torch.zeros(n, dtype=torch.long),
                gt_masks=BitMasks(masks > 0.5), gt_has_mask=has_mask, gt_point_coords=POINTS[:n].clone(),
                gt_point_labels=labels, gt_has_points=has_points)


def image():
    """Two flat colours (left, right) with a little noise: similar-coloured edges on either side."""
    torch.manual_seed(1)
    img = torch.empty(1, 3, H, W)
    img[..., : W // 2] = torch.tensor([40.0, 120.0, 200.0])[:, None, None]
    img[..., W // 2:] = torch.tensor([200.0, 60.0, 30.0])[:, None, None]
    return (img + torch.rand(1, 3, H, W) * 4).round()


def frame(fields: dict, raw=None):
    """ImageFrameInputs of one image holding ``fields`` (every instance has logits)."""
    n = len(fields["gt_boxes"])
    inst = Instances((H, W), **fields)
    return ImageFrameInputs([inst], torch.zeros(n, dtype=torch.long), torch.arange(n), S,
                            raw_images=image() if raw is None else raw, image_sizes=[(H, W)],
                            original_heights=[H], iteration=100)


def only(fields: dict, rows) -> dict:
    """The fields of the instances ``rows`` alone, without flags (what a single-kind view gives)."""
    return {k: v[rows] for k, v in fields.items() if k not in ("gt_has_mask", "gt_has_points")}


def logits_for(n):
    torch.manual_seed(0)
    return (torch.randn(n, 1, H // S, W // S) * 2).requires_grad_()


def test_one_instance_of_each_kind_gets_exactly_its_losses():
    fields = instance_fields(["mask", "box", "points"])
    logits = logits_for(3)
    losses = apply_mask_losses(all_losses(), logits, frame(fields), per_object=True)

    # by hand, each on the instances of its kind alone
    mask_target = torch.nn.functional.avg_pool2d(fields["gt_masks"].tensor[:1, None].float(), S)
    assert torch.allclose(losses["loss_mask"], dice_loss(logits[:1].sigmoid(), mask_target).mean())
    assert torch.allclose(losses["loss_prj"], projection_loss(logits[1:].sigmoid(), BOXES[1:], S).mean())
    box_only = frame(only(fields, [1, 2]))
    assert torch.allclose(losses["loss_pairwise"], PairwiseColorLoss(loss_cfg())(logits[1:], box_only)["loss_pairwise"])
    coords = POINTS[2:] / torch.tensor([W, H])
    assert torch.allclose(losses["loss_point"], point_loss(logits[2:], coords, POINT_LABELS[2:]))
    assert all(v > 0 for v in losses.values())

    # gradients reach only the right instances' logits
    reached = {}
    for name, value in losses.items():
        grad, = torch.autograd.grad(value, logits, retain_graph=True)
        reached[name] = [bool(g.abs().sum() > 0) for g in grad]
    assert reached == {"loss_mask": [True, False, False], "loss_prj": [False, True, True],
                       "loss_pairwise": [False, True, True], "loss_point": [False, False, True]}


def test_a_placeholder_mask_or_point_is_never_read():
    logits = logits_for(3)
    base = apply_mask_losses(all_losses(), logits, frame(instance_fields(["mask", "box", "points"])), True)
    changed = instance_fields(["mask", "box", "points"], placeholder_fill=1.0)  # full placeholder masks
    changed["gt_point_labels"][:2] = 1.0  # and "points" on the mask and box objects (flags still False)
    other = apply_mask_losses(all_losses(), logits, frame(changed), True)
    assert set(base) == set(other) and all(torch.equal(base[k], other[k]) for k in base)


def test_all_box_batch_equals_boxinst():
    fields = only(instance_fields(["box", "box", "box"]), [0, 1, 2])
    del fields["gt_masks"], fields["gt_point_coords"], fields["gt_point_labels"]  # the box view's fields
    logits = logits_for(3)
    mixed = apply_mask_losses(all_losses(), logits, frame(fields), True)
    cfg = loss_cfg()
    boxinst = apply_mask_losses([ProjectionLoss(cfg), PairwiseColorLoss(cfg)], logits, frame(fields))
    assert torch.equal(mixed["loss_prj"], boxinst["loss_prj"]) and mixed["loss_prj"] > 0
    assert torch.equal(mixed["loss_pairwise"], boxinst["loss_pairwise"]) and mixed["loss_pairwise"] > 0
    assert mixed["loss_mask"] == 0 and mixed["loss_point"] == 0


def test_all_mask_batch_equals_condinst():
    fields = only(instance_fields(["mask", "mask", "mask"]), [0, 1, 2])
    del fields["gt_point_coords"], fields["gt_point_labels"]  # the full view's fields
    logits = logits_for(3)
    mixed = apply_mask_losses(all_losses(), logits, frame(fields), True)
    condinst = apply_mask_losses([DiceMaskLoss()], logits, frame(fields))
    assert torch.equal(mixed["loss_mask"], condinst["loss_mask"]) and mixed["loss_mask"] > 0
    assert mixed["loss_prj"] == 0 and mixed["loss_pairwise"] == 0 and mixed["loss_point"] == 0


@pytest.mark.parametrize("kinds, zero", [
    (["box", "box"], {"loss_mask", "loss_point"}),
    (["mask", "mask"], {"loss_prj", "loss_pairwise", "loss_point"}),
    (["mask", "points"], {"loss_point"} - {"loss_point"}),  # every loss has an instance
    ([], {"loss_mask", "loss_prj", "loss_pairwise", "loss_point"}),
])
def test_a_kind_without_instances_gives_zero_without_nan(kinds, zero):
    fields = instance_fields(kinds) if kinds else {
        "gt_boxes": Boxes(torch.zeros((0, 4))), "gt_classes": torch.zeros(0, dtype=torch.long)}
    logits = logits_for(len(kinds))
    losses = apply_mask_losses(all_losses(), logits, frame(fields), True)
    total = sum(losses.values())
    assert torch.isfinite(total) and total.requires_grad
    grad, = torch.autograd.grad(total, logits)
    assert torch.isfinite(grad).all()
    assert {k for k, v in losses.items() if v == 0} == zero


def test_two_images_one_without_masks_or_points():
    """A batch of a mixed image and a box-only image (no mask or point fields at all): each loss reads
    only the images its instances are in."""
    mixed = Instances((H, W), **instance_fields(["mask", "points"]))
    box = Instances((H, W), gt_boxes=Boxes(BOXES[1:2].clone()), gt_classes=torch.zeros(1, dtype=torch.long))
    inputs = ImageFrameInputs([mixed, box], torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0]), S,
                              raw_images=torch.cat([image(), image()]), image_sizes=[(H, W)] * 2,
                              original_heights=[H, H], iteration=100)
    assert inputs.has_masks().tolist() == [True, False, False]
    assert inputs.has_points().tolist() == [False, True, False]
    logits = logits_for(3)
    losses = apply_mask_losses(all_losses(), logits, inputs, True)
    assert torch.allclose(losses["loss_prj"], projection_loss(logits[1:].sigmoid(), BOXES[[1, 1]], S).mean())
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())


def test_teacher_uses_the_real_mask_where_there_is_one():
    gt = Instances((H, W), **instance_fields(["mask", "box", "points"]))
    pseudo = torch.full((3, H, W), 0.3)
    weights = torch.tensor([0.4, 0.6, 0.0])
    mixed = SimpleNamespace(student=SimpleNamespace(mixed_supervision=True))
    masks, new_weights, real = TeacherStudent.with_real_masks(mixed, gt, pseudo, weights)
    assert real.tolist() == [True, False, False]
    assert torch.equal(masks[0], gt.gt_masks.tensor[0].float()) and torch.equal(masks[1:], pseudo[1:])
    assert new_weights.tolist() == pytest.approx([1.0, 0.6, 0.0])
    # not mixed-supervised: the teacher's masks stay
    plain = SimpleNamespace(student=SimpleNamespace(mixed_supervision=False))
    masks, new_weights, real = TeacherStudent.with_real_masks(plain, gt, pseudo, weights)
    assert torch.equal(masks, pseudo) and torch.equal(new_weights, weights) and not real.any()


def coco_of_three():
    """One 40 x 40 image: a mask object, a box-only object, a box + points object."""
    mask = np.zeros((40, 40), np.uint8)
    mask[5:15, 5:20] = 1
    return {
        "images": [{"id": 1, "file_name": "a.png", "height": 40, "width": 40}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 15, 10], "area": 150.0, "iscrowd": 0,
             "segmentation": encode_mask(mask)},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 20, 10, 10], "area": 100.0, "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [2, 25, 8, 10], "area": 80.0, "iscrowd": 0,
             "point_coords": [[4.5, 27.5], [8.5, 33.5]], "point_labels": [1, 0]},
        ]}


def test_mapper_keeps_the_kinds_apart():
    coco = coco_of_three()
    annos = [dict(a, bbox_mode=utils.BoxMode.XYWH_ABS) for a in coco["annotations"]]
    mapper = WSISDatasetMapper(is_train=True, augmentations=[T.NoOpTransform()], image_format="BGR",
                               use_instance_mask=True, instance_mask_format="polygon", recompute_boxes=True)
    d = {"annotations": annos}
    mapper._transform_annotations(d, T.TransformList([]), (40, 40))
    inst = d["instances"]
    assert inst.gt_has_mask.tolist() == [True, False, False]
    assert inst.gt_has_points.tolist() == [False, False, True]
    assert inst.gt_masks.tensor[0].sum() == 150 and inst.gt_masks.tensor[1:].sum() == 0  # no box filled in
    assert (inst.gt_point_labels[:2] == -1).all() and inst.gt_point_labels[2].tolist() == [1.0, 0.0]
    # boxes of objects without masks are the annotated ones, not their empty placeholders'
    assert inst.gt_boxes.tensor[1:].tolist() == [[20.0, 20.0, 30.0, 30.0], [2.0, 25.0, 10.0, 35.0]]


def test_mixed_view_chooses_per_object_and_nests(tiny_shapes):
    coco = json.load(open(tiny_shapes["root"] + "/annotations/train_all.json"))
    n = len(coco["annotations"])
    v10, v25 = mixed_view(coco, 10, 20), mixed_view(coco, 25, 0)
    kinds = {}
    for a in v10["annotations"]:
        kinds[a["id"]] = "mask" if "segmentation" in a else "points" if "point_coords" in a else "box"
    assert v10["info"]["objects"] == {"mask": round(0.1 * n), "points": round(0.2 * n),
                                      "box": n - round(0.1 * n) - round(0.2 * n)}
    assert sum(k == "mask" for k in kinds.values()) == round(0.1 * n)
    masks25 = {a["id"] for a in v25["annotations"] if "segmentation" in a}
    assert {i for i, k in kinds.items() if k == "mask"} <= masks25  # a larger share keeps the smaller's
    images_with_both = {a["image_id"] for a in v10["annotations"] if "segmentation" in a} & \
        {a["image_id"] for a in v10["annotations"] if "segmentation" not in a}
    assert images_with_both  # chosen per object, not per image
    sizes = {im["id"]: (im["height"], im["width"]) for im in coco["images"]}
    originals = {a["id"]: a for a in coco["annotations"]}
    for a in v10["annotations"]:
        if kinds[a["id"]] != "mask":
            assert a["area"] == a["bbox"][2] * a["bbox"][3]  # no mask statistic
        if kinds[a["id"]] == "points":
            mask = decode(originals[a["id"]]["segmentation"], *sizes[a["image_id"]])
            assert len(a["point_coords"]) == 10
            assert a["point_labels"] == [int(mask[int(y), int(x)]) for x, y in a["point_coords"]]
    assert parse_view("mixed_10_0") == ("mixed", (10.0, 0.0))
    for bad in ("mixed_60_50", "mixed_10", "mixed_a_b"):
        with pytest.raises(ValueError, match="unknown view"):
            parse_view(bad)


def test_views_command_writes_a_mixed_view(tiny_shapes, tmp_path, capsys):
    views_main(["--input", tiny_shapes["files"]["full"], "--views", "mixed_10_0,mixed_20_30",
                "--output-dir", str(tmp_path)])
    data = json.loads((tmp_path / "train_full_mixed_10_0.json").read_text())
    assert data["info"]["supervision"] == "mixed_10_0" and data["info"]["objects"]["points"] == 0
    assert "mixed_20_30" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="exists"):  # never over an existing file
        views_main(["--input", tiny_shapes["files"]["full"], "--views", "mixed_10_0", "--output-dir", str(tmp_path)])


def test_label_cost_prices_each_mix():
    assert supervision({"train_set": "shapes_mixed_10_0"}) == ("mixed", pytest.approx(0.1 * 79.2 + 0.9 * 7))
    assert supervision({"train_set": "shapes_mixed_10_10"}) == \
        ("mixed_points", pytest.approx(0.1 * 79.2 + 0.1 * 15 + 0.8 * 7))
    assert supervision({"train_set": "shapes_mixed_0_0"})[1] == pytest.approx(7.0)  # BoxInst's cost
    assert supervision({"train_set": "shapes_mixed_100_0"})[1] == pytest.approx(79.2)  # CondInst-full's


def test_training_labels_are_checked_against_the_losses(tiny_shapes):
    dicts = DatasetCatalog.get("tiny_mixed_25_10")
    counts = supervision_counts(dicts)
    assert counts["mask"] and counts["points_no_mask"] and counts["box"]
    # one kind everywhere (today's models): refused, in one line
    plain = small_config(train="tiny_mixed_25_10")
    losses = configured_mask_losses(plain)
    with pytest.raises(ConfigError, match=r"only \d+ of its \d+ annotations have a segmentation.*MIXED_SUPERVISION"):
        check_training_supervision(plain, dicts, ["tiny_mixed_25_10"], losses,
                                   {n: kinds_trained(l) for n, l in losses.items()})
    # mixed, but no loss for the box-only objects
    cfg = small_config("Mixed/CondInst_R18_shapes.yaml", train="tiny_mixed_25_10")
    cfg.MODEL.CONDINST.MASK_LOSSES = ["DiceMaskLoss", "PointLoss"]
    losses = configured_mask_losses(cfg)
    with pytest.raises(ConfigError, match="have a box alone, but none of the mask losses"):
        check_training_supervision(cfg, dicts, ["tiny_mixed_25_10"], losses,
                                   {n: kinds_trained(l) for n, l in losses.items()})
    # the shipped mixed config covers every kind
    cfg = small_config("Mixed/CondInst_R18_shapes.yaml", train="tiny_mixed_25_10")
    losses = configured_mask_losses(cfg)
    check_training_supervision(cfg, dicts, ["tiny_mixed_25_10"], losses,
                               {n: kinds_trained(l) for n, l in losses.items()})
    # the trainer runs the check
    with pytest.raises(ConfigError, match="MIXED_SUPERVISION"):
        Trainer.build_train_loader(plain)


@pytest.mark.parametrize("config", ["Mixed/CondInst_R18_shapes.yaml", "Mixed/MaskRCNN_R18_shapes.yaml"])
def test_mixed_model_trains_a_step(config, tiny_shapes):
    cfg = small_config(config, train="tiny_mixed_25_10")
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    batch = next(iter(Trainer.build_train_loader(cfg)))
    with EventStorage(100):
        losses = model(batch)
    assert {"loss_mask", "loss_prj", "loss_pairwise", "loss_point"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    if hasattr(model, "mask_branch"):  # CondInst: the mask losses reach its mask branch
        grads = [p.grad for p in model.mask_branch.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_mask_rcnn_roi_frame_gives_each_kind_its_losses():
    from wsis_d2.modeling.losses import MaskBCELoss
    from wsis_d2.modeling.roi_heads import RoIFrameInputs

    m, c = 8, 2
    proposals = torch.tensor([[0.0, 0.0, 16.0, 16.0]] * 3)
    gt_boxes = torch.tensor([[2.0, 2.0, 12.0, 14.0]] * 3)
    torch.manual_seed(2)
    lab = torch.rand(3, 3, m + 2 * c, m + 2 * c) * 5
    targets = torch.zeros(3, m, m)
    targets[:, 2:6, 1:5] = 1.0
    coords = torch.tensor([[[4.0, 4.0], [14.0, 14.0]]] * 3)
    labels = torch.tensor([[1.0, 0.0], [-1.0, -1.0], [1.0, 0.0]])
    labels[0] = -1.0
    has_mask, has_points = torch.tensor([True, False, False]), torch.tensor([False, False, True])

    def roi_frame(rows, flags=True, fake=0.0):
        t = targets.clone()
        t[~has_mask] = fake  # placeholders of objects without masks
        return RoIFrameInputs(proposals[rows], gt_boxes[rows], m, roi_lab=lab[rows],
                              point_coords=coords[rows], point_labels=labels[rows], iteration=100,
                              gt_mask_targets=t[rows], has_mask=has_mask[rows] if flags else None,
                              has_points=has_points[rows] if flags else None)

    cfg = loss_cfg()
    losses_ = [MaskBCELoss(cfg), ProjectionLoss(cfg), PairwiseColorLoss(cfg), PointLoss(cfg)]
    logits = logits_for(3)[:, :, :m, :m].detach().requires_grad_()
    every = [0, 1, 2]
    losses = apply_mask_losses(losses_, logits, roi_frame(every), True)
    assert torch.allclose(losses["loss_mask"],
                          torch.nn.functional.binary_cross_entropy_with_logits(logits[:1], targets[:1, None]))
    boxes_only = roi_frame([1, 2], flags=False)
    assert torch.allclose(losses["loss_prj"], ProjectionLoss(cfg)(logits[1:], boxes_only)["loss_prj"])
    assert torch.allclose(losses["loss_pairwise"], PairwiseColorLoss(cfg)(logits[1:], boxes_only)["loss_pairwise"])
    assert torch.allclose(losses["loss_point"], PointLoss(cfg)(logits[2:], roi_frame([2], flags=False))["loss_point"])
    reached = {}
    for name, value in losses.items():
        assert value > 0, name
        grad, = torch.autograd.grad(value, logits, retain_graph=True)
        reached[name] = [bool(g.abs().sum() > 0) for g in grad]
    assert reached == {"loss_mask": [True, False, False], "loss_prj": [False, True, True],
                       "loss_pairwise": [False, True, True], "loss_point": [False, False, True]}
    # the placeholder targets are never read
    other = apply_mask_losses(losses_, logits, roi_frame(every, fake=1.0), True)
    assert all(torch.equal(losses[k], other[k]) for k in losses)


def test_detectron2s_mask_head_is_refused_on_mixed_data(tiny_shapes):
    """Its BCE would read the placeholders as masks: the check names the first kind it cannot train."""
    plain = small_config("MaskRCNN/R18_shapes.yaml", train="tiny_mixed_25_10", MODEL__MIXED_SUPERVISION="True")
    with pytest.raises(ConfigError, match=r"objects have a box and points, but none of the mask losses \['mask BCE'\]"):
        Trainer.build_train_loader(plain)


def test_images_with_masks_are_repeated_in_each_epoch(tiny_shapes):
    records = [{"annotations": [{"bbox": [0, 0, 4, 4]}, {"bbox": [1, 1, 4, 4], "segmentation": [[1, 1, 4, 1, 4, 4]]}]},
               {"annotations": [{"bbox": [0, 0, 4, 4]}]},
               {"annotations": []},
               {"annotations": [{"bbox": [0, 0, 4, 4], "iscrowd": 1, "segmentation": [[0, 0, 4, 0, 4, 4]]}]}]
    assert masked_image_repeat_factors(records, 3.0).tolist() == [3.0, 1.0, 1.0, 1.0]  # a crowd mask is no mask
    assert masked_image_repeat_factors(records, 1.0).tolist() == [1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ConfigError, match="must be >= 1"):
        masked_image_repeat_factors(records, 0.5)
    with pytest.raises(ConfigError, match="no training image has a drawn mask"):
        masked_image_repeat_factors(records[1:], 2.0)
    with pytest.raises(ConfigError, match="every training image has a drawn mask"):
        masked_image_repeat_factors(records[:1], 2.0)

    dicts = DatasetCatalog.get("tiny_mixed_25_10")
    masked = [i for i, d in enumerate(dicts) if any("segmentation" in a for a in d["annotations"])]
    assert 0 < len(masked) < len(dicts)
    cfg = small_config("Mixed/CondInst_R18_shapes.yaml", train="tiny_mixed_25_10", DATALOADER__MASKED_IMAGE_REPEAT="3.0")
    sampler = build_masked_image_sampler(cfg, dicts)
    # an integer factor repeats each masked image exactly 3 times within an epoch, the others once
    epoch = list(itertools.islice(iter(sampler), 3 * len(masked) + len(dicts) - len(masked)))
    assert [epoch.count(i) for i in range(len(dicts))] == [3 if i in masked else 1 for i in range(len(dicts))]
    cfg.DATALOADER.MASKED_IMAGE_REPEAT = 1.0
    assert build_masked_image_sampler(cfg, dicts) is None  # detectron2's own sampler
    cfg.DATALOADER.MASKED_IMAGE_REPEAT = 3.0
    cfg.DATALOADER.SAMPLER_TRAIN = "RepeatFactorTrainingSampler"
    with pytest.raises(ConfigError, match="cannot be combined with DATALOADER.SAMPLER_TRAIN"):
        build_masked_image_sampler(cfg, dicts)
    # the trainer builds its loader with it: refused on a set where every image has masks
    with pytest.raises(ConfigError, match="every training image has a drawn mask"):
        Trainer.build_train_loader(small_config(train="tiny_full", DATALOADER__MASKED_IMAGE_REPEAT="3.0"))
    batch = next(iter(Trainer.build_train_loader(small_config("Mixed/CondInst_R18_shapes.yaml", train="tiny_mixed_25_10",
                                                              DATALOADER__MASKED_IMAGE_REPEAT="3.0"))))
    assert len(batch) == 2

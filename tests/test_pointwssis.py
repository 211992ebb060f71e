"""PointWSSIS pieces: MaskRefineNet, heat-maps, crops, point-to-mask matching."""
import pytest
import torch

from wsis_d2.modeling.losses import dice_loss
from wsis_d2.modeling.pointwssis import MaskRefineNet, match_points_to_masks, point_heatmaps
from wsis_d2.modeling.pointwssis.crops import crop_boxes, crop_inputs, paste_masks


def test_mask_refine_net_shapes_and_bad_input():
    net = MaskRefineNet(num_classes=6, width=8, depth=3)
    out = net(torch.zeros((2, 3 + 1 + 7, 32, 32)))
    assert out.shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="expects 11 input channels"):
        net(torch.zeros((1, 5, 32, 32)))
    with pytest.raises(ValueError, match="divisible by 8"):
        net(torch.zeros((1, 11, 30, 30)))


def test_point_heatmaps_are_class_wise():
    maps = point_heatmaps(torch.tensor([[4.5, 2.5]]), torch.tensor([2]), num_classes=3, size=8, sigma=1.0)
    assert maps.shape == (1, 4, 8, 8)
    assert maps[0, 0, 2, 4] == 1.0 and torch.equal(maps[0, 0], maps[0, 3])  # peak at its pixel; class 2 -> channel 3
    assert maps[0, 1].sum() == 0 and maps[0, 2].sum() == 0


def test_mask_refine_net_overfits_a_toy_case():
    torch.manual_seed(0)
    target = torch.zeros((1, 1, 32, 32))
    target[..., 8:24, 10:22] = 1.0
    rough = torch.zeros_like(target)
    rough[..., 6:26, 6:26] = 1.0  # a too-big teacher mask
    image = target.repeat(1, 3, 1, 1) * 0.8 + 0.1
    heat = point_heatmaps(torch.tensor([[16.0, 16.0]]), torch.tensor([0]), 1, 32)
    x = torch.cat([image, rough, heat], dim=1)
    net = MaskRefineNet(num_classes=1, width=8, depth=2)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(40):
        loss = dice_loss(net(x).sigmoid(), target).mean()
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 < first


def test_crops_round_trip_and_keep_the_point():
    image = torch.zeros((3, 40, 60))
    masks = torch.zeros((1, 40, 60))
    masks[0, 10:20, 20:40] = 1.0
    boxes = torch.tensor([[20.0, 10.0, 40.0, 20.0]])
    point = torch.tensor([[45.0, 15.0]])  # outside the box: the crop grows to hold it
    crops = crop_boxes(boxes, point, 1.0)
    assert crops.tolist() == [[20.0, 10.0, 46.0, 20.0]]
    crops = crop_boxes(boxes, point, 2.0)
    assert crops.tolist() == [[10.0, 5.0, 50.0, 25.0]]
    _, mask_crops, crop_points = crop_inputs(image, masks, crops, point, 32)
    assert crop_points[0].tolist() == pytest.approx([(45 - 10) * 32 / 40, (15 - 5) * 32 / 20])
    pasted = paste_masks(mask_crops, crops, 40, 60)
    assert ((pasted[0] > 0.5) == (masks[0] > 0.5)).float().mean() > 0.98


def test_point_matching_hand_cases():
    masks = torch.zeros((3, 10, 10), dtype=torch.bool)
    masks[0, 0:6, 0:6] = True   # class 0, score .9
    masks[1, 3:10, 3:10] = True  # class 0, score .5: overlaps mask 0
    masks[2, 0:4, 6:10] = True   # class 1, score .8
    classes, scores = torch.tensor([0, 0, 1]), torch.tensor([0.9, 0.5, 0.8])
    points = torch.tensor([[4.5, 4.5],   # class 0, in masks 0 and 1
                           [8.5, 9.5],   # class 0, in mask 1 only
                           [7.5, 1.5],   # class 0, in mask 2 only (wrong class): no match
                           [1.5, 8.5],   # class 1, in no mask
                           [2.5, 2.5]])  # class 0, in mask 0 only, nearer its centre than point 0
    point_classes = torch.tensor([0, 0, 0, 1, 0])
    match = match_points_to_masks(points, point_classes, masks, classes, scores)
    # by score: mask 0 covers points 0 and 4 and takes point 4 (nearer its centre (3, 3)); mask 2
    # covers no point of its class; mask 1 covers points 0 and 1 and takes point 0 (nearer its
    # centre (6.5, 6.5)): one mask per point, so point 1 is left without one
    assert match.tolist() == [1, -1, -1, -1, 0]
    assert match_points_to_masks(points, point_classes, masks[:0], classes[:0], scores[:0]).tolist() == [-1] * 5


def test_teacher_checkpoints_are_final_and_mid_schedule(tmp_path):
    from wsis_d2.pipelines.pointwssis import teacher_checkpoints

    final = str(tmp_path / "model_final.pth")
    assert teacher_checkpoints(str(tmp_path), 400) == [final]  # no periodic checkpoint
    for name in ("model_0000099.pth", "model_0000199.pth", "model_0000299.pth", "model_final.pth", "last_checkpoint"):
        (tmp_path / name).touch()
    assert teacher_checkpoints(str(tmp_path), 400) == [final, str(tmp_path / "model_0000199.pth")]
    assert teacher_checkpoints(str(tmp_path), 1000) == [final, str(tmp_path / "model_0000299.pth")]
    # a periodic checkpoint at the last iteration is the final weights again
    assert teacher_checkpoints(str(tmp_path), 100) == [final]


def test_box_consistency_and_the_rough_mask_choice():
    from wsis_d2.modeling.pointwssis.rough_select import box_consistency, keep_teacher_masks

    masks = torch.zeros((3, 10, 12), dtype=torch.bool)
    masks[0, 2:6, 3:9] = True  # spans exactly the box [3, 2, 9, 6]
    masks[1, 2:4, 3:6] = True  # covers its top-left quarter: tight box [3, 2, 6, 4]
    boxes = torch.tensor([[3.0, 2.0, 9.0, 6.0]]).repeat(3, 1)
    assert box_consistency(masks, boxes).tolist() == pytest.approx([1.0, 6 / 24, 0.0])
    # the teacher's mask wins only where it spans the box better than the prior; ties keep the prior
    teacher, prior = masks[[0, 1, 0]], masks[[1, 0, 0]]
    assert keep_teacher_masks(teacher, prior, boxes).tolist() == [True, False, False]
    assert box_consistency(masks[:0], boxes[:0]).shape == (0,)


class _PassThroughRefiner(torch.nn.Module):
    """A 'MaskRefineNet' that returns its rough-mask channel: shows which rough mask a point got."""

    num_classes = 2

    def forward(self, x):
        return (x[:, 3:4] - 0.5) * 40


def _disc_image(tmp_path):
    import cv2
    import numpy as np

    h, w = 64, 80
    image = np.full((h, w, 3), (40, 160, 40), np.uint8)  # green field
    yy, xx = np.mgrid[:h, :w]
    disc = (yy + 0.5 - 32) ** 2 + (xx + 0.5 - 40) ** 2 <= 14 ** 2
    image[disc] = (200, 40, 200)  # a purple disc, its box [26, 18, 54, 46]
    cv2.imwrite(str(tmp_path / "img.png"), image)
    coco = {"images": [{"id": 1, "file_name": "img.png", "height": h, "width": w}]}
    weak = {1: [{"id": 7, "image_id": 1, "category_id": 2, "bbox": [26, 18, 28, 28], "iscrowd": 0,
                 "point_coords": [[40.5, 32.5]], "point_labels": [1]}]}
    return coco, weak, torch.as_tensor(disc)


def _teacher(masks, h=64, w=80):
    from detectron2.structures import Boxes, Instances

    def predict(_):
        pred = Instances((h, w))
        pred.pred_masks = masks.clone()
        pred.pred_mask_probs = masks.float()
        pred.pred_classes = torch.ones(len(masks), dtype=torch.long)
        pred.scores = torch.full((len(masks),), 0.9)
        pred.pred_boxes = Boxes(torch.zeros((len(masks), 4)))
        return pred

    return predict


def test_pseudo_labels_choose_between_the_teacher_and_the_box_prior(tmp_path):
    from wsis_d2.data.rle import decode
    from wsis_d2.pipelines.pointwssis import pseudo_label

    coco, weak, disc = _disc_image(tmp_path)

    def label(masks, target=disc):
        """IoU of the object's pseudo mask with ``target``, and the stats."""
        annotations, stats = pseudo_label(_teacher(masks), _PassThroughRefiner(), coco, weak, str(tmp_path),
                                          {1: 0, 2: 1}, 64, "semi.json")
        mask = torch.as_tensor(decode(annotations[0]["segmentation"], 64, 80))
        return float((mask & target).sum() / (mask | target).sum()), stats

    # no teacher prediction: GrabCut from the box and the point
    iou, stats = label(torch.zeros((0, 64, 80), dtype=torch.bool))
    assert iou > 0.9 and stats == {"weak_objects": 1, "matched_to_teacher": 0, "teacher_masks_kept": 0,
                                   "box_prior_masks": 1}
    # a teacher mask on the point that covers a third of the box: the (box-spanning) prior wins
    part = torch.zeros((1, 64, 80), dtype=torch.bool)
    part[0, 26:38, 34:46] = True
    iou, stats = label(part)
    assert iou > 0.9 and stats["matched_to_teacher"] == 1 and stats["teacher_masks_kept"] == 0
    # an object whose right part has the background's colour (camouflage): GrabCut cuts the visible
    # disc only and misses the box's right side; the teacher's mask spans the box and wins
    whole = disc.clone()
    whole[18:46, 40:68] = True
    weak[1][0]["bbox"] = [26, 18, 42, 28]
    iou, stats = label(whole[None], target=whole)
    assert stats["teacher_masks_kept"] == 1 and iou > 0.95


def test_refiner_pairs_are_the_rough_masks_step_3_would_use(tmp_path):
    from wsis_d2.data.rle import encode_mask
    from wsis_d2.pipelines.pointwssis import _refiner_pairs

    coco, weak, disc = _disc_image(tmp_path)
    whole = disc.clone()
    whole[18:46, 40:68] = True  # the camouflaged object of the test above: GrabCut misses its right part
    strong = {"images": coco["images"],
              "annotations": [{"id": 7, "image_id": 1, "category_id": 2, "bbox": [26, 18, 42, 28], "iscrowd": 0,
                               "segmentation": encode_mask(whole.numpy())}]}
    spanning, partial = whole[None].clone(), torch.zeros((1, 64, 80), dtype=torch.bool)
    partial[0, 26:38, 34:46] = True
    pairs = _refiner_pairs([_teacher(spanning), _teacher(partial), _teacher(partial[:0])], strong, str(tmp_path),
                           {1: 0, 2: 1}, "strong.json")
    # the prior's pair, plus the spanning teacher's (kept over the prior); the partial one and the
    # empty teacher add none
    assert len(pairs) == 2
    image_id, rough, gt, centre, cls, bbox = pairs[1]
    assert image_id == 1 and cls == 1 and torch.equal(rough.bool(), whole) and torch.equal(gt.bool(), whole)
    assert bbox.tolist() == [26, 18, 42, 28] and whole[int(centre[1]), int(centre[0])]
    assert not torch.equal(pairs[0][1].bool(), whole)  # the prior's rough mask


TINY = ["MODEL.DEVICE", "cpu", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.MAX_ITER", "2", "SOLVER.WARMUP_ITERS", "1",
        "SOLVER.CHECKPOINT_PERIOD", "1", "DATALOADER.NUM_WORKERS", "0", "INPUT.MIN_SIZE_TRAIN", "(128,)",
        "INPUT.MIN_SIZE_TEST", "128", "DATASETS.TEST", "('tiny_val',)", "WSIS.VIS_NUM_IMAGES", "0",
        "MODEL.FCOS.INFERENCE_TH", "0.0"]


def test_pipeline_runs_end_to_end_and_resumes(tiny_shapes, tmp_path):
    import json

    from pycocotools.coco import COCO

    from wsis_d2.model_zoo import get_config_file
    from wsis_d2.pipelines.pointwssis import run_pipeline

    semi = tiny_shapes["files"]["semi_50"]
    out = tmp_path / "pw"
    config = get_config_file("CondInst/R18_shapes.yaml")
    results = run_pipeline(semi, tiny_shapes["root"], config, str(out), TINY, refiner_iters=2, crop_size=32)
    assert "segm" in results
    pseudo = json.loads((out / "pseudo" / "pseudo_labels.json").read_text())
    coco = json.loads(open(semi).read())
    strong = set(coco["info"]["fully_labelled_image_ids"])
    assert len(pseudo["annotations"]) == len(coco["annotations"])  # every weak object got a mask
    assert all("segmentation" in a and "point_coords" not in a for a in pseudo["annotations"])
    stats = pseudo["info"]["pointwssis"]
    assert stats["weak_objects"] == sum(a["image_id"] not in strong for a in coco["annotations"])
    assert stats["teacher_masks_kept"] + stats["box_prior_masks"] == stats["weak_objects"]
    assert stats["teacher_masks_kept"] <= stats["matched_to_teacher"] <= stats["weak_objects"]
    COCO(str(out / "pseudo" / "pseudo_labels.json"))  # valid for pycocotools
    # a rerun skips the finished steps (their outputs stay untouched) and redoes the unfinished one
    (out / "student" / "DONE.json").unlink()
    kept = [out / "teacher" / "model_final.pth", out / "refiner" / "model_final.pth",
            out / "pseudo" / "pseudo_labels.json"]
    before = [p.stat().st_mtime_ns for p in kept]
    run_pipeline(semi, tiny_shapes["root"], config, str(out), TINY, refiner_iters=2, crop_size=32)
    assert [p.stat().st_mtime_ns for p in kept] == before and (out / "student" / "DONE.json").exists()


def test_pipeline_refuses_a_file_that_is_not_a_semi_view(tiny_shapes, tmp_path):
    from wsis_d2.data.checks import AnnotationError
    from wsis_d2.pipelines.pointwssis import run_pipeline

    with pytest.raises(AnnotationError, match="info.fully_labelled_image_ids"):
        run_pipeline(tiny_shapes["files"]["full"], tiny_shapes["root"], "unused.yaml", str(tmp_path), TINY)


def test_pipeline_refuses_to_resume_with_other_inputs(tiny_shapes, tmp_path):
    import json

    from wsis_d2.pipelines.pointwssis import run_pipeline

    (tmp_path / "PIPELINE.json").write_text(json.dumps({"semi_json": "/elsewhere/train_semi_5.json"}))
    with pytest.raises(ValueError, match="holds a PointWSSIS run with other inputs"):
        run_pipeline(tiny_shapes["files"]["semi_50"], tiny_shapes["root"], "unused.yaml", str(tmp_path), TINY)
    with pytest.raises(ValueError, match="divisible by 8"):
        run_pipeline(tiny_shapes["files"]["semi_50"], tiny_shapes["root"], "unused.yaml", str(tmp_path), TINY,
                     crop_size=30)


def test_pointwssis_command_registers_the_evaluation_set_and_names_bad_files(tiny_shapes, tmp_path, monkeypatch,
                                                                             capsys):
    from detectron2.data import DatasetCatalog

    from wsis_d2.cli import main as cli_main
    from wsis_d2.pipelines import cli as pointwssis_cli

    calls = []
    monkeypatch.setattr(pointwssis_cli, "run_pipeline", lambda *args: calls.append(args) or {"segm": {}})
    semi, val = tiny_shapes["files"]["semi_50"], tiny_shapes["files"]["val"]
    run = ["pointwssis", "--semi-json", semi, "--image-root", tiny_shapes["root"], "--output-dir", str(tmp_path)]
    cli_main(run + ["--val-json", val])
    opts = calls[0][4]
    val_name = opts[opts.index("DATASETS.TEST") + 1].strip("(',)")
    assert val_name.startswith("pointwssis_val_") and opts[opts.index("MODEL.FCOS.NUM_CLASSES") + 1] == "6"
    assert len(DatasetCatalog.get(val_name)) == 4  # the tiny val images, loaded with the checks
    other_val = tmp_path / "val_copy.json"
    other_val.write_text(open(val).read())
    cli_main(run + ["--val-json", str(other_val)])  # another file: another name in the run's recorded inputs
    assert calls[1][4][opts.index("DATASETS.TEST") + 1] != f"('{val_name}',)"
    with pytest.raises(SystemExit):
        cli_main(run)
    assert "name the evaluation set: --val-json VAL.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(run + ["--val-json", str(tmp_path / "nope.json")])
    assert "nope.json: no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"\x89PNG")
    with pytest.raises(SystemExit, match=r"^error: .*broken.json: not valid JSON"):
        cli_main(["pointwssis", "--semi-json", str(broken), "--image-root", tiny_shapes["root"],
                  "DATASETS.TEST", "('x',)"])
    assert len(calls) == 2

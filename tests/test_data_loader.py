import torch
from detectron2.data import DatasetCatalog
from detectron2.data import transforms as T

from wsis_d2.data.mapper import WSISDatasetMapper, points_to_tensors
from wsis_d2.engine.trainer import Trainer

from .conftest import small_config


def _first_batch(view):
    cfg = small_config(train=f"tiny_{view}")
    return next(iter(Trainer.build_train_loader(cfg)))


def test_full_view_yields_masks(tiny_shapes):
    for d in _first_batch("full"):
        inst = d["instances"]
        assert inst.has("gt_masks") and not inst.has("gt_point_coords")
        assert inst.gt_masks.tensor.shape[-2:] == d["image"].shape[-2:]


def test_box_view_yields_no_masks_and_no_points(tiny_shapes):
    for d in _first_batch("box"):
        inst = d["instances"]
        assert len(inst) > 0 and inst.has("gt_boxes")
        assert not inst.has("gt_masks") and not inst.has("gt_point_coords")


def test_point_view_yields_points_but_no_masks(tiny_shapes):
    for d in _first_batch("point"):
        inst = d["instances"]
        assert not inst.has("gt_masks")
        assert inst.gt_point_coords.shape == (len(inst), 10, 2)
        assert inst.gt_point_labels.shape == (len(inst), 10)
        assert set(inst.gt_point_labels.unique().tolist()) <= {-1.0, 0.0, 1.0}


def test_point_labels_still_agree_with_masks_after_augmentation(tiny_shapes):
    """Map each image from the full and the point view with the same flip + resize."""
    cfg = small_config()
    full = {d["image_id"]: d for d in DatasetCatalog.get("tiny_full")}
    mapper = WSISDatasetMapper(cfg, is_train=True)
    mapper.augmentations = T.AugmentationList([T.ResizeShortestEdge(150, 400), T.RandomFlip(prob=1.0)])
    agree, total = 0, 0
    for point in DatasetCatalog.get("tiny_point"):
        masks = mapper(dict(full[point["image_id"]]))["instances"].gt_masks.tensor
        with_points = mapper(dict(point))["instances"]
        for m, c, lab in zip(masks, with_points.gt_point_coords, with_points.gt_point_labels):
            for (x, y), label in zip(c.tolist(), lab.tolist()):
                if label >= 0:
                    total += 1
                    agree += int(m[int(y), int(x)].item() == bool(label))
    # resizing moves mask borders by up to a pixel; far more than chance must agree
    assert total > 100 and agree / total > 0.9


def test_points_are_flipped_and_those_leaving_the_image_ignored():
    annos = [{"point_coords": [[1.5, 2.5], [9.5, 0.5]], "point_labels": [1, 0]},
             {"point_coords": [[5.0, 5.0]], "point_labels": [1]}]
    # flip x -> 10 - x, then double the height (h 10 -> 20, w stays 10): y -> 2y
    tfm = T.TransformList([T.HFlipTransform(width=10), T.ResizeTransform(10, 10, 20, 10)])
    coords, labels = points_to_tensors(annos, tfm, (20, 10))
    assert torch.allclose(coords[0], torch.tensor([[8.5, 5.0], [0.5, 1.0]]))
    assert torch.allclose(coords[1, 0], torch.tensor([5.0, 10.0]))
    assert labels.tolist() == [[1.0, 0.0], [1.0, -1.0]]  # padded slot ignored
    shifted = T.TransformList([T.ResizeTransform(10, 10, 10, 10)])
    _, lab = points_to_tensors([{"point_coords": [[12.0, 3.0]], "point_labels": [1]}], shifted, (10, 10))
    assert lab.tolist() == [[-1.0]]


def test_images_without_annotations_follow_filter_empty_annotations(tiny_shapes, tmp_path):
    import json

    from wsis_d2.data.register import register_wsis_coco_instances

    coco = json.load(open(tiny_shapes["files"]["full"]))
    empty_image = coco["images"][0]["id"]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] != empty_image]
    path = tmp_path / "with_empty.json"
    path.write_text(json.dumps(coco))
    register_wsis_coco_instances("tiny_with_empty", {}, str(path), tiny_shapes["root"])
    dicts = DatasetCatalog.get("tiny_with_empty")
    assert len(dicts) == 8 and any(len(d["annotations"]) == 0 for d in dicts)
    from detectron2.data.build import get_detection_dataset_dicts

    assert len(get_detection_dataset_dicts(["tiny_with_empty"], filter_empty=True)) == 7
    assert len(get_detection_dataset_dicts(["tiny_with_empty"], filter_empty=False)) == 8
    DatasetCatalog.remove("tiny_with_empty")

"""``wsis-d2 convert`` for annotation-tool exports: YOLO txt, CVAT XML / COCO, labelme boxes and clicks.

Hand-made tiny files; the outputs are loaded through the project's loader and, for the model that
reads them (BoxInst: boxes only; PointSup: boxes + points), trained on for one step.
"""
import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
from PIL import Image

from wsis_d2.config import ConfigError
from wsis_d2.cli import main
from wsis_d2.convert import convert_cvat_xml, convert_labelme, convert_yolo, fix_cvat_coco
from wsis_d2.convert.objects import point_label
from wsis_d2.data.checks import AnnotationError, check_coco_instances


def _image(path, width=40, height=20):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)


# ------------------------------------------------------------------ YOLO
@pytest.fixture
def yolo_root(tmp_path):
    """Ultralytics layout: data.yaml, images/train/{a.png, b.png}, labels/train/{a.txt, c.txt}."""
    root = tmp_path / "ds"
    _image(root / "images" / "train" / "a.png")  # 40 x 20
    _image(root / "images" / "train" / "b.png")  # no label file: a background image
    (root / "labels" / "train").mkdir(parents=True)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nnames:\n  0: cat\n  1: dog\n")
    (root / "labels" / "train" / "a.txt").write_text("\n".join([
        "0 0.5 0.5 0.5 0.5",  # box: centre (20, 10), 20 x 10
        "1 0.25 0.25 0.75 0.25 0.75 0.75 0.25 0.75",  # polygon (10, 5) (30, 5) (30, 15) (10, 15)
        "0 0.1 0.2 0.3",  # 4 values
        "5 0.5 0.5 0.1 0.1",  # no class 5
        "0 1.5 0.5 0.1 0.1",  # not normalised
        "1 0.1 0.1 0.2 0.2 0.3",  # an odd number of coordinates
    ]) + "\n")
    (root / "labels" / "train" / "c.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # no image c.*
    return root


def test_yolo_boxes_become_box_only_and_polygons_masks(yolo_root):
    labels = yolo_root / "labels" / "train"
    coco, report = convert_yolo(str(labels))  # images and names found from the layout
    assert coco["categories"] == [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}]
    assert [im["file_name"] for im in coco["images"]] == ["a.png", "b.png"]
    assert (coco["images"][0]["height"], coco["images"][0]["width"]) == (20, 40)
    box, polygon = coco["annotations"]
    assert "segmentation" not in box  # never a filled box
    assert box["bbox"] == [10.0, 5.0, 20.0, 10.0] and box["area"] == 200.0 and box["category_id"] == 1
    mask = mask_util.decode(polygon["segmentation"]).astype(bool)
    # the COCO polygon 10..30 x 5..15 covers the pixels 10..29 x 5..14
    assert mask.sum() == 200 and mask[5:15, 10:30].all() and polygon["category_id"] == 2
    assert polygon["bbox"] == [10.0, 5.0, 20.0, 10.0]
    reasons = "\n".join(report.skipped)
    assert f"{labels / 'a.txt'} line 3: 4 values: neither a box" in reasons
    assert f"{labels / 'a.txt'} line 4: class 5 is not one of the 2 class indices" in reasons
    assert f"{labels / 'a.txt'} line 5: coordinates outside [0, 1]" in reasons
    assert f"{labels / 'a.txt'} line 6: 6 values" in reasons
    assert f"{labels / 'c.txt'}: no image c." in reasons
    assert len(report.skipped) == 5
    notes = "\n".join(report.notes)
    assert "b.png: no label file (kept as an image without objects)" in notes
    assert "1 objects with masks and 1 with boxes only" in notes
    check_coco_instances(coco, "yolo", str(yolo_root / "images" / "train"))


def test_yolo_names_from_classes_txt_and_missing_names(tmp_path):
    _image(tmp_path / "img" / "x.jpg", 10, 10)
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "x.txt").write_text("0 0.5 0.5 1 1\n")
    with pytest.raises(FileNotFoundError, match="no class names .*pass --names"):
        convert_yolo(str(tmp_path / "lab"), str(tmp_path / "img"))
    (tmp_path / "lab" / "classes.txt").write_text("nucleus\n")
    coco, report = convert_yolo(str(tmp_path / "lab"), str(tmp_path / "img"))
    assert coco["categories"] == [{"id": 1, "name": "nucleus"}] and report.skipped == []
    assert coco["annotations"][0]["bbox"] == [0.0, 0.0, 10.0, 10.0]
    (tmp_path / "bad.yaml").write_text("names: [a, b, a]\n")
    with pytest.raises(ValueError, match="bad.yaml: class name\\(s\\) a given more than once"):
        convert_yolo(str(tmp_path / "lab"), str(tmp_path / "img"), str(tmp_path / "bad.yaml"))


def test_convert_command_yolo_refuses_to_overwrite(yolo_root, tmp_path, capsys):
    out = tmp_path / "yolo.json"
    main(["convert", "--format", "yolo-seg", "--input", str(yolo_root / "labels" / "train"), "--output", str(out)])
    printed = capsys.readouterr().out
    assert "2 images, 2 objects, 2 categories, 5 skipped" in printed and "line 3: 4 values" in printed
    assert json.loads(out.read_text())["info"]["conversion"]["skipped"] == 5
    with pytest.raises(SystemExit):
        main(["convert", "--format", "yolo", "--input", str(yolo_root / "labels" / "train"), "--output", str(out)])
    assert "exists; pass --overwrite" in capsys.readouterr().err
    label = yolo_root / "labels" / "train" / "a.txt"
    with pytest.raises(SystemExit):  # --overwrite never replaces an input
        main(["convert", "--format", "yolo", "--input", str(label.parent), "--output", str(label), "--overwrite"])
    assert "is the input file" in capsys.readouterr().err and label.read_text().startswith("0 0.5")
    with pytest.raises(SystemExit, match="no images folder beside it"):
        main(["convert", "--format", "yolo", "--input", str(tmp_path), "--output", str(tmp_path / "x.json")])


# ------------------------------------------------------------------ labelme boxes and clicked points
def _labelme(folder, name, shapes, width=40, height=20):
    _image(folder / f"{name}.png", width, height)
    (folder / f"{name}.json").write_text(json.dumps({"imagePath": f"{name}.png", "imageHeight": height,
                                                     "imageWidth": width, "shapes": shapes}))


def _rect(label, x0, y0, x1, y1, group=None):
    return {"label": label, "points": [[x1, y1], [x0, y0]], "shape_type": "rectangle", "group_id": group}


def _point(label, x, y, group=None):
    return {"label": label, "points": [[x, y]], "shape_type": "point", "group_id": group}


@pytest.fixture
def labelme_clicks(tmp_path):
    folder = tmp_path / "lm"
    folder.mkdir()
    _labelme(folder, "a", [
        _rect("cat", 2, 2, 12, 12),  # object 1
        _rect("dog", 10, 5, 30, 18, group=7),  # object 2, overlapping the cat on x 10..12, y 5..12
        _point("cat", 4, 4),  # positive: its label is its box's class
        _point("neg", 3, 11),  # negative, in the cat box only
        _point("positive", 20, 15),  # positive, in the dog box only
        _point("dog-neg", 11, 6, group=7),  # in both boxes, linked by group_id to the dog: negative
        _point("pos", 11, 8),  # in both boxes, no link: ambiguous, reported
        _point("pos", 35, 2),  # in no box
        _point("horse", 5, 5),  # a label that is neither positive nor negative
        _point("dog", 20, 16, group=3),  # group 3 has no box: geometry decides (the dog box)
    ])
    _labelme(folder, "b", [_rect("cat", 1, 1, 9, 9)])  # no click: empty point lists
    return folder


def test_labelme_rectangles_are_boxes_and_points_join_their_box(labelme_clicks):
    coco, report = convert_labelme(str(labelme_clicks))
    cat, dog, lone = coco["annotations"]
    for ann in (cat, dog, lone):
        assert "segmentation" not in ann
    assert cat["bbox"] == [2.0, 2.0, 10.0, 10.0] and cat["area"] == 100.0
    assert dog["bbox"] == [10.0, 5.0, 20.0, 13.0]
    assert cat["point_coords"] == [[4.0, 4.0], [3.0, 11.0]] and cat["point_labels"] == [1, 0]
    assert dog["point_coords"] == [[20.0, 15.0], [11.0, 6.0], [20.0, 16.0]] and dog["point_labels"] == [1, 0, 1]
    assert lone["point_coords"] == [] and lone["point_labels"] == []
    shape = str(labelme_clicks / "a.json") + " shape"
    reasons = "\n".join(report.skipped)
    assert f"{shape} 6 (pos): point [11, 8] (pos) lies in 2 boxes (cat [2, 2, 12, 12], dog [10, 5, 30, 18])" in reasons
    assert f"{shape} 7 (pos): point [35, 2] (pos) lies in no box" in reasons
    # "horse" is no class of this file: geometry puts it in the cat box, whose class it is not
    assert f"{shape} 8 (horse): point label 'horse' is neither positive" in reasons
    assert len(report.skipped) == 3
    assert any("1 of 3 objects have no clicked point" in n for n in report.notes)
    check_coco_instances(coco, "labelme", str(labelme_clicks))


def test_point_label_convention():
    assert [point_label(s, "cat") for s in ("cat", "Positive", "pos", "fg", "+")] == [1] * 5
    assert [point_label(s, "cat") for s in ("negative", "NEG", "bg", "background", "cat-neg", "dog_neg")] == [0] * 6
    assert point_label("dog", "cat") is None


def test_point_linked_to_an_object_it_lies_outside_is_reported(tmp_path):
    _labelme(tmp_path, "a", [_rect("cat", 2, 2, 12, 12, group=1), _point("pos", 30, 15, group=1),
                             {"label": "cat", "points": [[20, 2], [30, 2], [25, 10]], "shape_type": "polygon"},
                             _point("cat", 25, 5)])
    coco, report = convert_labelme(str(tmp_path))
    box, area = coco["annotations"]
    assert "segmentation" not in box and "segmentation" in area  # a polygon keeps its mask
    assert box["point_coords"] == [] and area["point_coords"] == [[25.0, 5.0]] and area["point_labels"] == [1]
    assert report.skipped == [f"{tmp_path / 'a.json'} shape 1 (pos): point [30, 15] (pos) lies outside the box of "
                              "the object cat [2, 2, 12, 12] its group_id 1 links it to"]


# ------------------------------------------------------------------ CVAT
CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><name>t</name></task></meta>
  <image id="0" name="a.png" width="40" height="20">
    <box label="cat" source="manual" occluded="0" xtl="2.00" ytl="2.00" xbr="12.00" ybr="12.00" z_order="0"/>
    <polygon label="dog" occluded="0" points="20.00,4.00;30.00,4.00;30.00,14.00;20.00,14.00" z_order="0"/>
    <points label="positive" occluded="0" points="5.00,5.00;25.00,10.00;39.00,19.00" z_order="0"/>
    <points label="negative" occluded="0" points="11.00,11.00" z_order="0"/>
    <polyline label="dog" occluded="0" points="1.00,1.00;5.00,5.00" z_order="0"/>
    <mask label="dog" rle="3, 2" left="1" top="1" width="2" height="2" z_order="0"/>
  </image>
  <image id="1" name="b.png" width="40" height="20">
  </image>
  <image id="3" name="c.png" width="40" height="20">
    <box label="cat" xtl="10" ytl="6" xbr="20" ybr="10" rotation="90.0"/>
  </image>
  <image id="2" name="missing.png" width="40" height="20">
    <box label="cat" xtl="1" ytl="1" xbr="5" ybr="5"/>
  </image>
</annotations>
"""


def test_cvat_xml_boxes_polygons_and_points(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        _image(tmp_path / "images" / name)
    xml = tmp_path / "annotations.xml"
    xml.write_text(CVAT_XML)
    coco, report = convert_cvat_xml(str(xml))  # images/ beside the XML
    assert [im["file_name"] for im in coco["images"]] == ["a.png", "b.png", "c.png"]
    assert [c["name"] for c in coco["categories"]] == ["cat", "dog"]
    cat, dog, turned = coco["annotations"]
    # 10 x 4 around (15, 8) turned a quarter: 4 x 10 around (15, 8)
    assert turned["bbox"] == pytest.approx([13.0, 3.0, 4.0, 10.0]) and "segmentation" not in turned
    assert "segmentation" not in cat and cat["bbox"] == [2.0, 2.0, 10.0, 10.0]
    assert mask_util.decode(dog["segmentation"]).sum() == 100 and dog["bbox"] == [20.0, 4.0, 10.0, 10.0]
    assert cat["point_coords"] == [[5.0, 5.0], [11.0, 11.0]] and cat["point_labels"] == [1, 0]
    assert dog["point_coords"] == [[25.0, 10.0]] and dog["point_labels"] == [1]
    reasons = "\n".join(report.skipped)
    where = f"{xml} image a.png"
    assert f"{where} points 2 (positive) point 2: point [39, 19] (positive) lies in no box" in reasons
    assert f"{where} polyline 4 (dog): <polyline> is not a polygon, a box or points" in reasons
    assert f"{where} mask 5 (dog): a brush mask" in reasons
    assert f"{xml} image missing.png: " in reasons and len(report.skipped) == 4
    assert any("b.png: no shape" in n for n in report.notes)
    assert any("c.png box 0 (cat): box rotated by 90.0 degrees" in n for n in report.notes)
    assert any("1 objects with masks and 2 with boxes only" in n for n in report.notes)
    check_coco_instances(coco, "cvat", str(tmp_path / "images"))
    bad = tmp_path / "bad.xml"
    bad.write_text("<root/>")
    with pytest.raises(ValueError, match="bad.xml: not a 'CVAT for images' file"):
        convert_cvat_xml(str(bad), str(tmp_path / "images"))


def test_cvat_coco_export_fixed_box_only_and_brush_masks(tmp_path):
    """What CVAT's COCO 1.0 export writes: rectangles with "segmentation": [], brush masks as an
    uncompressed RLE with iscrowd 1."""
    _image(tmp_path / "images" / "a.png", 4, 3)
    (tmp_path / "annotations").mkdir()
    exported = {
        "licenses": [], "info": {"contributor": ""}, "categories": [{"id": 1, "name": "cat", "supercategory": ""}],
        "images": [{"id": 1, "width": 4, "height": 3, "file_name": "a.png"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": [], "area": 2.0, "bbox": [0, 0, 2, 1],
             "iscrowd": 0, "attributes": {"occluded": False}},
            # column-major runs: 3 zeros, 2 ones (pixels (0, 1) and (1, 1)... x = 1, y = 0 and 1), 7 zeros
            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": {"counts": [3, 2, 7], "size": [3, 4]},
             "area": 2.0, "bbox": [1, 0, 1, 2], "iscrowd": 1, "attributes": {"occluded": False}},
        ]}
    src = tmp_path / "annotations" / "instances_default.json"
    src.write_text(json.dumps(exported))
    with pytest.raises(AnnotationError, match="'segmentation' is an empty polygon list"):
        check_coco_instances(exported, str(src), str(tmp_path / "images"))  # as exported it does not load
    coco, report = fix_cvat_coco(str(src))
    box, brush = coco["annotations"]
    assert "segmentation" not in box and box["area"] == 2.0
    assert brush["iscrowd"] == 0 and isinstance(brush["segmentation"]["counts"], str)
    mask = mask_util.decode(brush["segmentation"]).astype(bool)
    assert mask.sum() == 2 and mask[0, 1] and mask[1, 1]
    assert len(report.notes) == 2 and report.skipped == []
    kept, _ = fix_cvat_coco(str(src), keep_crowd=True)
    assert kept["annotations"][1]["iscrowd"] == 1
    assert json.loads(src.read_text()) == exported  # the input is left as it was


# ------------------------------------------------------------------ through the loader, into the models
def _one_training_step(config: str, json_file, image_root, name: str, num_classes: int):
    from detectron2.utils.events import EventStorage

    from wsis_d2.data.config_checks import check_datasets_fit_model
    from wsis_d2.data.register import register_wsis_coco_instances, unregister
    from wsis_d2.engine.trainer import Trainer

    from .conftest import small_config

    register_wsis_coco_instances(name, {}, str(json_file), str(image_root), replace=True)
    try:
        cfg = small_config(config, train=name, MODEL__FCOS__NUM_CLASSES=str(num_classes),
                           INPUT__MIN_SIZE_TRAIN="(64,)", DATASETS__TEST="()")
        check_datasets_fit_model(cfg, [name], [])
        batch = next(iter(Trainer.build_train_loader(cfg)))
        model = Trainer.build_model(cfg)
        with EventStorage(0):
            losses = model(batch)
        return batch, losses
    finally:
        unregister(name)


def test_box_only_yolo_output_trains_boxinst(tmp_path):
    root = tmp_path / "ds"
    for stem in ("a", "b"):
        _image(root / "images" / f"{stem}.png")
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("thing\n")
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n0 0.2 0.3 0.2 0.4\n")
    (root / "labels" / "b.txt").write_text("0 0.7 0.5 0.4 0.6\n")
    out = tmp_path / "boxes.json"
    main(["convert", "--format", "yolo", "--input", str(root / "labels"), "--output", str(out)])
    assert all("segmentation" not in a for a in json.loads(out.read_text())["annotations"])
    batch, losses = _one_training_step("BoxInst/R18_shapes.yaml", out, root / "images", "converted_yolo_box", 1)
    for d in batch:
        assert d["instances"].has("gt_boxes") and not d["instances"].has("gt_masks")
    assert {"loss_prj", "loss_pairwise"} <= set(losses)  # BoxInst's box losses, from the boxes alone
    assert all(np.isfinite(v.item()) for v in losses.values())


def test_labelme_clicks_train_pointsup(labelme_clicks, tmp_path):
    out = tmp_path / "clicks.json"
    main(["convert", "--format", "labelme", "--input", str(labelme_clicks), "--output", str(out)])
    # one box was not clicked: PointSup alone (points on every object) refuses it and says what trains it
    with pytest.raises(ConfigError, match="only 2 of its 3 annotations have points.*MODEL.MIXED_SUPERVISION"):
        _one_training_step("PointSup/CondInst_R18_shapes.yaml", out, labelme_clicks, "converted_labelme_point", 2)
    # per-object supervision: the point loss on the clicked objects, the box losses on the other
    batch, losses = _one_training_step("Mixed/CondInst_R18_shapes.yaml", out, labelme_clicks,
                                       "converted_labelme_point", 2)
    labels = sorted(tuple(sorted(lab.tolist())) for d in batch for lab in d["instances"].gt_point_labels)
    # the cat's two clicks, the dog's three, the unclicked box's none (padding, ignored)
    # the unclicked box: one ignored slot; the cat's two clicks padded to the dog's three
    assert labels == [(-1.0,), (-1.0, 0.0, 1.0), (0.0, 1.0, 1.0)]
    assert all(not d["instances"].has("gt_masks") for d in batch)
    assert "loss_point" in losses and np.isfinite(losses["loss_point"].item())
    assert np.isfinite(losses["loss_prj"].item()) and np.isfinite(losses["loss_pairwise"].item())

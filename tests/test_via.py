"""``wsis-d2 convert --format via`` on hand-made VGG Image Annotator files."""
import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
from PIL import Image

from wsis_d2.cli import main
from wsis_d2.convert import convert_via


def _image(path, width=64, height=48):
    Image.fromarray(np.full((height, width, 3), 120, np.uint8)).save(path)


def _polygon(xs, ys, **attributes):
    return {"shape_attributes": {"name": "polygon", "all_points_x": xs, "all_points_y": ys},
            "region_attributes": attributes}


@pytest.fixture
def via_folder(tmp_path):
    """VIA 1 file: a.jpg with two polygons, b.jpg without regions, c.jpg with a 2-point polygon, a rect,
    a circle and a polyline, d.jpg listed but missing."""
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        _image(tmp_path / name)
    regions = {
        "a.jpg": {"0": _polygon([10, 29, 29, 10], [10, 10, 29, 29]), "1": _polygon([40, 60, 50], [5, 5, 40])},
        "b.jpg": {},
        "c.jpg": {"0": _polygon([3, 9], [3, 9]),
                  "1": {"shape_attributes": {"name": "rect", "x": 2, "y": 4, "width": 10, "height": 6},
                        "region_attributes": {}},
                  "2": {"shape_attributes": {"name": "circle", "cx": 40, "cy": 24, "r": 5}, "region_attributes": {}},
                  "3": {"shape_attributes": {"name": "polyline", "all_points_x": [1, 5, 9], "all_points_y": [1, 2, 3]},
                        "region_attributes": {}}},
        "d.jpg": {"0": _polygon([1, 5, 5], [1, 1, 5])},
    }
    data = {f"{name}123": {"fileref": "", "size": 123, "filename": name, "base64_img_data": "",
                           "file_attributes": {}, "regions": r} for name, r in regions.items()}
    path = tmp_path / "via_region_data.json"
    path.write_text(json.dumps(data))
    return path


def test_via_regions_become_coco_objects(via_folder):
    coco, report = convert_via(str(via_folder), category="balloon")
    assert [im["file_name"] for im in coco["images"]] == ["a.jpg", "b.jpg", "c.jpg"]
    assert all((im["height"], im["width"]) == (48, 64) for im in coco["images"])  # read from the images
    assert coco["categories"] == [{"id": 1, "name": "balloon"}]
    per_image = [sum(a["image_id"] == im["id"] for a in coco["annotations"]) for im in coco["images"]]
    assert per_image == [2, 0, 2]  # multi-region image, image without regions, 2 of c's 4 regions are areas
    square = coco["annotations"][0]
    mask = mask_util.decode(square["segmentation"])
    # vertices at pixel indices 10 and 29: the pixels 10 .. 29 of both axes, the outline included
    assert mask.sum() == 20 * 20 and mask[10:30, 10:30].all()
    assert square["bbox"] == [10, 10, 20, 20] and square["area"] == 400
    rect, circle = coco["annotations"][2:]
    assert rect["bbox"] == [2, 4, 11, 7] and rect["area"] == 77
    assert circle["area"] == pytest.approx(np.pi * 5.5 ** 2, rel=0.1)  # r = 5 pixels around the centre pixel

    reasons = "\n".join(report.skipped)
    assert f"{via_folder} image b.jpg: no region (kept as an image without objects)" in reasons
    assert (f"{via_folder} image c.jpg region 0: polygon with 2 point(s) is not an area (needs at least 3)"
            in reasons)
    assert f"{via_folder} image c.jpg region 3: shape 'polyline' is not an area" in reasons
    assert f"{via_folder} image d.jpg: " in reasons and "missing" in reasons


def test_via2_project_with_a_category_attribute(tmp_path):
    _image(tmp_path / "x.png")
    regions = [_polygon([1, 20, 20], [1, 1, 20], kind="cat"), _polygon([30, 50, 50], [1, 1, 20], kind="dog"),
               _polygon([30, 50, 50], [25, 25, 45], kind={"cat": False, "dog": True}),
               _polygon([1, 20, 20], [25, 25, 45])]
    project = {"_via_settings": {}, "_via_img_metadata": {"x.png1": {"filename": "x.png", "size": 1,
                                                                     "regions": regions, "file_attributes": {}}}}
    path = tmp_path / "project.json"
    path.write_text(json.dumps(project))
    coco, report = convert_via(str(path), category_attribute="kind")
    assert [c["name"] for c in coco["categories"]] == ["cat", "dog"]
    assert [a["category_id"] for a in coco["annotations"]] == [1, 2, 2]
    assert report.skipped == [f"{path} image x.png region 3: no single value of region attribute 'kind'"]


def test_convert_command_via(via_folder, tmp_path, capsys):
    out = tmp_path / "out" / "balloon.json"
    main(["convert", "--format", "via", "--input", str(via_folder), "--category", "balloon", "--output", str(out)])
    printed = capsys.readouterr().out
    assert "3 images, 4 objects, 1 categories" in printed and "image c.jpg region 0: polygon with 2 point(s)" in printed
    assert json.loads(out.read_text())["info"]["conversion"]["skipped"] == 4
    not_via = tmp_path / "labelme.json"
    not_via.write_text(json.dumps({"shapes": [], "imagePath": "a.jpg"}))
    with pytest.raises(SystemExit, match=r"^error: .*labelme.json: not a VIA region file"):
        main(["convert", "--format", "via", "--input", str(not_via), "--output", str(tmp_path / "x.json")])

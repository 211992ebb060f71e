"""Bad input fails at load time with one clear message naming the JSON file, the id and the field."""
import copy
import json

import cv2
import numpy as np
import pytest
from detectron2.data import DatasetCatalog

from wsis_d2.data.checks import AnnotationError
from wsis_d2.data.register import load_checked_coco_json, register_wsis_coco_instances
from wsis_d2.data.rle import encode_mask


@pytest.fixture
def good(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 30, 3), np.uint8))
    mask = np.zeros((20, 30), bool)
    mask[5:10, 4:12] = True
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "height": 20, "width": 30}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": [4, 5, 8, 5], "iscrowd": 0,
                         "area": 40, "segmentation": encode_mask(mask),
                         "point_coords": [[4.5, 5.5], [11.5, 9.5]], "point_labels": [1, 0]}],
    }
    return tmp_path, coco


def _load(tmp_path, coco):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco))
    return load_checked_coco_json(str(path), str(tmp_path), "bad_input_test"), str(path)


def test_valid_file_loads_with_points(good):
    dicts, _ = _load(*good)
    assert dicts[0]["annotations"][0]["point_labels"] == [1, 0]


CASES = {
    "missing image file": (lambda c: c["images"][0].update(file_name="missing.png"), "image id 1", "missing.png"),
    "zero-width box": (lambda c: c["annotations"][0].update(bbox=[4, 5, 0, 5]), "annotation id 7", "'bbox'"),
    "negative-height box": (lambda c: c["annotations"][0].update(bbox=[4, 5, 3, -2]), "annotation id 7", "'bbox'"),
    "box outside the image": (lambda c: c["annotations"][0].update(bbox=[25, 5, 10, 5]), "annotation id 7",
                              "outside the 30x20 image"),
    "unknown category": (lambda c: c["annotations"][0].update(category_id=3), "annotation id 7", "'category_id' = 3"),
    "point outside its box": (lambda c: c["annotations"][0].update(point_coords=[[4.5, 5.5], [20.0, 9.5]]),
                              "annotation id 7", "'point_coords[1]'"),
    "point label not 0/1": (lambda c: c["annotations"][0].update(point_labels=[1, 2]), "annotation id 7",
                            "'point_labels[1]' is 2"),
    "points without labels": (lambda c: c["annotations"][0].pop("point_labels"), "annotation id 7", "'point_labels'"),
    "RLE of the wrong size": (lambda c: c["annotations"][0]["segmentation"].update(size=[10, 10]), "annotation id 7",
                              "'segmentation' has RLE size"),
    "odd polygon": (lambda c: c["annotations"][0].update(segmentation=[[1, 2, 3, 4, 5]]), "annotation id 7",
                    "'segmentation'"),
    "segmentation of a wrong type": (lambda c: c["annotations"][0].update(segmentation="abc"), "annotation id 7",
                                     "'segmentation' must be"),
    "unknown image id": (lambda c: c["annotations"][0].update(image_id=9), "annotation id 7", "'image_id' = 9"),
    "missing categories": (lambda c: c.pop("categories"), "ann.json", "'categories'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_named(good, case):
    tmp_path, coco = good
    coco = copy.deepcopy(coco)
    mutate, where, what = CASES[case]
    mutate(coco)
    with pytest.raises(AnnotationError) as err:
        _load(tmp_path, coco)
    message = str(err.value)
    assert str(tmp_path / "ann.json") in message
    assert where in message and what in message


def test_missing_and_malformed_json_files(tmp_path):
    with pytest.raises(AnnotationError, match="annotation file not found"):
        load_checked_coco_json(str(tmp_path / "nope.json"), str(tmp_path))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(AnnotationError, match="broken.json: not valid JSON"):
        load_checked_coco_json(str(tmp_path / "broken.json"), str(tmp_path))


def test_registered_dataset_checks_when_loaded(good):
    tmp_path, coco = good
    coco["annotations"][0]["bbox"] = [4, 5, -1, 5]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(coco))
    register_wsis_coco_instances("bad_boxes_test", {}, str(path), str(tmp_path))
    try:
        with pytest.raises(AnnotationError, match="annotation id 7"):
            DatasetCatalog.get("bad_boxes_test")
    finally:
        DatasetCatalog.remove("bad_boxes_test")

"""Bad input fails at load time with one clear message naming the JSON file, the id and the field."""
import copy
import json

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
from detectron2.data import DatasetCatalog

from wsis_d2.data.checks import AnnotationError, check_coco_instances, rle_counts_from_string
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
    # wrong JSON types: a clear message, not an AttributeError/TypeError from deep inside the checks
    "image entry not an object": (lambda c: c["images"].append("b.png"), "images[1]",
                                  "must be a JSON object, got a str"),
    "annotation not an object": (lambda c: c["annotations"].append([1, 2]), "annotations[1]",
                                 "must be a JSON object, got a list"),
    "category not an object": (lambda c: c["categories"].append("dog"), "categories[1]",
                               "must be a JSON object, got a str"),
    "image_id a list": (lambda c: c["annotations"][0].update(image_id=[1]), "annotation id 7",
                        "'image_id' = [1] must be an integer or a string"),
    "category_id a list": (lambda c: c["annotations"][0].update(category_id=[1]), "annotation id 7",
                           "'category_id' = [1] is not one of"),
    "image id a float": (lambda c: c["images"][0].update(id=1.5), "images[0]",
                         "'id' = 1.5 must be an integer or a string"),
    "image id a list": (lambda c: c["images"][0].update(id=[1]), "images[0]",
                        "'id' = [1] must be an integer or a string"),
    "category id a list": (lambda c: c["categories"][0].update(id=[1]), "categories[0]",
                           "'id' = [1] must be an integer or a string"),
    "image ids of mixed kinds": (lambda c: c["images"].append({"id": "b", "file_name": "a.png", "height": 20,
                                                               "width": 30}),
                                 "field 'id' of the image entries", "mixes integers and strings"),
    "file_name not a string": (lambda c: c["images"][0].update(file_name=3), "image id 1",
                               "'file_name' = 3 must be a non-empty string"),
    # RLEs that pycocotools would decode into a wrong mask without an error
    "RLE string with characters out of range": (
        lambda c: c["annotations"][0]["segmentation"].update(counts="zzzz"), "annotation id 7 (image a.png)",
        "'segmentation' is an RLE whose 'counts' string is malformed: character 'z' at position 0"),
    "RLE string ending inside a count": (
        lambda c: c["annotations"][0]["segmentation"].update(counts="1a"), "annotation id 7",
        "'segmentation' is an RLE whose 'counts' string is malformed: the string ends in the middle of a count"),
    "RLE string of the wrong total": (
        lambda c: c["annotations"][0]["segmentation"].update(counts="0000"), "annotation id 7",
        "'segmentation' is an RLE whose run lengths sum to 0, not height x width = 600"),
    "RLE string with a negative count": (  # 'A' - 48 = 0b10001: one group, sign bit 0x10 set: 17 - 32
        lambda c: c["annotations"][0]["segmentation"].update(counts="A"), "annotation id 7",
        "'segmentation' is an RLE with a negative run length -15"),
    "RLE list of the wrong total": (
        lambda c: c["annotations"][0]["segmentation"].update(counts=[10, 20]), "annotation id 7",
        "'segmentation' is an RLE whose run lengths sum to 30, not height x width = 600"),
    "RLE list with a negative count": (
        lambda c: c["annotations"][0]["segmentation"].update(counts=[-5, 605]), "annotation id 7",
        "'segmentation' is an RLE with a negative run length -5"),
    "RLE list of floats": (
        lambda c: c["annotations"][0]["segmentation"].update(counts=[300.0, 300]), "annotation id 7",
        "'counts' list holds something other than integers"),
    "RLE counts of a wrong type": (
        lambda c: c["annotations"][0]["segmentation"].update(counts=600), "annotation id 7",
        "'counts' must be a string or a list of run lengths, got int"),
    "RLE size not a pair": (lambda c: c["annotations"][0]["segmentation"].update(size=600), "annotation id 7",
                            "'segmentation' has RLE size 600, not [height, width] integers"),
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


def test_top_level_list_is_named(good):
    tmp_path, coco = good
    with pytest.raises(AnnotationError) as err:
        _load(tmp_path, [coco])
    assert str(err.value) == (f"{tmp_path / 'ann.json'}: the top level must be a JSON object with 'images', "
                              "'annotations' and 'categories', got a list")


def test_duplicate_image_ids_are_named(good):
    tmp_path, coco = good
    cv2.imwrite(str(tmp_path / "b.png"), np.zeros((20, 30, 3), np.uint8))
    coco["images"].append({"id": 1, "file_name": "b.png", "height": 20, "width": 30})
    with pytest.raises(AnnotationError) as err:
        _load(tmp_path, coco)
    assert str(err.value) == (f"{tmp_path / 'ann.json'}: image id 1 is used by 2 image entries "
                              "(file_name a.png, b.png); image ids must be unique")


def test_annotation_ids_must_exist_and_be_unique(good):
    tmp_path, coco = good
    second = dict(coco["annotations"][0])
    coco["annotations"].append(second)
    with pytest.raises(AnnotationError) as err:
        _load(tmp_path, coco)
    assert str(err.value) == (f"{tmp_path / 'ann.json'}: annotation id 7 is used by annotations[0] and "
                              "annotations[1]; annotation ids must be unique")
    del second["id"]
    with pytest.raises(AnnotationError, match=r"annotations\[1\]: field 'id' = None is missing"):
        _load(tmp_path, coco)
    second["id"] = 8
    assert len(_load(tmp_path, coco)[0][0]["annotations"]) == 2


def _runs(mask):
    """Run lengths of ``mask`` in COCO's order (column-major, starting with a run of 0s), found with numpy."""
    flat = mask.flatten(order="F").astype(np.int8)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    runs = np.diff(bounds).tolist()
    return [0] + runs if flat[0] else runs


@pytest.mark.parametrize("kind", ["random", "blocks", "empty", "full"])
def test_rle_decoder_reads_pycocotools_strings(kind):
    rng = np.random.default_rng(3)
    height, width = 173, 211  # large enough for counts of several characters
    mask = {"random": rng.random((height, width)) < 0.3,
            "blocks": np.kron(rng.random((4, 5)) < 0.5, np.ones((50, 50), bool))[:height, :width],
            "empty": np.zeros((height, width), bool),
            "full": np.ones((height, width), bool)}[kind]
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    runs = rle_counts_from_string(rle["counts"])  # bytes, as pycocotools returns them
    assert sum(runs) == height * width
    assert runs.tolist() == _runs(mask)
    assert rle_counts_from_string(rle["counts"].decode("ascii")).tolist() == runs.tolist()  # str, as in JSON
    # both the string and its uncompressed list pass the checks
    coco = {"images": [{"id": 1, "file_name": "a.png", "height": height, "width": width}],
            "categories": [{"id": 1, "name": "thing"}],
            "annotations": [{"id": k, "image_id": 1, "category_id": 1, "bbox": [0, 0, width, height],
                             "segmentation": {"size": [height, width], "counts": counts}}
                            for k, counts in enumerate([rle["counts"].decode("ascii"), runs.tolist()])]}
    check_coco_instances(coco, "x.json", None)


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

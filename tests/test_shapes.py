import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import pycocotools.mask as mask_util
from pycocotools.coco import COCO

from wsis_d2.data.shapes import CATEGORIES, generate_shapes
from wsis_d2.data.views import center_point


def _digest(root: Path) -> str:
    h = hashlib.sha1()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_generator_is_deterministic(tmp_path):
    generate_shapes(tmp_path / "a", num_train=3, num_val=2, seed=5)
    generate_shapes(tmp_path / "b", num_train=3, num_val=2, seed=5)
    generate_shapes(tmp_path / "c", num_train=3, num_val=2, seed=6)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_master_annotations_are_valid_coco(tiny_shapes):
    root = Path(tiny_shapes["root"])
    coco = COCO(str(root / "annotations" / "train_all.json"))
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {c["name"] for c in CATEGORIES}
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) >= 8 * 2
    for ann in anns:
        img = coco.loadImgs(ann["image_id"])[0]
        assert (root / img["file_name"]).is_file()
        mask = coco.annToMask(ann).astype(bool)
        assert mask.shape == (img["height"], img["width"])
        assert ann["area"] == mask.sum() > 0
        x, y, w, h = ann["bbox"]
        ys, xs = np.nonzero(mask)
        # the box is the tight box of the mask: every mask pixel inside, every side touched
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)
        assert len(ann["point_coords"]) == len(ann["point_labels"]) == 10
        for (px, py), label in zip(ann["point_coords"], ann["point_labels"]):
            assert x <= px <= x + w and y <= py <= y + h
            assert label == int(mask[int(py), int(px)])


def test_data_is_not_trivial(tmp_path):
    """Holes, non-convex shapes and occlusion actually occur."""
    generate_shapes(tmp_path / "s", num_train=30, num_val=1, seed=0)
    coco = json.loads((tmp_path / "s" / "annotations" / "train_all.json").read_text())
    solidity, has_hole = [], 0
    import cv2

    for ann in coco["annotations"]:
        mask = mask_util.decode(ann["segmentation"])
        contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        has_hole += int(hierarchy is not None and (hierarchy[0][:, 3] >= 0).any())
        hull = cv2.convexHull(np.concatenate(contours))
        solidity.append(mask.sum() / max(cv2.contourArea(hull), 1))
    assert has_hole >= 3
    assert np.mean(np.array(solidity) < 0.75) > 0.2  # many clearly non-convex objects


def test_views_hold_only_their_labels(tiny_shapes):
    files = tiny_shapes["files"]
    load = lambda view: json.loads(Path(files[view]).read_text())  # noqa: E731
    full, box, point = load("full"), load("box"), load("point")
    assert all("segmentation" in a and "point_coords" not in a for a in full["annotations"])
    assert all("segmentation" not in a and "point_coords" not in a for a in box["annotations"])
    assert all("segmentation" not in a and len(a["point_coords"]) == 10 for a in point["annotations"])
    assert all(a["area"] == a["bbox"][2] * a["bbox"][3] for a in box["annotations"] + point["annotations"])
    assert len(full["annotations"]) == len(box["annotations"]) == len(point["annotations"])

    semi = load("semi_50")
    full_ids = set(semi["info"]["fully_labelled_image_ids"])
    assert len(full_ids) == 4  # 50 % of 8 images
    for ann in semi["annotations"]:
        if ann["image_id"] in full_ids:
            assert "segmentation" in ann and "point_coords" not in ann
        else:
            assert "segmentation" not in ann and ann["point_labels"] == [1] and len(ann["point_coords"]) == 1


def test_center_point_lies_on_the_mask_even_for_a_ring():
    yy, xx = np.mgrid[0:21, 0:21]
    r = np.hypot(yy - 10, xx - 10)
    ring = ((r <= 9) & (r >= 5)).astype(np.uint8)
    rle = mask_util.encode(np.asfortranarray(ring))
    x, y = center_point(rle, 21, 21)
    assert ring[int(y), int(x)] == 1
    assert abs(np.hypot(x - 10.5, y - 10.5) - 5) < 1.5  # nearest ring pixel to the (empty) centre
    # COCO polygons work too (a square), and an empty mask is an error, not a crash
    x, y = center_point([[2.0, 2.0, 8.0, 2.0, 8.0, 8.0, 2.0, 8.0]], 21, 21)
    assert 4 <= x <= 6 and 4 <= y <= 6
    with pytest.raises(ValueError, match="empty"):
        center_point(mask_util.encode(np.zeros((4, 4), np.uint8, order="F")), 4, 4)


def test_existing_data_made_with_other_settings_is_not_reused_silently(tmp_path, capsys):
    from wsis_d2.cli import main as cli_main
    from wsis_d2.data.shapes import ensure_shapes

    root = tmp_path / "s"
    generate_shapes(root, num_train=2, num_val=1, seed=0)
    before = (root / "annotations" / "val.json").read_text()
    assert ensure_shapes(root)["val"] == str(root / "annotations" / "val.json")  # no settings asked: reused
    ensure_shapes(root, num_train=2, seed=0)
    with pytest.raises(FileExistsError, match=r"made with num_train=2, seed=0, not the num_train=3, seed=5 asked"):
        ensure_shapes(root, num_train=3, seed=5)
    with pytest.raises(SystemExit, match="^error: .* not the num_train=3"):
        cli_main(["shapes", "--root", str(root), "--num-train", "3", "--num-val", "1"])
    assert (root / "annotations" / "val.json").read_text() == before
    cli_main(["shapes", "--root", str(root)])  # no settings given: the data there is reused
    assert "val: " + str(root / "annotations" / "val.json") in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["shapes", "--root", str(tmp_path / "t"), "--num-train", "0"])
    assert "--num-train: must be at least 1, got 0" in capsys.readouterr().err

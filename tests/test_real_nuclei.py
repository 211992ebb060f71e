"""Real data: the StarDist 2D nuclei image (2018 Data Science Bowl, 512 x 512, 125 labelled nuclei,
shipped in the ``stardist`` wheel) through the converter, GrabCut and the COCO evaluator."""
import json

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, Instances
from PIL import Image

from wsis_d2.autolabel import BoxBackend, GrabCutBackend
from wsis_d2.convert import convert_instance_pngs
from wsis_d2.data.checks import check_coco_instances
from wsis_d2.data.register import register_wsis_coco_instances, unregister
from wsis_d2.evaluation import build_coco_evaluator
from wsis_d2.model_zoo import get_config


@pytest.fixture(scope="module")
def nuclei():
    """(uint8 BGR image, (H, W) uint16 instance ids)."""
    stardist_data = pytest.importorskip("stardist.data")
    image, ids = stardist_data.test_image_nuclei_2d(return_mask=True)
    grey = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), ids


@pytest.fixture(scope="module")
def nuclei_coco(nuclei, tmp_path_factory):
    """The nuclei as a Penn-Fudan-style folder (16-bit id PNG), converted to COCO."""
    root = tmp_path_factory.mktemp("nuclei")
    image, ids = nuclei
    (root / "images").mkdir()
    (root / "masks").mkdir()
    cv2.imwrite(str(root / "images" / "nuclei.png"), image)
    Image.fromarray(ids.astype(np.uint16)).save(root / "masks" / "nuclei_mask.png")
    coco, report = convert_instance_pngs(str(root / "images"), str(root / "masks"), "nucleus", ignore_value=-1)
    json_file = root / "nuclei.json"
    json_file.write_text(json.dumps(coco))
    return {"root": root, "coco": coco, "report": report, "json_file": str(json_file)}


def _gt_masks(ids):
    labels = [k for k in np.unique(ids) if k != 0]
    return np.stack([ids == k for k in labels])


def test_16bit_instance_png_converts_every_nucleus(nuclei, nuclei_coco):
    from pycocotools.coco import COCO

    _, ids = nuclei
    coco = nuclei_coco["coco"]
    assert len(np.unique(ids)) - 1 == 125
    assert len(coco["images"]) == 1 and len(coco["annotations"]) == 125
    assert not nuclei_coco["report"].skipped
    check_coco_instances(coco, nuclei_coco["json_file"], str(nuclei_coco["root"] / "images"))
    loaded = COCO(nuclei_coco["json_file"])
    for ann in loaded.anns.values():
        mask = loaded.annToMask(ann).astype(bool)
        k = int(np.bincount(ids[mask]).argmax())
        assert (mask == (ids == k)).all()


def test_grabcut_on_nuclei_is_no_worse_than_the_filled_box(nuclei):
    """Tight boxes around small, nearly elliptical nuclei are a hard case for GrabCut: its foreground
    colour model learns the box corners' background, so most results stay the whole box (measured:
    mean IoU .748 vs the filled box's .726; 78 % of boxes unchanged). Asserted: better on average and
    worse on few nuclei, so a GrabCut that collapses or leaks fails here."""
    image, ids = nuclei
    gts = _gt_masks(ids)
    boxes = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                      for ys, xs in (np.nonzero(g) for g in gts)], np.float64)
    iou = {}
    for name, backend in (("grabcut", GrabCutBackend()), ("box", BoxBackend())):
        masks = backend(image, boxes)
        iou[name] = np.array([(m & g).sum() / max((m | g).sum(), 1) for m, g in zip(masks, gts)])
    assert iou["grabcut"].mean() > iou["box"].mean() + 0.01, (iou["grabcut"].mean(), iou["box"].mean())
    assert (iou["grabcut"] < iou["box"] - 0.05).mean() < 0.1


def _evaluate(dataset_name, image_id, instances, output_dir):
    cfg = get_config("CondInst/R18_shapes.yaml")
    cfg.MODEL.FCOS.POST_NMS_TOPK = 200  # 125 nuclei: more than COCO's default cap of 100 detections
    evaluator = build_coco_evaluator(cfg, dataset_name, str(output_dir))
    evaluator.reset()
    evaluator.process([{"image_id": image_id}], [{"instances": instances}])
    return evaluator.evaluate()


def test_coco_evaluator_on_real_nuclei(nuclei, nuclei_coco, tmp_path):
    """GT masks as predictions score 100 mask AP; their filled boxes keep box AP 100 but lose mask AP."""
    image, ids = nuclei
    name = "test_real_nuclei"
    image_id = nuclei_coco["coco"]["images"][0]["id"]
    register_wsis_coco_instances(name, {}, nuclei_coco["json_file"], str(nuclei_coco["root"] / "images"),
                                 replace=True)
    try:
        DatasetCatalog.get(name)  # loading sets the category id mapping the evaluator reads, as training does
        masks = torch.from_numpy(_gt_masks(ids))
        ys_xs = [torch.nonzero(m) for m in masks]
        boxes = torch.stack([torch.cat([yx[:, 1].min()[None], yx[:, 0].min()[None],
                                        yx[:, 1].max()[None] + 1, yx[:, 0].max()[None] + 1]).float()
                             for yx in ys_xs])
        n = len(masks)
        exact = Instances(masks.shape[-2:], pred_boxes=Boxes(boxes), scores=torch.linspace(1.0, 0.5, n),
                          pred_classes=torch.zeros(n, dtype=torch.long), pred_masks=masks)
        filled = Instances(masks.shape[-2:], pred_boxes=Boxes(boxes), scores=exact.scores,
                           pred_classes=exact.pred_classes,
                           pred_masks=torch.from_numpy(BoxBackend()(image, boxes.numpy())))
        exact_result = _evaluate(name, image_id, exact, tmp_path / "exact")
        filled_result = _evaluate(name, image_id, filled, tmp_path / "filled")
    finally:
        unregister(name)
    assert exact_result["segm"]["AP"] == pytest.approx(100.0, abs=0.01)
    assert exact_result["bbox"]["AP"] == pytest.approx(100.0, abs=0.01)
    assert filled_result["bbox"]["AP"] == pytest.approx(100.0, abs=0.01)
    assert filled_result["segm"]["AP"] < 90.0

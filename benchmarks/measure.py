"""What the benchmark harness measures on a finished run's output folder (no training here): the
timing, evaluation and pseudo-mask curve of detectron2's metrics.json, the predictions' best mask IoU
and ring-hole fill against the GT masks, and PointWSSIS's pseudo masks against the hidden GT masks."""
import json
import statistics
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util

from wsis_d2.data.rle import to_rle


def read_metrics(metrics_file: Path):
    """(median s/iter after the first 20 iterations, final evaluation scalars, pseudo-mask curve)
    from detectron2's metrics.json."""
    times, evaluation, curve = [], {}, []
    for line in metrics_file.read_text().splitlines():
        entry = json.loads(line)
        if "time" in entry and entry.get("iteration", 0) >= 20:
            times.append(entry["time"])
        if "segm/AP" in entry or "bbox/AP" in entry:
            evaluation = entry
        if "pseudo_mask/miou" in entry:
            curve.append([entry["iteration"] + 1, round(entry["pseudo_mask/miou"], 3),
                          round(entry["pseudo_mask/kept"], 3)])
    return (statistics.median(times) if times else float("nan")), evaluation, curve


def mask_holes(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels enclosed by the mask's outer contours but not in it (a ring's hole)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = cv2.drawContours(np.zeros(mask.shape, np.uint8), contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool) & ~mask.astype(bool)


def gt_mask_scores(results_json: Path, gt_json: str, score_thresh: float = 0.3) -> tuple:
    """Over GT objects, with each one's best-IoU prediction among the image's predictions scored
    >= ``score_thresh``: (mean best mask IoU, 0 when nothing is predicted; mean share of the hole
    pixels predicted as object, over the objects whose masks have holes, None when none has)."""
    gt = json.loads(Path(gt_json).read_text())
    sizes = {i["id"]: (i["height"], i["width"]) for i in gt["images"]}
    predictions = {}
    for r in json.loads(Path(results_json).read_text()):
        if r["score"] >= score_thresh:
            predictions.setdefault(r["image_id"], []).append(r["segmentation"])
    best, hole_fill = [], []
    for ann in gt["annotations"]:
        preds = predictions.get(ann["image_id"], [])
        true = to_rle(ann["segmentation"], *sizes[ann["image_id"]])
        ious = mask_util.iou(preds, [true], [0])[:, 0] if preds else np.zeros(0)
        best.append(float(ious.max()) if preds else 0.0)
        holes = mask_holes(mask_util.decode(true))
        if holes.any():
            hole_fill.append(float(mask_util.decode(preds[int(ious.argmax())])[holes].mean()) if preds else 0.0)
    return sum(best) / max(len(best), 1), (sum(hole_fill) / len(hole_fill) if hole_fill else None)


def pseudo_label_miou(pseudo_json: Path, full_json: str, semi_json: str) -> float:
    """Mean IoU of the pseudo masks of the point-labelled objects (the semi view's annotations without
    masks) against their hidden GT masks (same annotation ids in the full view)."""
    weak = {a["id"] for a in json.loads(Path(semi_json).read_text())["annotations"] if "segmentation" not in a}
    full = json.loads(Path(full_json).read_text())
    sizes = {i["id"]: (i["height"], i["width"]) for i in full["images"]}
    gt = {a["id"]: a for a in full["annotations"]}
    ious = []
    for ann in json.loads(Path(pseudo_json).read_text())["annotations"]:
        if ann["id"] in weak:
            size = sizes[ann["image_id"]]
            pred, true = to_rle(ann["segmentation"], *size), to_rle(gt[ann["id"]]["segmentation"], *size)
            ious.append(float(mask_util.iou([pred], [true], [0])[0, 0]))
    return sum(ious) / max(len(ious), 1)

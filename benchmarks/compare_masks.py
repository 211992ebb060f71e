#!/usr/bin/env python
"""Picture: GT objects of one class next to each run's best-IoU predicted mask (scored >= 0.3).

    python benchmarks/compare_masks.py --category ring --out ring_holes.jpg \\
        --runs boxinst=output/benchmarks/2026-11-30-cpu/boxinst_seed1 boxteacher=...

Each row is one GT object (cropped around its box with a margin): the image with the GT mask, then
each run's mask, in the order given. Reads the runs' ``inference/<dataset>/coco_instances_results.json``.
"""
import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from photo_pictures import read_runs  # noqa: E402  (beside this file)


def overlay(image: np.ndarray, mask: np.ndarray, colour) -> np.ndarray:
    out = image.copy()
    out[mask] = (0.45 * out[mask] + 0.55 * np.array(colour)).astype(np.uint8)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="NAME=OUTPUT_DIR of finished benchmark runs")
    parser.add_argument("--category", required=True, help="a class name of the dataset, e.g. ring")
    parser.add_argument("--dataset", default="shapes_val")
    parser.add_argument("--num", type=int, default=4, help="objects (rows) to draw")
    parser.add_argument("--out", required=True, help="picture to write (refuses to overwrite)")
    args = parser.parse_args(argv)
    if Path(args.out).exists():
        parser.error(f"{args.out} exists; choose another path")

    import pycocotools.mask as mask_util
    from detectron2.data import MetadataCatalog

    import wsis_d2  # noqa: F401  (registers the shapes datasets)
    from wsis_d2.data.rle import decode, to_rle

    meta = MetadataCatalog.get(args.dataset)
    gt = json.loads(Path(meta.json_file).read_text())
    category = {c["name"]: c["id"] for c in gt["categories"]}.get(args.category)
    if category is None:
        parser.error(f"{meta.json_file} has no category {args.category!r}")
    try:
        runs = read_runs(args.runs, args.dataset, 0.3)
    except FileNotFoundError as e:
        parser.error(str(e))
    images = {i["id"]: i for i in gt["images"]}
    rows = []
    for ann in [a for a in gt["annotations"] if a["category_id"] == category][: args.num]:
        info = images[ann["image_id"]]
        h, w = info["height"], info["width"]
        image = cv2.imread(str(Path(meta.image_root) / info["file_name"]))
        true = decode(ann["segmentation"], h, w)
        x, y, bw, bh = (int(round(v)) for v in ann["bbox"])
        m = max(bw, bh) // 4
        crop = (slice(max(y - m, 0), min(y + bh + m, h)), slice(max(x - m, 0), min(x + bw + m, w)))
        panels = [overlay(image, true, (0, 200, 0))[crop]]
        for _, predictions in runs:
            preds = predictions.get(ann["image_id"], [])
            best = np.zeros((h, w), bool)
            if preds:
                ious = mask_util.iou(preds, [to_rle(ann["segmentation"], h, w)], [0])[:, 0]
                best = mask_util.decode(preds[int(ious.argmax())]).astype(bool)
            panels.append(overlay(image, best, (0, 0, 230))[crop])
        panels = [cv2.resize(p, (160, 160), interpolation=cv2.INTER_NEAREST) for p in panels]
        rows.append(np.concatenate(sum([[p, np.full((160, 4, 3), 255, np.uint8)] for p in panels], [])[:-1], 1))
    if not rows:
        parser.error(f"no {args.category} objects in {args.dataset}")
    header = np.full((24, rows[0].shape[1], 3), 255, np.uint8)
    for k, name in enumerate(["GT"] + [n for n, _ in runs]):
        cv2.putText(header, name, (k * 164 + 4, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.imwrite(args.out, np.concatenate([header] + rows, 0), [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"{len(rows)} {args.category} objects -> {args.out}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

#!/usr/bin/env python
"""Picture: whole evaluation photos, GT next to each run's predictions (detectron2's Visualizer).

    DETECTRON2_DATASETS=/path/to/prepared python benchmarks/photo_pictures.py --dataset pennfudan_val \\
        --out benchmarks/results/pictures/2026-12-07-realphoto-pennfudan.jpg \\
        --runs condinst=output/benchmarks/2026-12-07-realphoto-pennfudan/condinst_seed1 boxinst=...

One row per photo (the first ``--num`` of the eval set, or ``--images``), one column per run: the GT
masks, then each run's masks scored >= ``--score`` (read from its
``inference/<dataset>/coco_instances_results.json``), every panel ``--height`` pixels tall.
"""
import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def panel(image_rgb: np.ndarray, masks: list, metadata, height: int, title: str) -> np.ndarray:
    """``image_rgb`` with ``masks`` ((H, W) bool each) drawn, scaled to ``height``, ``title`` on top (BGR)."""
    from detectron2.utils.visualizer import ColorMode, Visualizer

    vis = Visualizer(image_rgb, metadata, instance_mode=ColorMode.IMAGE)
    for k, mask in enumerate(masks):
        vis.draw_binary_mask(mask, color=_colour(k), alpha=0.5)
    out = vis.output.get_image()[:, :, ::-1]
    width = round(out.shape[1] * height / out.shape[0])
    out = cv2.resize(out, (width, height), interpolation=cv2.INTER_AREA)
    cv2.putText(out, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2, cv2.LINE_AA)
    cv2.putText(out, title, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _colour(k: int):
    palette = [(0.9, 0.2, 0.2), (0.2, 0.6, 0.9), (0.3, 0.8, 0.3), (0.9, 0.7, 0.1), (0.7, 0.3, 0.9), (0.1, 0.8, 0.8)]
    return palette[k % len(palette)]


def read_runs(specs, dataset: str, score: float) -> list:
    """``[(name, {image_id: [RLE of each prediction scored >= score]})]`` of ``NAME=OUTPUT_DIR`` specs,
    from each run's ``inference/<dataset>/coco_instances_results.json``."""
    runs = []
    for spec in specs:
        name, _, folder = spec.partition("=")
        results = Path(folder) / "inference" / dataset / "coco_instances_results.json"
        if not results.is_file():
            raise FileNotFoundError(f"--runs {spec}: {results} not found")
        by_image = {}
        for r in json.loads(results.read_text()):
            if r["score"] >= score:
                by_image.setdefault(r["image_id"], []).append(r["segmentation"])
        runs.append((name, by_image))
    return runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="NAME=OUTPUT_DIR of finished benchmark runs")
    parser.add_argument("--dataset", required=True, help="the eval set the runs were evaluated on, e.g. pennfudan_val")
    parser.add_argument("--num", type=int, default=3, help="photos (rows) to draw")
    parser.add_argument("--images", nargs="*", default=(), help="file names of the photos to draw (default: the first)")
    parser.add_argument("--score", type=float, default=0.5)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--out", required=True, help="picture to write (refuses to overwrite)")
    args = parser.parse_args(argv)
    if Path(args.out).exists():
        parser.error(f"{args.out} exists; choose another path")

    from detectron2.data import MetadataCatalog

    import wsis_d2  # noqa: F401  (registers the datasets)
    from wsis_d2.data.rle import decode

    meta = MetadataCatalog.get(args.dataset)
    gt = json.loads(Path(meta.json_file).read_text())
    images = gt["images"]
    if args.images:
        images = [i for i in images if i["file_name"] in set(args.images)]
    images = images[: args.num]
    try:
        runs = read_runs(args.runs, args.dataset, args.score)
    except FileNotFoundError as e:
        parser.error(str(e))
    rows = []
    for info in images:
        h, w = info["height"], info["width"]
        rgb = cv2.imread(str(Path(meta.image_root) / info["file_name"]))[:, :, ::-1]
        true = [decode(a["segmentation"], h, w) for a in gt["annotations"] if a["image_id"] == info["id"]]
        panels = [panel(rgb, true, meta, args.height, f"GT {info['file_name']}")]
        panels += [panel(rgb, [decode(s, h, w) for s in by_image.get(info["id"], [])], meta, args.height, name)
                   for name, by_image in runs]
        gap = np.full((args.height, 4, 3), 255, np.uint8)
        rows.append(np.concatenate(sum([[p, gap] for p in panels], [])[:-1], 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    cv2.imwrite(args.out, np.concatenate(rows, 0), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"{len(rows)} photos x {len(runs)} runs -> {args.out}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

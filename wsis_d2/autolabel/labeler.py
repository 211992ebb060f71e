"""Turn a COCO file with boxes (and optional points) into one with RLE masks.

:func:`autolabel` checks the input (the same checks as dataset loading, one item
at a time so that ``skip_bad`` can drop a bad image or annotation and go on),
runs a backend of ``AUTOLABEL_BACKENDS`` on every image (in worker processes
for the cheap backends), and returns a new COCO dict plus statistics: images/s
and, when the input also holds masks, the mean IoU of the new masks against them.
"""
import copy
import logging
import multiprocessing as mp
import os
import time
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
import pycocotools.mask as mask_util
from tqdm import tqdm

from ..data.checks import (AnnotationError, annotation_image_id, check_annotation, check_image, check_top_level,
                           duplicate_image_ids, is_id)
from ..data.images import read_checked_image
from ..data.rle import encode_mask, to_rle
from .backends import AUTOLABEL_BACKENDS

logger = logging.getLogger(__name__)

# backends that hold a model: run in the calling process, one image at a time
IN_PROCESS_BACKENDS = ("model",)

_worker_backend = None


def _label_image(task) -> Tuple[int, Optional[str], List[Tuple[int, dict]], float]:
    """(image id, error or None, [(annotation index in the file, RLE)], seconds) for one image."""
    start = time.perf_counter()
    image_id, path, (height, width), ann_indices, boxes, points = task
    image, problem = read_checked_image(path, "BGR")  # a truncated file fails here, not silently
    if problem is not None:
        return image_id, problem, [], time.perf_counter() - start
    if image.shape[:2] != (height, width):
        return image_id, (f"{path}: the image is {image.shape[1]}x{image.shape[0]} but the JSON says "
                          f"'width' {width}, 'height' {height}"), [], time.perf_counter() - start
    masks = _worker_backend(image, np.asarray(boxes, np.float64).reshape(-1, 4), points)
    return image_id, None, [(k, encode_mask(m)) for k, m in zip(ann_indices, masks)], time.perf_counter() - start


def _init_worker(name: str, options: dict) -> None:
    global _worker_backend
    cv2.setNumThreads(1)
    _worker_backend = AUTOLABEL_BACKENDS[name](**options)


def _points(ann: dict):
    if "point_coords" not in ann:
        return None
    return np.asarray(ann["point_coords"], np.float64).reshape(-1, 2), np.asarray(ann["point_labels"])


def _skip(error: AnnotationError, skip_bad: bool, skipped: list) -> None:
    """Record ``error`` in ``skipped`` when bad items are skipped; raise it otherwise."""
    if not skip_bad:
        raise error
    skipped.append(str(error))


def _checked_images(coco: dict, json_file: str, image_root: str, skip_bad: bool, skipped: list):
    """({image id: entry} of the images that pass the checks, ids of the images left out)."""
    good, left_out = [], set()
    for index, img in enumerate(coco["images"]):
        try:
            check_image(img, json_file, image_root, index)
            good.append(img)
        except AnnotationError as e:
            _skip(e, skip_bad, skipped)
            if isinstance(img, dict) and is_id(img.get("id")):
                left_out.add(img["id"])  # an entry without a valid id has no annotation to leave out
    for image_id, message in duplicate_image_ids(coco["images"], json_file).items():
        # every entry with the id goes: its annotations cannot tell which picture they belong to
        _skip(AnnotationError(message), skip_bad, skipped)
        left_out.add(image_id)
    return {img["id"]: img for img in good if img["id"] not in left_out}, left_out


def _tasks(coco: dict, json_file: str, image_root: str, skip_bad: bool):
    """(per-image tasks, reasons for what was left out, {image id: entry} of the kept images).

    Bad items raise, or with ``skip_bad`` are recorded in the reasons and left out.
    """
    category_ids = check_top_level(coco, json_file)
    skipped = []
    images, left_out = _checked_images(coco, json_file, image_root, skip_bad, skipped)
    by_image: Dict[int, list] = {i: [] for i in images}
    # annotations are tracked by their position in the file: ids may be missing or repeated
    for index, ann in enumerate(coco["annotations"]):
        try:
            if annotation_image_id(ann, json_file, index) in left_out:
                continue  # left out with its image
            check_annotation(ann, images, category_ids, json_file, index)
            by_image[ann["image_id"]].append((index, ann))
        except AnnotationError as e:
            _skip(e, skip_bad, skipped)
    tasks = []
    for image_id, indexed in by_image.items():
        img = images[image_id]
        anns = [a for _, a in indexed]
        boxes = [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in anns]
        points = [_points(a) for a in anns]
        tasks.append((image_id, os.path.join(image_root, img["file_name"]), (img["height"], img["width"]),
                      [k for k, _ in indexed], boxes, points if any(p is not None for p in points) else None))
    return tasks, skipped, images


def autolabel(coco: dict, json_file: str, image_root: str, backend: str = "grabcut", options: dict = None,
              workers: int = 1, skip_bad: bool = False, progress: bool = True):
    """Masks for every annotation of ``coco``.

    Args:
        json_file: the input's path (named in errors).
        image_root: folder the images' ``file_name`` are relative to.
        backend: a name in ``AUTOLABEL_BACKENDS``; ``options`` its constructor arguments.
        workers: processes for per-image work (model backends always run in this process).
        skip_bad: log bad images/annotations and leave them out instead of raising.

    Returns:
        (new COCO dict, stats dict).
    """
    options = dict(options or {})
    if backend not in AUTOLABEL_BACKENDS:
        raise KeyError(f"unknown backend {backend!r}; known: {sorted(AUTOLABEL_BACKENDS)}")
    tasks, skipped, images = _tasks(coco, json_file, image_root, skip_bad)
    for message in skipped:
        logger.warning("skipped: %s", message)

    start = time.perf_counter()
    results, labelled_images, failed, image_seconds = {}, 0, set(), {}
    bar = tqdm(total=len(tasks), desc=f"autolabel ({backend})", unit="img", disable=not progress)
    if backend in IN_PROCESS_BACKENDS or workers <= 1:
        _init_worker(backend, options)
        outputs = map(_label_image, tasks)
        pool = None
    else:
        pool = mp.get_context("fork").Pool(workers, initializer=_init_worker, initargs=(backend, options))
        outputs = pool.imap_unordered(_label_image, tasks, chunksize=4)
    try:
        for image_id, error, encoded, image_time in outputs:
            bar.update(1)
            image_seconds[image_id] = image_time
            if error is not None:
                if not skip_bad:
                    raise AnnotationError(f"{json_file}: image id {image_id}: {error}")
                logger.warning("skipped: image id %s: %s", image_id, error)
                skipped.append(error)
                failed.add(image_id)
                continue
            results.update(dict(encoded))
            labelled_images += 1
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
    seconds = time.perf_counter() - start

    out = copy.deepcopy({k: v for k, v in coco.items() if k not in ("images", "annotations")})
    annotations, ious = [], []
    for index, ann in enumerate(coco["annotations"]):
        rle = results.get(index)
        if rle is None:
            continue
        if ann.get("segmentation"):
            gt = to_rle(ann["segmentation"], *rle["size"])
            ious.append(float(mask_util.iou([rle], [gt], [0])[0, 0]))
        annotations.append(dict(ann, segmentation=rle, area=float(mask_util.area(rle))))
    out["images"] = [copy.deepcopy(img) for image_id, img in images.items() if image_id not in failed]
    slowest = max(image_seconds, key=image_seconds.get) if image_seconds else None
    out["annotations"] = annotations
    stats = {
        "backend": backend, "images": labelled_images, "annotations": len(annotations),
        "skipped": len(skipped), "seconds": round(seconds, 2),
        "images_per_s": round(len(tasks) / seconds, 2) if seconds > 0 else None,
        "mean_iou_vs_input_masks": round(float(np.mean(ious)), 4) if ious else None,
        # per image, in the worker that labelled it
        "seconds_per_image_mean": round(float(np.mean(list(image_seconds.values()))), 3) if image_seconds else None,
        "seconds_per_image_max": round(image_seconds[slowest], 3) if slowest is not None else None,
        "slowest_image": images[slowest]["file_name"] if slowest is not None else None,
    }
    out["info"] = dict(out.get("info", {}), autolabel=dict(stats, source=os.path.basename(json_file)))
    return out, stats

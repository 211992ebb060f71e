"""Auto-labelling backends: one object's mask from its box (and points), in ``AUTOLABEL_BACKENDS``.

A backend (in ``AUTOLABEL_BACKENDS``) is built as ``Backend(**options)`` and called per image as
``backend(image, boxes, points)``:

- image: (H, W, 3) uint8 BGR (OpenCV's order);
- boxes: (n, 4) float XYXY in pixels;
- points: a list of n ``(coords (P, 2) xy, labels (P,))`` or None;

and returns (n, H, W) bool masks. Only ``model`` runs a network; the others are OpenCV / numpy,
so they run in worker processes.
"""
import logging
from typing import Dict

import cv2
import numpy as np
import torch
from detectron2.engine import DefaultPredictor
from detectron2.structures import Boxes, pairwise_iou

from ..config import ConfigError, build_config
from ..data.pixels import box_pixel_ranges
from ..modeling.checkpoint import WSISCheckpointer, unloaded_weights_error, weights_file_problem

# name (as on the command line) -> backend class; add yours with @register_backend("name")
AUTOLABEL_BACKENDS: Dict[str, type] = {}


def register_backend(name: str):
    def wrap(cls):
        if name in AUTOLABEL_BACKENDS:
            raise KeyError(f"autolabel backend {name!r} is already registered")
        AUTOLABEL_BACKENDS[name] = cls
        return cls

    return wrap

logger = logging.getLogger(__name__)


def fill_box(box, height: int, width: int) -> np.ndarray:
    """(H, W) bool: the pixels whose centres lie in the box."""
    (r0, r1), (c0, c1) = box_pixel_ranges(box, height, width)
    mask = np.zeros((height, width), bool)
    mask[r0:r1, c0:c1] = True
    return mask


@register_backend("box")
class BoxBackend:
    """The filled box: the crudest pseudo mask (and every other backend's fallback)."""

    def __call__(self, image: np.ndarray, boxes: np.ndarray, points=None) -> np.ndarray:
        h, w = image.shape[:2]
        return np.stack([fill_box(b, h, w) for b in boxes]) if len(boxes) else np.zeros((0, h, w), bool)


@register_backend("grabcut")
class GrabCutBackend:
    """OpenCV GrabCut initialised from the box (Rother et al., SIGGRAPH 2004; the box pseudo labels
    of SDI / BoxSup / Box2Seg).

    Outside the box is sure background, inside probable foreground; labelled
    points seed sure foreground (1) / background (0). GrabCut runs on a crop of
    the box plus ``margin`` (share of the box size, at least ``min_margin_px``)
    for speed, downscaled to at most ``max_side`` pixels a side (the mask is
    scaled back), so a box of a 6000x4000 photo costs what a small one does;
    its result is clipped to the box, and a mask covering less than
    ``min_fill`` of the box (GrabCut collapsed, or failed) falls back to the
    filled box. GrabCut's colour models start from k-means on OpenCV's global
    random generator; it is seeded with ``seed`` before each box, so a box's mask
    does not depend on what ran before (worker order, other boxes).
    """

    def __init__(self, iterations: int = 5, margin: float = 0.25, min_margin_px: int = 8,
                 min_fill: float = 0.05, point_radius: int = 1, seed: int = 0, max_side: int = 512):
        self.iterations = iterations
        self.margin = margin
        self.min_margin_px = min_margin_px
        self.min_fill = min_fill
        self.point_radius = point_radius
        self.seed = seed
        self.max_side = max_side

    def _one(self, image: np.ndarray, box, points) -> np.ndarray:
        h, w = image.shape[:2]
        box_mask = fill_box(box, h, w)
        (r0, r1), (c0, c1) = box_pixel_ranges(box, h, w)
        my = max(int(self.margin * (r1 - r0)), self.min_margin_px)
        mx = max(int(self.margin * (c1 - c0)), self.min_margin_px)
        y0, y1, x0, x1 = max(r0 - my, 0), min(r1 + my, h), max(c0 - mx, 0), min(c1 + mx, w)
        crop_box = box_mask[y0:y1, x0:x1]
        crop = image[y0:y1, x0:x1]
        # GrabCut's cost grows with the pixels: a large box (a 6000x4000 photo) is cut at most max_side
        # pixels a side and its mask scaled back
        scale = min(1.0, self.max_side / max(crop.shape[:2]))
        if scale < 1.0:
            size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
            small_box = cv2.resize(crop_box.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        else:
            small_box = crop_box
        init = np.where(small_box, cv2.GC_PR_FGD, cv2.GC_BGD).astype(np.uint8)
        if points is not None:
            for (px, py), label in zip(*points):
                if label < 0:
                    continue
                cx, cy = int((px - x0) * scale), int((py - y0) * scale)
                if 0 <= cx < init.shape[1] and 0 <= cy < init.shape[0]:
                    cv2.circle(init, (cx, cy), self.point_radius, int(cv2.GC_FGD if label == 1 else cv2.GC_BGD), -1)
        if not (init == cv2.GC_BGD).any() or (init == cv2.GC_BGD).all():
            return box_mask  # GrabCut needs samples of both sides
        try:
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            cv2.setRNGSeed(self.seed)
            cv2.grabCut(np.ascontiguousarray(crop), init, None, bgd, fgd, self.iterations, cv2.GC_INIT_WITH_MASK)
        except cv2.error as e:  # e.g. no background sample when the box fills the image
            logger.debug("GrabCut failed on box %s: %s; using the filled box", list(box), e)
            return box_mask
        fg = (init == cv2.GC_FGD) | (init == cv2.GC_PR_FGD)
        if scale < 1.0:  # back to the crop's size, the edge smoothed by linear interpolation
            fg = cv2.resize(fg.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR) >= 0.5
        mask = np.zeros((h, w), bool)
        mask[y0:y1, x0:x1] = fg & crop_box
        if mask.sum() < self.min_fill * box_mask.sum():
            return box_mask
        return mask

    def __call__(self, image: np.ndarray, boxes: np.ndarray, points=None) -> np.ndarray:
        h, w = image.shape[:2]
        if not len(boxes):
            return np.zeros((0, h, w), bool)
        return np.stack([self._one(image, b, None if points is None else points[i]) for i, b in enumerate(boxes)])


def _weights_left_unloaded(model, weights: str) -> list:
    """Names of ``model``'s weights that the checkpoint ``weights`` leaves at their initial values
    (:func:`~wsis_d2.modeling.checkpoint.unloaded_weight_names`). Asked of detectron2's own loader
    through its public ``load`` (detectron2 after v0.6 asserts that ``_load_file`` runs inside it), so
    its name matching (``module.`` prefixes, ``.pkl`` files, URLs) is what is checked.
    """
    checkpointer = WSISCheckpointer(model)
    checkpointer.load(weights, checkpointables=[])
    return checkpointer.unloaded_weights


@register_backend("model")
class ModelBackend:
    """Masks from a trained wsis-d2 (or detectron2) model, matched to the given boxes.

    The model predicts on the image; each given box takes the mask of the
    unclaimed prediction whose box overlaps it most (IoU >= ``match_iou``,
    class-agnostic), clipped to the box. Boxes left unmatched get the
    ``fallback`` backend's mask.
    """

    def __init__(self, config_file: str, weights: str, fallback: str = "grabcut", match_iou: float = 0.5,
                 score_thresh: float = 0.05, opts=()):
        problem = weights_file_problem(weights)
        if problem is not None:
            raise ConfigError(f"--weights {problem}")
        cfg = build_config(config_file, list(opts) + ["MODEL.WEIGHTS", weights])
        self.predictor = DefaultPredictor(cfg)
        unloaded = _weights_left_unloaded(self.predictor.model, weights)
        if unloaded:
            raise unloaded_weights_error(weights, unloaded, self.predictor.model, config_file)
        self.fallback = AUTOLABEL_BACKENDS[fallback]()
        self.match_iou = match_iou
        self.score_thresh = score_thresh
        self.matched = 0
        self.total = 0

    def __call__(self, image: np.ndarray, boxes: np.ndarray, points=None) -> np.ndarray:
        h, w = image.shape[:2]
        if not len(boxes):
            return np.zeros((0, h, w), bool)
        with torch.no_grad():
            pred = self.predictor(image)["instances"].to("cpu")
        pred = pred[pred.scores >= self.score_thresh]
        self.total += len(boxes)
        masks = np.zeros((len(boxes), h, w), bool)
        unmatched = set(range(len(boxes)))
        if len(pred) and pred.has("pred_masks"):
            iou = pairwise_iou(Boxes(torch.as_tensor(boxes, dtype=torch.float32)), pred.pred_boxes).numpy()
            claimed = set()  # greedy one-to-one matching, best IoU first
            for flat in np.argsort(-iou, axis=None):
                i, j = np.unravel_index(flat, iou.shape)
                if iou[i, j] < self.match_iou:
                    break
                if i not in unmatched or j in claimed:
                    continue
                mask = pred.pred_masks[j].numpy() & fill_box(boxes[i], h, w)
                if mask.any():
                    masks[i] = mask
                    unmatched.discard(i)
                    claimed.add(j)
        self.matched += len(boxes) - len(unmatched)
        if unmatched:  # only these pay for the (slower) fallback
            rest = sorted(unmatched)
            masks[rest] = self.fallback(image, boxes[rest], None if points is None else [points[i] for i in rest])
        return masks

"""PointWSSIS end to end (Kim et al., CVPR 2023), on this project's CondInst.

Input: a semi-supervised COCO file (``semi_<p>`` view: the images listed in
``info.fully_labelled_image_ids`` have masks, the others boxes + one point per
object). Steps, each in its own folder of ``output_dir`` with a ``DONE.json``
marker, so that a rerun resumes after the last finished step:

1. ``teacher``: CondInst trained on the fully-labelled images only;
2. ``refiner``: MaskRefineNet trained on rough masks of those images paired with
   their GT (input: crop, rough mask, GT centre-point heat-map). The rough masks
   are the kinds step 3 uses: the box prior's (below) and the teacher's, from its
   final weights and from its checkpoint nearest mid-schedule (the reference also
   pairs two teacher checkpoints);
3. ``pseudo``: on the weak images, teacher predictions matched to the points
   (:func:`match_points_to_masks`) and a box prior for every object (GrabCut in
   its box, seeded with the point); the teacher's mask is kept where it is more
   consistent with the GT box than the prior's (:mod:`wsis_d2.modeling.pointwssis.rough_select`), and the
   chosen rough mask is refined by MaskRefineNet with the real point. Written as
   ``pseudo_labels.json`` (RLE) beside the GT of the strong images;
4. ``student``: CondInst trained on that file (and evaluated).

Deviations: the reference decodes one mask per point from SOLOv2's grid
(prompting) and keeps the best-scored pyramid level; here finished CondInst
predictions are matched to the points, and the choice is between the teacher's
mask and the box prior. The reference's weak objects carry a point only; this
project's semi views also carry the box, which the prior and the choice use: a
teacher trained from scratch on a few dozen images misses half the points and
draws worse masks than GrabCut where it finds them (measured on shapes_semi_10:
0.69 vs 0.93 mean IoU on the points it covers).
Limit: step 2 holds the fully-labelled images and full-size masks in memory,
which suits small subsets (the shapes data), not 10 % of COCO yet.
"""
import json
import logging
import os
import shutil
import time
from typing import Dict, List

import cv2
import numpy as np
import torch

from detectron2.engine import DefaultPredictor

from ..autolabel.backends import AUTOLABEL_BACKENDS, fill_box
from ..config import ConfigError, build_config
from ..data.checks import AnnotationError, check_coco_instances
from ..data.register import register_wsis_coco_instances
from ..data.rle import decode, encode_mask
from ..data.views import center_point
from ..engine import default_argument_parser, run
from ..modeling.losses import dice_loss
from ..modeling.pointwssis.crops import crop_boxes, crop_inputs, paste_masks
from ..modeling.pointwssis.mask_refine_net import MaskRefineNet, point_heatmaps
from ..modeling.pointwssis.point_match import match_points_to_masks
from ..modeling.pointwssis.rough_select import keep_teacher_masks

logger = logging.getLogger("wsis_d2")

STEPS = ("teacher", "refiner", "pseudo", "student")
# Recorded with the inputs and bumped when a step's method changes, so that a resume never mixes
# the outputs of two methods (2: box prior and box-consistent choice of the rough masks).
PIPELINE_VERSION = 2


def split_semi(coco: dict, json_file: str):
    """(strong COCO dict, weak annotations by image id) of a semi view."""
    info = coco.get("info", {})
    if "fully_labelled_image_ids" not in info:
        raise AnnotationError(f"{json_file}: field 'info.fully_labelled_image_ids' is missing; make the file with "
                              "'wsis-d2 views --views semi_<p>'")
    strong_ids = set(info["fully_labelled_image_ids"])
    strong = dict(coco, images=[i for i in coco["images"] if i["id"] in strong_ids],
                  annotations=[a for a in coco["annotations"] if a["image_id"] in strong_ids])
    weak: Dict[int, list] = {i["id"]: [] for i in coco["images"] if i["id"] not in strong_ids}
    for a in coco["annotations"]:
        if a["image_id"] in weak:
            if len(a.get("point_coords", [])) != 1:
                raise AnnotationError(f"{json_file}: annotation id {a.get('id')}: a weakly-labelled object needs "
                                      "exactly one point in field 'point_coords'")
            weak[a["image_id"]].append(a)
    return strong, weak


def build_predictor(cfg, weights: str):
    """detectron2's ``DefaultPredictor`` (BGR image in, resize, ``Instances`` at the image's size out)
    of the teacher, returning soft masks too (``pred_mask_probs``)."""
    cfg = cfg.clone()
    cfg.MODEL.WEIGHTS = weights
    predictor = DefaultPredictor(cfg)
    predictor.model.keep_mask_probs = True
    return lambda image_bgr: predictor(image_bgr)["instances"].to("cpu")


def xyxy(bbox) -> list:
    """COCO [x, y, w, h] -> [x0, y0, x1, y1]."""
    return [bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]]


def _image_tensor(image_bgr: np.ndarray) -> torch.Tensor:
    """(3, H, W) RGB in [0, 1]: MaskRefineNet's input."""
    return torch.as_tensor(np.ascontiguousarray(image_bgr[:, :, ::-1].transpose(2, 0, 1))).float() / 255.0


def refine(net: MaskRefineNet, image: torch.Tensor, rough: torch.Tensor, boxes: torch.Tensor, points: torch.Tensor,
           classes: torch.Tensor, size: int, scale) -> torch.Tensor:
    """MaskRefineNet's (N, H, W) probabilities in the image for N objects (rough (N, H, W) masks,
    XYXY ``boxes``, one point and class each), crops of the box scaled by ``scale``."""
    crops = crop_boxes(boxes, points, scale)
    image_crops, mask_crops, crop_points = crop_inputs(image, rough, crops, points, size)
    x = torch.cat([image_crops, mask_crops, point_heatmaps(crop_points, classes, net.num_classes, size)], dim=1)
    return paste_masks(net(x).sigmoid(), crops, *image.shape[-2:])


def _read(image_root: str, img: dict, json_file: str) -> np.ndarray:
    path = os.path.join(image_root, img["file_name"])
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise AnnotationError(f"{json_file}: image id {img['id']}: cannot read {path}")
    if image.shape[:2] != (img["height"], img["width"]):
        raise AnnotationError(f"{json_file}: image id {img['id']}: {path} is {image.shape[1]}x{image.shape[0]}, "
                              f"the JSON says 'width' {img['width']}, 'height' {img['height']}")
    return image


def box_prior(image_bgr: np.ndarray, boxes: np.ndarray, points: np.ndarray) -> torch.Tensor:
    """(n, H, W) float rough masks: GrabCut in each XYXY box (n, 4), its labelled point (n, 2) sure
    foreground (the ``grabcut`` auto-labelling backend, clipped to the box)."""
    seeds = [(p[None], np.ones(1)) for p in points]
    return torch.as_tensor(AUTOLABEL_BACKENDS["grabcut"]()(image_bgr, boxes, seeds), dtype=torch.float32)


def teacher_checkpoints(teacher_dir: str, max_iter: int) -> List[str]:
    """The teacher's final weights and, when there is one, its periodic checkpoint nearest
    mid-schedule: a less fitted teacher whose masks on its own training images look more like
    the final teacher's on images it never saw."""
    final = os.path.join(teacher_dir, "model_final.pth")
    periodic = {}
    for name in os.listdir(teacher_dir):
        stem = name[len("model_"):-len(".pth")] if name.startswith("model_") and name.endswith(".pth") else ""
        if stem.isdigit():
            periodic[int(stem) + 1] = os.path.join(teacher_dir, name)
    if not periodic:
        return [final]
    middle = min(sorted(periodic), key=lambda it: abs(it - max_iter / 2))
    return [final] if middle >= max_iter else [final, periodic[middle]]


def choose_rough_masks(pred, points: torch.Tensor, classes: torch.Tensor, boxes: torch.Tensor,
                       prior: torch.Tensor, score_thresh: float = 0.05):
    """Step 3's rough masks of one image's n point-labelled objects.

    Args:
        pred: the teacher's ``Instances`` (``pred_masks``, ``pred_mask_probs``, ``pred_classes``,
            ``scores``) at the image's size; points: (n, 2); classes: (n,); boxes: (n, 4) XYXY GT
            boxes; prior: (n, H, W) the box prior's masks.

    Returns:
        rough (n, H, W) float masks (the teacher's, clipped to the box, where kept, else the prior's),
        matched (n,) bool (a teacher prediction covers the point), kept (n,) bool.
    """
    pred = pred[pred.scores >= score_thresh]
    match = match_points_to_masks(points, classes, pred.pred_masks, pred.pred_classes, pred.scores)
    rough = prior.clone()
    kept = torch.zeros(len(points), dtype=torch.bool)
    found = torch.nonzero(match >= 0).squeeze(1)
    if found.numel():
        h, w = prior.shape[-2:]
        in_box = torch.as_tensor(np.stack([fill_box(b, h, w) for b in boxes[found].tolist()]))
        teacher = pred.pred_mask_probs[match[found]] * in_box
        keep = keep_teacher_masks(teacher > 0.5, prior[found] > 0.5, boxes[found])
        rough[found[keep]] = teacher[keep]
        kept[found[keep]] = True
    return rough, match >= 0, kept


def _refiner_pairs(predictors, strong: dict, image_root: str, category_index: Dict[int, int], json_file: str):
    """Training pairs on the strong images: (image id, rough prob mask, GT mask, GT centre point, class,
    box). The rough masks are the ones step 3 would hand MaskRefineNet, with the GT centre as the
    point: the box prior's for every object, and each teacher's where :func:`choose_rough_masks`
    keeps it."""
    pairs = []
    by_image: Dict[int, list] = {}
    for a in strong["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    for img in strong["images"]:
        anns = by_image.get(img["id"], [])
        if not anns:
            continue
        image = _read(image_root, img, json_file)
        h, w = img["height"], img["width"]
        boxes = torch.tensor([xyxy(a["bbox"]) for a in anns])
        centres = torch.tensor([center_point(a["segmentation"], h, w) for a in anns], dtype=torch.float32)
        classes = torch.tensor([category_index[a["category_id"]] for a in anns])
        prior = box_prior(image, boxes.numpy(), centres.numpy())
        roughs = [(k, prior[k]) for k in range(len(anns))]
        for predictor in predictors:
            rough, _, kept = choose_rough_masks(predictor(image), centres, classes, boxes, prior)
            roughs += [(k, rough[k]) for k in torch.nonzero(kept).squeeze(1).tolist()]
        gts = [torch.as_tensor(decode(a["segmentation"], h, w), dtype=torch.float32) for a in anns]
        for k, rough in roughs:
            pairs.append((img["id"], rough, gts[k], centres[k], int(classes[k]),
                          torch.tensor(anns[k]["bbox"], dtype=torch.float32)))
    return pairs


def train_refiner(pairs, images: Dict[int, torch.Tensor], num_classes: int, iters: int, size: int,
                  batch_size: int = 8, lr: float = 1e-3, seed: int = 0) -> MaskRefineNet:
    """MaskRefineNet on (rough -> GT) pairs: dice loss, Adam, cosine schedule; crops of the box
    scaled by U[1, 2]."""
    torch.manual_seed(seed)
    net = MaskRefineNet(num_classes)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(iters, 1))
    start = time.perf_counter()
    for it in range(iters):
        batch = [pairs[int(i)] for i in torch.randint(len(pairs), (batch_size,))]
        inputs, targets = [], []
        for image_id, rough, gt, point, cls, bbox in batch:
            box = torch.cat([bbox[:2], bbox[:2] + bbox[2:]])[None]
            crops = crop_boxes(box, point[None], 1.0 + torch.rand(1))
            image_crop, mask_crop, crop_point = crop_inputs(images[image_id], rough[None], crops, point[None], size)
            _, gt_crop, _ = crop_inputs(images[image_id], gt[None], crops, point[None], size)
            heat = point_heatmaps(crop_point, torch.tensor([cls]), num_classes, size)
            inputs.append(torch.cat([image_crop, mask_crop, heat], dim=1))
            targets.append(gt_crop)
        loss = dice_loss(net(torch.cat(inputs)).sigmoid(), torch.cat(targets)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        if (it + 1) % 20 == 0 or it + 1 == iters:
            eta = (time.perf_counter() - start) / (it + 1) * (iters - it - 1)
            logger.info(f"[refiner] iter {it + 1}/{iters}  dice loss {loss.item():.4f}  eta {eta:.0f} s")
    return net.eval()


def pseudo_label(predictor, net: MaskRefineNet, coco: dict, weak: Dict[int, list], image_root: str,
                 category_index: Dict[int, int], size: int, json_file: str, score_thresh: float = 0.05):
    """Pseudo masks for the weak objects; returns (annotations, stats: objects, points a teacher
    prediction covers, teacher masks kept over the box prior, box-prior masks)."""
    images = {i["id"]: i for i in coco["images"]}
    annotations, total, matched, kept = [], 0, 0, 0
    for image_id, anns in weak.items():
        if not anns:
            continue
        img = images[image_id]
        image_bgr = _read(image_root, img, json_file)
        points = torch.tensor([a["point_coords"][0] for a in anns], dtype=torch.float32)
        classes = torch.tensor([category_index[a["category_id"]] for a in anns])
        h, w = img["height"], img["width"]
        boxes = torch.tensor([xyxy(a["bbox"]) for a in anns])
        prior = box_prior(image_bgr, boxes.numpy(), points.numpy())
        rough, found, keep = choose_rough_masks(predictor(image_bgr), points, classes, boxes, prior, score_thresh)
        matched += int(found.sum())
        kept += int(keep.sum())
        total += len(anns)
        with torch.no_grad():
            probs = refine(net, _image_tensor(image_bgr), rough, boxes, points, classes, size, 2.0)
        for a, prob, point, box in zip(anns, probs, points, boxes.tolist()):
            mask = (prob > 0.5).numpy() & fill_box(box, h, w)  # the object lies in its box
            px, py = int(point[0]), int(point[1])
            mask[min(py, h - 1), min(px, w - 1)] = True  # the labelled point is on the object
            rle = encode_mask(mask)
            annotations.append({k: v for k, v in a.items() if k not in ("point_coords", "point_labels")}
                               | {"segmentation": rle, "area": float(mask.sum())})
    return annotations, {"weak_objects": total, "matched_to_teacher": matched, "teacher_masks_kept": kept,
                         "box_prior_masks": total - kept}


def _check_same_inputs(output_dir: str, inputs: dict) -> None:
    """Resuming is only sound with the same inputs: record them, refuse others."""
    path = os.path.join(output_dir, "PIPELINE.json")
    if os.path.isfile(path):
        with open(path) as f:
            before = json.load(f)
        if before != json.loads(json.dumps(inputs)):
            changed = sorted(k for k in set(before) | set(inputs) if before.get(k) != inputs.get(k))
            raise ConfigError(f"{output_dir} holds a PointWSSIS run with other inputs ({', '.join(changed)} differ, "
                             f"see {path}); choose another output dir or delete it")
        return
    with open(path, "w") as f:
        json.dump(inputs, f, indent=1)


def _done(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "DONE.json"))


def _mark_done(folder: str, **facts) -> None:
    with open(os.path.join(folder, "DONE.json"), "w") as f:
        json.dump(facts, f, indent=1)


def _train(config_file: str, dataset: str, output_dir: str, opts: List[str]):
    """Train + evaluate; ``--resume`` continues an interrupted step from its last checkpoint."""
    args = default_argument_parser().parse_args(
        ["--config-file", config_file, "--resume"] + opts
        + ["DATASETS.TRAIN", f"('{dataset}',)", "OUTPUT_DIR", output_dir])
    return run(args)


def run_pipeline(semi_json: str, image_root: str, config_file: str, output_dir: str, opts: List[str] = (),
                 refiner_iters: int = 1500, crop_size: int = 64) -> dict:
    """Run (or resume) the four steps; returns the student's evaluation results."""
    if crop_size % 2 ** MaskRefineNet.DEFAULT_DEPTH:
        raise ConfigError(f"crop size {crop_size} must be divisible by {2 ** MaskRefineNet.DEFAULT_DEPTH}")
    with open(semi_json) as f:
        coco = json.load(f)
    check_coco_instances(coco, semi_json, image_root)
    strong, weak = split_semi(coco, semi_json)
    category_index = {c["id"]: k for k, c in enumerate(sorted(coco["categories"], key=lambda c: c["id"]))}
    os.makedirs(output_dir, exist_ok=True)
    _check_same_inputs(output_dir, {"pipeline_version": PIPELINE_VERSION, "semi_json": os.path.abspath(semi_json),
                                    "semi_json_bytes": os.path.getsize(semi_json),
                                    "image_root": os.path.abspath(image_root), "config_file": config_file,
                                    "opts": list(opts), "refiner_iters": refiner_iters, "crop_size": crop_size})
    folders = {s: os.path.join(output_dir, s) for s in STEPS}
    for k, step in enumerate(STEPS):  # a step that runs again makes every later one stale
        if not _done(folders[step]):
            for later in STEPS[k + 1:]:
                shutil.rmtree(folders[later], ignore_errors=True)
            break
    strong_json = os.path.join(output_dir, "strong.json")
    with open(strong_json, "w") as f:
        json.dump(strong, f)
    register_wsis_coco_instances("pointwssis_strong", {}, strong_json, image_root, replace=True)

    def progress(k, step, what):
        logger.info(f"[PointWSSIS step {k}/4: {step}] {what}")

    if _done(folders["teacher"]):
        progress(1, "teacher", "done before, skipped")
    else:
        progress(1, "teacher", f"CondInst on {len(strong['images'])} fully-labelled images")
        _train(config_file, "pointwssis_strong", folders["teacher"], list(opts))
        _mark_done(folders["teacher"], images=len(strong["images"]))
    cfg = build_config(config_file, list(opts) + ["OUTPUT_DIR", folders["teacher"]])
    checkpoints = teacher_checkpoints(folders["teacher"], cfg.SOLVER.MAX_ITER)
    predictor = build_predictor(cfg, checkpoints[0])

    refiner_file = os.path.join(folders["refiner"], "model_final.pth")
    if _done(folders["refiner"]):
        progress(2, "refiner", "done before, skipped")
        net = MaskRefineNet(len(category_index))
        net.load_state_dict(torch.load(refiner_file, map_location="cpu"))
        net.eval()
    else:
        progress(2, "refiner", f"MaskRefineNet, {refiner_iters} iterations, rough masks from "
                               f"{', '.join(os.path.basename(c) for c in checkpoints)} and the GrabCut box prior")
        os.makedirs(folders["refiner"], exist_ok=True)
        predictors = [predictor] + [build_predictor(cfg, c) for c in checkpoints[1:]]
        pairs = _refiner_pairs(predictors, strong, image_root, category_index, semi_json)
        if not pairs:
            raise AnnotationError(f"{semi_json}: the fully-labelled images hold no object to train MaskRefineNet")
        images = {i["id"]: _image_tensor(_read(image_root, i, semi_json)) for i in strong["images"]}
        net = train_refiner(pairs, images, len(category_index), refiner_iters, crop_size)
        torch.save(net.state_dict(), refiner_file)
        _mark_done(folders["refiner"], pairs=len(pairs), iters=refiner_iters)

    pseudo_json = os.path.join(folders["pseudo"], "pseudo_labels.json")
    if _done(folders["pseudo"]):
        progress(3, "pseudo", f"done before, skipped ({pseudo_json})")
    else:
        progress(3, "pseudo", f"pseudo masks for {sum(len(v) for v in weak.values())} point-labelled objects")
        os.makedirs(folders["pseudo"], exist_ok=True)
        annotations, stats = pseudo_label(predictor, net, coco, weak, image_root, category_index,
                                          crop_size, semi_json)
        out = dict(coco, annotations=strong["annotations"] + annotations,
                   info=dict(coco.get("info", {}), pointwssis=stats))
        with open(pseudo_json, "w") as f:
            json.dump(out, f)
        _mark_done(folders["pseudo"], **stats)
        logger.info(f"[PointWSSIS] {stats} -> {pseudo_json}")
    register_wsis_coco_instances("pointwssis_pseudo", {}, pseudo_json, image_root, replace=True)

    if _done(folders["student"]):
        progress(4, "student", "done before, skipped")
        with open(os.path.join(folders["student"], "DONE.json")) as f:
            return json.load(f)
    progress(4, "student", "CondInst on fully-labelled + pseudo-labelled images")
    results = _train(config_file, "pointwssis_pseudo", folders["student"], list(opts))
    _mark_done(folders["student"], **{k: v for k, v in (results or {}).items()})
    return results

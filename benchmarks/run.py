#!/usr/bin/env python
"""Train + evaluate methods on the shapes data under one backbone and schedule.

    python benchmarks/run.py                              # CPU preset, every method
    python benchmarks/run.py --methods condinst,mask_rcnn
    python benchmarks/run.py --gpu                        # the GPU preset (lent GPU machine)
    python benchmarks/run.py --preset cpu_2x --methods boxinst,boxteacher   # the CPU schedule doubled
    python benchmarks/run.py --methods boxinst,boxteacher --seeds 1,2,3   # repeats, mean +- std

Each method trains in a fresh process; the rows (see ``ROW_KEYS``) are merged
into ``benchmarks/results/<date>.json`` and ``.md`` (a rerun of a method
replaces its row of that day, preset and seed). Without ``--seeds`` a run is
unseeded (detectron2's ``SEED -1``); with them each seed is one row and the
``.md`` adds the mean and spread per method. This is not a test: it measures.
"""
import argparse
import datetime
import json
import multiprocessing as mp
import os
import platform
import queue as queue_module
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"

# Teacher-student rows also measure their pseudo masks against the training images' hidden GT masks
# every 100 iterations (WSIS.PSEUDO_MASK_EVAL; the model never reads them).
PSEUDO_MASK_EVAL = ["WSIS.PSEUDO_MASK_EVAL.PERIOD", "100", "WSIS.PSEUDO_MASK_EVAL.DATASET", "shapes_full",
                    "WSIS.PSEUDO_MASK_EVAL.NUM_IMAGES", "32"]


def _boxteacher(strong_aug: bool, start_iter: int, extra: list = ()) -> dict:
    return {"config": "BoxTeacher/R18_shapes.yaml", "full_twin": "condinst",
            "opts": PSEUDO_MASK_EVAL + ["MODEL.BOX_TEACHER.STRONG_AUG", str(strong_aug),
                                        "MODEL.BOX_TEACHER.START_ITER", str(start_iter)] + list(extra)}


SIM_REFERENCE_LOSSES = ["ProjectionLoss", "TeacherFeaturePairwiseLoss", "SemanticPseudoMaskLoss"]
SIM_COLOUR_LOSSES = ["ProjectionLoss", "PairwiseColorLoss", "SemanticPseudoMaskLoss"]
BOXTEACHER_FEATURE_LOSSES = ["ProjectionLoss", "TeacherFeaturePairwiseLoss", "PseudoMaskLoss", "PseudoAffinityLoss"]
BOXTEACHER_DICE_ONLY_LOSSES = ["ProjectionLoss", "PairwiseColorLoss", "PseudoMaskLoss"]

# method -> shipped config, the view it trains on, and its fully-supervised twin
METHODS = {
    "condinst": {"config": "CondInst/R18_shapes.yaml", "full_twin": "condinst"},
    "mask_rcnn": {"config": "MaskRCNN/R18_shapes.yaml", "full_twin": "mask_rcnn"},
    "boxinst": {"config": "BoxInst/R18_shapes.yaml", "full_twin": "condinst"},
    "boxlevelset": {"config": "BoxLevelSet/R18_shapes.yaml", "full_twin": "condinst"},
    "boxinst_mask_rcnn": {"config": "BoxInst/MaskRCNN_R18_shapes.yaml", "full_twin": "mask_rcnn"},
    "pointsup_condinst": {"config": "PointSup/CondInst_R18_shapes.yaml", "full_twin": "condinst"},
    "pointsup_mask_rcnn": {"config": "PointSup/MaskRCNN_R18_shapes.yaml", "full_twin": "mask_rcnn"},
    "boxteacher": {"config": "BoxTeacher/R18_shapes.yaml", "full_twin": "condinst", "opts": PSEUDO_MASK_EVAL},
    "sim": {"config": "SIM/R18_shapes.yaml", "full_twin": "condinst", "opts": PSEUDO_MASK_EVAL},
    # BoxTeacher variants, each with both of the shapes preset's departures from the reference set
    # explicitly (the student's view, STRONG_AUG, and the pseudo-mask losses' START_ITER): the preset
    # (`boxteacher`) is the plain view from iteration 500; the rest reproduce the 2026-11-25/30 ablations.
    "boxteacher_reference_view": _boxteacher(strong_aug=True, start_iter=0),
    "boxteacher_plain_view": _boxteacher(strong_aug=False, start_iter=0),
    # the pseudo-mask losses ramped over the whole run (tests the early, poor teacher)
    "boxteacher_plain_view_slow_ramp": _boxteacher(strong_aug=False, start_iter=0,
                                                   extra=["MODEL.BOX_TEACHER.WARMUP_ITERS", "1100"]),
    # the pseudo-mask losses from iteration 500 on, when BoxInst (seed 1) has carved the rings' holes (0.41
    # of the hole pixels still called ring, against 0.89 for BoxTeacher from iteration 0)
    "boxteacher_late_start": _boxteacher(strong_aug=True, start_iter=500),
    # both: the shapes preset since 2026-11-30 (the name of its first rows)
    "boxteacher_plain_view_late_start": _boxteacher(strong_aug=False, start_iter=500),
    # the pseudo-mask losses from iteration 800: they freeze the rings' holes as the teacher holds them when
    # they start, and BoxInst keeps carving the holes after 500 (hole fill 0.38 / 0.48 at 500, 0.25 / 0.31
    # at 1000, seeds 4 / 5)
    "boxteacher_plain_view_start_800": _boxteacher(strong_aug=False, start_iter=800),
    # the preset with PseudoMaskLoss weighing pixels by the teacher's certainty |2p - 1|: from iteration 500
    # the preset's rings stop losing their holes (hole fill 0.50 -> 0.45-0.51 at iteration 1000, BoxInst
    # 0.38-0.48 -> 0.25-0.31) while 18 % of the hole pixels sit at teacher probability 0.5-0.9
    "boxteacher_pixel_confidence": _boxteacher(strong_aug=False, start_iter=500,
                                               extra=["MODEL.BOX_TEACHER.CONFIDENCE_PIXEL_WEIGHTS", "True"]),
    # the preset with the teacher's foreground pixels at 1/4 of its background ones in PseudoMaskLoss: a
    # box-trained teacher errs by filling (holes), so the freeze above comes from its foreground; SIM's focal
    # loss (alpha .25) weighs foreground the same way and its late-start rows keep their holes. From
    # iteration 500 (the preset) and from 120 (early labels, which gave SIM its gains on the other classes)
    "boxteacher_background_trust": _boxteacher(strong_aug=False, start_iter=500,
                                               extra=["MODEL.BOX_TEACHER.FOREGROUND_PIXEL_WEIGHT", "0.25"]),
    "boxteacher_early_background_trust": _boxteacher(
        strong_aug=False, start_iter=120, extra=["MODEL.BOX_TEACHER.FOREGROUND_PIXEL_WEIGHT", "0.25"]),
    # the preset with SIM's pairwise term in place of BoxInst's (colour x teacher-feature similarity >= .1;
    # the teacher runs from iteration 0 for it), not in the BoxTeacher reference: on SIM it lifted ring AP
    # from 16.3 to 25.9 over seeds 1-5, and the preset's loss to BoxInst is on the rings (24.3 against 29.4)
    "boxteacher_feature_pairwise": _boxteacher(strong_aug=False, start_iter=500,
                                               extra=["MODEL.CONDINST.MASK_LOSSES", str(BOXTEACHER_FEATURE_LOSSES)]),
    # the same with the product held to BoxInst's colour threshold (.3): the term then only cuts colour edges
    # (seeds 1 and 2 of the row above, at .1, filled the rings: hole fill 0.89 and 0.88)
    "boxteacher_feature_pairwise_cut_only": _boxteacher(
        strong_aug=False, start_iter=500,
        extra=["MODEL.CONDINST.MASK_LOSSES", str(BOXTEACHER_FEATURE_LOSSES), "MODEL.SIM.PAIRWISE_THRESH", "0.3"]),
    # the preset with the teacher's foreground checked against the colours around each box (not in the
    # reference): on shapes train, 0.697 of the in-box cells off the object (holes, corners) but 0.012 of
    # those on it match a band cell within BoxInst's colour threshold (benchmarks/background_color_check.py). The teacher's filled holes are the
    # preset's loss to BoxInst; "ignore" stops the pseudo masks confirming them, "background" carves them
    "boxteacher_background_color_ignore": _boxteacher(
        strong_aug=False, start_iter=500, extra=["MODEL.BOX_TEACHER.BACKGROUND_COLOR.MODE", "ignore"]),
    "boxteacher_background_color": _boxteacher(
        strong_aug=False, start_iter=500, extra=["MODEL.BOX_TEACHER.BACKGROUND_COLOR.MODE", "background"]),
    # without BoxTeacher's affinity term, which asks neighbours the teacher's smoothed mask agrees on to share
    # a label whatever their colours: where the teacher fills a ring's hole it ties the hole to the ring
    # across the colour edge that BoxInst's pairwise term leaves free (seed 1 of both rows above filled the
    # rings, hole fill 0.91 / 0.89, with the colour check on the dice)
    "boxteacher_no_affinity": _boxteacher(strong_aug=False, start_iter=500,
                                          extra=["MODEL.CONDINST.MASK_LOSSES", str(BOXTEACHER_DICE_ONLY_LOSSES)]),
    "boxteacher_background_color_no_affinity": _boxteacher(
        strong_aug=False, start_iter=500, extra=["MODEL.CONDINST.MASK_LOSSES", str(BOXTEACHER_DICE_ONLY_LOSSES),
                                                 "MODEL.BOX_TEACHER.BACKGROUND_COLOR.MODE", "background"]),
    # SIM with its pseudo labels from iteration 500 (the shapes config: 120), after the BoxTeacher finding
    # above, on SIM, whose rows fill the rings' holes (ring AP 12-23 against BoxInst's 31-34 at seeds 2, 4,
    # 5). Unlike BoxTeacher's START_ITER, SIM's loss ramp counts from iteration 0: it starts at 500/1100.
    "sim_late_start": {"config": "SIM/R18_shapes.yaml", "full_twin": "condinst",
                       "opts": PSEUDO_MASK_EVAL + ["MODEL.SIM.START_ITER", "500",
                                                   "MODEL.CONDINST.MASK_LOSSES", str(SIM_COLOUR_LOSSES)]},
    # SIM with the reference's pairwise term (colour x teacher-feature similarity >= .1), the shapes
    # preset since 2026-12-01 (the name of its first rows); `sim_colour_pairwise`, BoxInst's colour-only
    # term (>= .3), is the preset before it (the `sim` rows of 2026-11-25/30)
    "sim_feature_pairwise": {"config": "SIM/R18_shapes.yaml", "full_twin": "condinst",
                             "opts": PSEUDO_MASK_EVAL + ["MODEL.CONDINST.MASK_LOSSES", str(SIM_REFERENCE_LOSSES)]},
    "sim_colour_pairwise": {"config": "SIM/R18_shapes.yaml", "full_twin": "condinst",
                            "opts": PSEUDO_MASK_EVAL + ["MODEL.CONDINST.MASK_LOSSES", str(SIM_COLOUR_LOSSES)]},
    # both: the pseudo labels from iteration 500 (`sim_late_start`) and the reference's pairwise term
    "sim_late_start_feature_pairwise": {"config": "SIM/R18_shapes.yaml", "full_twin": "condinst",
                                        "opts": PSEUDO_MASK_EVAL + ["MODEL.SIM.START_ITER", "500",
                                                                    "MODEL.CONDINST.MASK_LOSSES",
                                                                    str(SIM_REFERENCE_LOSSES)]},
    "pseudo_box_condinst": {"config": "PseudoLabel/CondInst_box_R18_shapes.yaml", "full_twin": "condinst"},
    "pseudo_grabcut_condinst": {"config": "PseudoLabel/CondInst_grabcut_R18_shapes.yaml", "full_twin": "condinst"},
}
# PointWSSIS at p % fully-labelled images (the rest one point per object): one pipeline run gives the
# student's row and the teacher-only baseline's (CondInst on the p % alone: what the points add).
for _p in (5, 10, 50):
    METHODS[f"pointwssis_p{_p}"] = {"pipeline": "pointwssis", "percent": _p, "full_twin": "condinst"}
    METHODS[f"pointwssis_teacher_p{_p}"] = {"made_by": f"pointwssis_p{_p}", "full_twin": "condinst"}
# PointSup's annotation-budget curve: the same model with the first K of each object's 10 points
for _k in (1, 3, 5):
    METHODS[f"pointsup_condinst_{_k}pts"] = dict(METHODS["pointsup_condinst"],
                                                 opts=["INPUT.POINTS_PER_INSTANCE", str(_k)])

# Overrides on top of the shipped R18_shapes configs (which already hold the CPU schedule).
PRESETS = {
    "cpu": [],
    # the CPU schedule doubled as detectron2 stretches 1x to 3x: the solver's steps and length only (the LR
    # and loss warm-ups and BoxTeacher's START_ITER stay); two runs at a time, one core each, take ~39 min
    # (BoxInst) and ~57 min (BoxTeacher)
    "cpu_2x": ["SOLVER.MAX_ITER", "2200", "SOLVER.STEPS", "(1600, 2000)", "SOLVER.CHECKPOINT_PERIOD", "1100"],
    "gpu": ["MODEL.DEVICE", "cuda", "SOLVER.IMS_PER_BATCH", "16", "SOLVER.MAX_ITER", "3000",
            "SOLVER.STEPS", "(2100, 2700)", "SOLVER.WARMUP_ITERS", "300", "DATALOADER.NUM_WORKERS", "4",
            "SOLVER.CHECKPOINT_PERIOD", "1000"],
}

# peak_rss_mb: peak resident memory of the training process (not its data-loader workers).
# gt_mask_iou: mean over GT objects of the best mask IoU of any prediction scored >= 0.3
# (0 when none), class-agnostic: mask quality and recall apart from classification.
# gt_hole_fill: over GT objects whose masks have holes (shapes: rings), the share of hole pixels their
# best-IoU prediction calls object (CondInst-full ~0.26; a filled ring is 1).
# seed: detectron2's SEED of the run (None: unseeded).
# JSON rows only: config_fingerprint, a hash of the resolved config's changes to the defaults without
# OUTPUT_DIR and SEED (seeded repeats of one setting share it; the seed summary pools by it), and
# segm_AP50, segm_AP75 and segm_AP_per_class (on shapes the rings' AP tells whether a box-supervised
# model carved their holes).
# twin_date: the results file the full twin's row came from (today's, else the newest earlier one).
# pseudo_mask_miou: teacher-student rows, the last measurement of their kept pseudo masks' mean IoU vs
# hidden GT (the JSON also holds pseudo_mask_curve: [iteration, mIoU, share of GT boxes kept] rows);
# PointWSSIS rows, the mean IoU of the pipeline's pseudo masks of the point-labelled objects vs hidden GT.
ROW_KEYS = ["method", "seed", "config", "train_set", "eval_set", "preset", "iters", "device", "segm_AP", "bbox_AP",
            "ratio_to_full", "twin_date", "gt_mask_iou", "gt_hole_fill", "pseudo_mask_miou", "s_per_iter",
            "peak_rss_mb", "train_eval_minutes", "commit"]


def _device_name(preset: str) -> str:
    if preset == "gpu":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cuda (unavailable)"
    return f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def _commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _train_and_eval(config_file: str, opts: list, queue) -> None:
    """Runs in a fresh spawned process: train + final evaluation, then report peak memory."""
    import wsis_d2  # noqa: F401
    from wsis_d2.engine import default_argument_parser, run

    args = default_argument_parser().parse_args(["--config-file", config_file] + opts)
    run(args)
    queue.put({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})


def _read_metrics(metrics_file: Path):
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


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def config_fingerprint(config: dict) -> str:
    """A short hash of the settings of a run's resolved config (the ``config.yaml`` it wrote, as a dict)
    that differ from wsis-d2's defaults, without OUTPUT_DIR and SEED: repeats of one setting share it,
    and a key added to the defaults later does not change it. The defaults are today's: should a default
    value change, runs on either side of the change that kept their own default look alike."""
    import hashlib

    from detectron2.config import get_cfg

    from wsis_d2.config import add_wsis_config

    defaults = _flatten(yaml.safe_load(add_wsis_config(get_cfg()).dump()))
    missing = object()
    changed = {k: v for k, v in _flatten(config).items()
               if k not in ("OUTPUT_DIR", "SEED") and defaults.get(k, missing) != v}
    return hashlib.sha1(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:10]


def segm_ap_breakdown(evaluation: dict) -> dict:
    """The final evaluation's segm AP50 / AP75 and AP per class ({name: AP}), rounded (JSON rows only)."""
    prefix = "segm/AP-"
    return {"segm_AP50": round(evaluation.get("segm/AP50", float("nan")), 2),
            "segm_AP75": round(evaluation.get("segm/AP75", float("nan")), 2),
            "segm_AP_per_class": {k[len(prefix):]: round(v, 2) for k, v in sorted(evaluation.items())
                                  if k.startswith(prefix)}}


def mask_holes(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool: the pixels enclosed by the mask's outer contours but not in it (a ring's hole)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = cv2.drawContours(np.zeros(mask.shape, np.uint8), contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool) & ~mask.astype(bool)


def gt_mask_scores(results_json: Path, gt_json: str, score_thresh: float = 0.3) -> tuple:
    """Over GT objects, with each one's best-IoU prediction among the image's predictions scored
    >= ``score_thresh``: (mean best mask IoU, 0 when nothing is predicted; mean share of the hole
    pixels predicted as object, over the objects whose masks have holes, None when none has)."""
    import pycocotools.mask as mask_util

    from wsis_d2.data.rle import to_rle

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


def _run_pointwssis(semi_json: str, image_root: str, config_file: str, out_dir: str, opts: list, queue) -> None:
    """Runs in a fresh spawned process: the four PointWSSIS steps, then report peak memory."""
    import wsis_d2  # noqa: F401
    from wsis_d2.modeling.pointwssis.pipeline import run_pipeline

    run_pipeline(semi_json, image_root, config_file, out_dir, opts)
    queue.put({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})


def _spawn(target, args: tuple, what: str, log_dir: Path) -> dict:
    """Run ``target(*args, queue)`` in a spawned process; its report (peak memory)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=args + (queue,))
    proc.start()
    report = None
    while report is None and (proc.is_alive() or not queue.empty()):
        try:
            report = queue.get(timeout=5)
        except queue_module.Empty:
            pass
    proc.join()
    if proc.exitcode != 0 or report is None:
        raise RuntimeError(f"{what} failed (exit code {proc.exitcode}); see {log_dir}/log.txt")
    return report


def _row(method: str, config: str, cfg, train_set: str, out_dir: Path, preset: str, report: dict, minutes: float,
         commit: str) -> dict:
    """One results row from a finished training's output folder."""
    from detectron2.data import MetadataCatalog

    s_per_iter, evaluation, curve = _read_metrics(out_dir / "metrics.json")
    eval_set = cfg.DATASETS.TEST[0]
    results_json = out_dir / "inference" / eval_set / "coco_instances_results.json"
    mask_iou, hole_fill = gt_mask_scores(results_json, MetadataCatalog.get(eval_set).json_file)
    return {
        "method": method, "config": config, "train_set": train_set,
        "eval_set": eval_set, "preset": preset, "iters": cfg.SOLVER.MAX_ITER, "device": _device_name(preset),
        "segm_AP": round(evaluation.get("segm/AP", float("nan")), 2),
        "bbox_AP": round(evaluation.get("bbox/AP", float("nan")), 2),
        **segm_ap_breakdown(evaluation),
        "ratio_to_full": None,
        "gt_mask_iou": round(mask_iou, 3), "gt_hole_fill": None if hole_fill is None else round(hole_fill, 3),
        "pseudo_mask_miou": curve[-1][1] if curve else None, "pseudo_mask_curve": curve or None,
        "s_per_iter": round(s_per_iter, 3),
        "peak_rss_mb": round(report["peak_rss_mb"], 1), "train_eval_minutes": round(minutes, 2),
        # from the config.yaml the run wrote: setup may change the cfg built here (e.g. MODEL.DEVICE)
        "commit": commit, "config_fingerprint": config_fingerprint(yaml.safe_load((out_dir / "config.yaml").read_text())),
    }


def _fresh(out_dir: Path) -> None:
    if out_dir.exists():
        # detectron2 appends to metrics.json: a rerun must not mix with the last one
        shutil.rmtree(out_dir)


def pseudo_label_miou(pseudo_json: Path, full_json: str, semi_json: str) -> float:
    """Mean IoU of the pseudo masks of the point-labelled objects (the semi view's annotations without
    masks) against their hidden GT masks (same annotation ids in the full view)."""
    import pycocotools.mask as mask_util

    from wsis_d2.data.rle import to_rle

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


def run_pointwssis(method: str, preset: str, out_root: Path, extra_opts: list, seed: int = None) -> list:
    """The PointWSSIS pipeline on shapes_semi_<p>: rows of its teacher (the p % alone) and its student."""
    from wsis_d2 import model_zoo
    from wsis_d2.data.register import shapes_root
    from wsis_d2.data.shapes import ensure_shapes

    spec = METHODS[method]
    percent = spec["percent"]
    config = "CondInst/R18_shapes.yaml"
    out_dir = out_root / _run_name(method, seed)
    _fresh(out_dir)
    root = shapes_root()
    semi_json = ensure_shapes(root)[f"semi_{percent}"]
    opts = PRESETS[preset] + _seed_opts(seed) + extra_opts
    cfg = model_zoo.get_config(config)
    for key, value in zip(opts[::2], opts[1::2]):
        cfg.merge_from_list([key, value])
    commit = _commit()
    start = time.time()
    report = _spawn(_run_pointwssis, (semi_json, root, model_zoo.get_config_file(config), str(out_dir), opts),
                    method, out_dir / "<step>")
    minutes = (time.time() - start) / 60.0
    teacher_minutes = (os.path.getmtime(out_dir / "teacher" / "DONE.json") - start) / 60.0
    command = f"wsis-d2 pointwssis --percent {percent} (configs/{config})"
    teacher = _row(f"pointwssis_teacher_p{percent}", command + ", step 1", cfg, f"shapes_semi_{percent}_masks_only",
                   out_dir / "teacher", preset, report, teacher_minutes, commit)
    teacher["peak_rss_mb"] = None  # measured for the whole pipeline only
    student = _row(method, command + " + pseudo labels", cfg, f"shapes_semi_{percent}", out_dir / "student", preset,
                   report, minutes, commit)
    files = ensure_shapes(root)
    student["pseudo_mask_miou"] = round(pseudo_label_miou(out_dir / "pseudo" / "pseudo_labels.json", files["full"],
                                                          semi_json), 3)
    return [dict(teacher, seed=seed), dict(student, seed=seed)]


def _run_name(method: str, seed: int = None) -> str:
    return method if seed is None else f"{method}_seed{seed}"


def _seed_opts(seed: int = None) -> list:
    return [] if seed is None else ["SEED", str(seed)]


def run_method(method: str, preset: str, out_root: Path, extra_opts: list, seed: int = None) -> list:
    """Train + evaluate one method (with detectron2's ``SEED`` = ``seed`` when given); its rows
    (pipelines give more than one)."""
    from wsis_d2 import model_zoo

    spec = METHODS[method]
    if spec.get("pipeline") == "pointwssis":
        return run_pointwssis(method, preset, out_root, extra_opts, seed)
    cfg = model_zoo.get_config(spec["config"])
    out_dir = out_root / _run_name(method, seed)
    _fresh(out_dir)
    opts = (PRESETS[preset] + spec.get("opts", []) + ["OUTPUT_DIR", str(out_dir)] + _seed_opts(seed)
            + extra_opts)
    for key, value in zip(opts[::2], opts[1::2]):
        cfg.merge_from_list([key, value])

    commit = _commit()  # the code this run starts with (the tree may move on while it trains)
    start = time.time()
    report = _spawn(_train_and_eval, (model_zoo.get_config_file(spec["config"]), opts), method, out_dir)
    minutes = (time.time() - start) / 60.0
    config = " ".join([f"configs/{spec['config']}"] + spec.get("opts", []))
    return [dict(_row(method, config, cfg, cfg.DATASETS.TRAIN[0], out_dir, preset, report, minutes, commit),
                 seed=seed)]


def fill_ratios(rows: list, date: str) -> None:
    """ratio_to_full = segm AP / segm AP of the method's full twin in the same preset: the twin's
    row of the same results file, else of the newest earlier file that has one."""
    earlier = sorted((p for p in RESULTS_DIR.glob("????-??-??.json") if p.stem < date), reverse=True)
    sources = [(date, rows)] + [(p.stem, json.loads(p.read_text())) for p in earlier]
    for r in rows:
        twin_method = METHODS.get(r["method"], {}).get("full_twin")
        for source_date, source_rows in sources:
            twin = next((t for t in source_rows if (t["method"], t["preset"]) == (twin_method, r["preset"])), None)
            if twin and twin["segm_AP"] and twin["segm_AP"] > 0:
                r["ratio_to_full"] = round(r["segm_AP"] / twin["segm_AP"], 3)
                r["twin_date"] = source_date
                break


def _row_key(row: dict) -> tuple:
    return row["method"], row["preset"], row.get("seed")


def seed_summary(rows: list) -> list:
    """Per (method, preset, resolved config: ``config_fingerprint``) with two or more seeded rows,
    whatever commits ran them (a commit that changes the code but not the config is pooled: compare
    ``commits`` with ``git log``): the number of seeds, mean and sample standard deviation of segm /
    bbox AP, and the lowest and highest segm AP."""
    groups = {}
    for r in rows:
        if r.get("seed") is not None:
            # rows from before config fingerprints are pooled by commit: the shipped file may have changed
            setting = r.get("config_fingerprint") or f"commit {r['commit']}"
            groups.setdefault((r["method"], r["preset"], setting), []).append(r)
    summary = []
    for (method, preset, _), group in groups.items():
        if len(group) < 2:
            continue
        segm = [r["segm_AP"] for r in group]
        bbox = [r["bbox_AP"] for r in group]
        summary.append({"method": method, "preset": preset, "commits": ", ".join(sorted({r["commit"] for r in group})),
                        "seeds": sorted(r["seed"] for r in group),
                        "segm_AP_mean": round(statistics.mean(segm), 2),
                        "segm_AP_std": round(statistics.stdev(segm), 2),
                        "segm_AP_min": min(segm), "segm_AP_max": max(segm),
                        "bbox_AP_mean": round(statistics.mean(bbox), 2), "bbox_AP_std": round(statistics.stdev(bbox), 2)})
    return summary


def write_results(rows: list, date: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / f"{date}.json"
    old = json.loads(json_path.read_text()) if json_path.exists() else []
    latest = {_row_key(r): r for r in rows}  # a (method, preset, seed) twice in one batch: the last counts
    merged = [r for r in old if _row_key(r) not in latest] + list(latest.values())
    fill_ratios(merged, date)
    json_path.write_text(json.dumps(merged, indent=1) + "\n")
    lines = [f"# wsis-d2 benchmark, {date}", "",
             "| " + " | ".join(ROW_KEYS) + " |", "|" + "---|" * len(ROW_KEYS)]
    lines += ["| " + " | ".join(str(r.get(k)) for k in ROW_KEYS) + " |" for r in merged]
    summary = seed_summary(merged)
    if summary:
        keys = list(summary[0])
        lines += ["", "## Repeats with different seeds (mean, sample std, range)", "",
                  "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(s[k]) for k in keys) + " |" for s in summary]
    (RESULTS_DIR / f"{date}.md").write_text("\n".join(lines) + "\n")
    return json_path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from {list(METHODS)}")
    parser.add_argument("--gpu", action="store_true", help="use the GPU preset (the same as --preset gpu)")
    parser.add_argument("--preset", choices=list(PRESETS), default="cpu", help="schedule and device overrides")
    parser.add_argument("--seeds", default="",
                        help="comma-separated SEED values: one run per method and seed (default: one unseeded run)")
    parser.add_argument("--output", default=str(ROOT / "output" / "benchmarks"), help="training output root")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="extra config overrides KEY VALUE ...")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {list(METHODS)}")
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()] or [None]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    if args.gpu and args.preset not in ("cpu", "gpu"):
        parser.error(f"--gpu is --preset gpu; it cannot be combined with --preset {args.preset}")
    preset = "gpu" if args.gpu else args.preset
    date = datetime.date.today().isoformat()
    out_root = Path(args.output) / f"{date}-{preset}"
    # rows made by another method's run (PointWSSIS's teacher) come from running that method
    methods = list(dict.fromkeys(METHODS[m].get("made_by", m) for m in methods))
    # seed-major: an interrupted series still holds every method at the seeds it finished
    for seed in seeds:
        for method in methods:
            print(f"[benchmark] {_run_name(method, seed)} ({preset} preset) ...", flush=True)
            rows = run_method(method, preset, out_root, args.opts, seed)
            path = write_results(rows, date)
            for row in rows:
                print(f"[benchmark] {_run_name(row['method'], seed)}: segm AP {row['segm_AP']}, "
                      f"bbox AP {row['bbox_AP']}, {row['s_per_iter']} s/iter, {row['train_eval_minutes']} min "
                      f"-> {path}", flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

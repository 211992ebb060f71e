"""COCO evaluation through detectron2's ``COCOEvaluator``."""
import contextlib
import io
import logging

from detectron2.evaluation import COCOEvaluator

from ..data.config_checks import has_masks_to_evaluate

logger = logging.getLogger(__name__)


def has_compiled_ops() -> bool:
    """True when ``detectron2._C`` is a real compiled extension (not wsis-d2's fallback)."""
    try:
        from detectron2 import _C
    except ImportError:
        return False
    return not getattr(_C, "IS_WSIS_FALLBACK", False)


def _is_scorable_id(value) -> bool:
    # pycocotools keeps the matched ground truth's id in a float array where 0 means "unmatched"
    return isinstance(value, int) and not isinstance(value, bool) and value != 0


def renumber_unscorable_annotation_ids(coco_api, dataset_name: str) -> bool:
    """Renumber the ground-truth annotations of ``coco_api`` (a pycocotools ``COCO``) 1..N in memory when
    one id is 0 or not an integer; returns whether it did.

    pycocotools' COCOeval records each match by the ground truth's id, with 0 meaning "unmatched": a
    perfect prediction of the object with id 0 counts as a false positive (and a string id raises).
    Predictions are matched by image and category, never by annotation id, so renumbering changes
    nothing else; the file itself is left as it is.
    """
    annotations = coco_api.dataset.get("annotations", [])
    if all(_is_scorable_id(ann.get("id")) for ann in annotations):
        return False
    bad = next(ann.get("id") for ann in annotations if not _is_scorable_id(ann.get("id")))
    logger.warning(f"{dataset_name}: annotation id {bad!r} cannot be scored by pycocotools (it counts id 0 as "
                   "unmatched and needs integers); evaluating with the annotations renumbered 1..N "
                   "(the file is unchanged)")
    for k, ann in enumerate(annotations, 1):
        ann["id"] = k
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints "creating index..."
        coco_api.createIndex()
    return True


def build_coco_evaluator(cfg, dataset_name: str, output_dir: str) -> COCOEvaluator:
    """Box + mask COCO AP; the fast C++ COCOeval when compiled, pycocotools otherwise.

    AP counts as many detections per image as the model may output (``TEST.DETECTIONS_PER_IMAGE``
    for R-CNNs, ``MODEL.FCOS.POST_NMS_TOPK`` for FCOS-based models; COCO's 100 by default), so
    raising them for dense scenes is not silently undone by COCO's cap of 100. A dataset without
    masks (boxes only) gets box AP alone; one with masks on only some annotations is refused.
    Annotation ids pycocotools cannot score (0, strings) are renumbered in memory
    (:func:`renumber_unscorable_annotation_ids`).
    """
    tasks = ("bbox", "segm") if cfg.MODEL.MASK_ON else ("bbox",)
    if cfg.MODEL.MASK_ON and not has_masks_to_evaluate(dataset_name):
        logger.warning(f"{dataset_name} has no masks: evaluating box AP only")
        tasks = ("bbox",)
    max_dets = max(cfg.TEST.DETECTIONS_PER_IMAGE, cfg.MODEL.FCOS.POST_NMS_TOPK)
    evaluator = COCOEvaluator(dataset_name, tasks=tasks, distributed=True, output_dir=output_dir,
                              use_fast_impl=has_compiled_ops(), max_dets_per_image=max_dets)
    renumber_unscorable_annotation_ids(evaluator._coco_api, dataset_name)
    return evaluator

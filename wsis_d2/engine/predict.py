"""Run a trained model on images or a video: pictures drawn by detectron2's Visualizer and COCO results.

The pieces of ``wsis-d2 predict`` (:mod:`wsis_d2.engine.predict_cli`): the model loaded the way training
loads it (:class:`Predictor`), the class names and COCO category ids of its training set
(:func:`training_metadata`), the inputs a command line names (:func:`collect_images`) and one image's
predictions as COCO results (:func:`coco_results`).
"""
import glob
import logging
import os
from typing import Dict, List, Optional, Tuple

import numpy as np
import pycocotools.mask as mask_util
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T
from detectron2.data.catalog import Metadata
from detectron2.engine import DefaultPredictor
from detectron2.modeling import build_model
from detectron2.structures import Instances

from ..config import ConfigError
from ..data.rle import encode_mask
from ..modeling.checkpoint import WSISCheckpointer, unloaded_weights_error, weights_file_problem

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


class Predictor(DefaultPredictor):
    """detectron2's ``DefaultPredictor`` (resize to ``INPUT.MIN_SIZE_TEST``, BGR in, ``{"instances"}`` out)
    with the model loaded by :class:`~wsis_d2.modeling.checkpoint.WSISCheckpointer`, as training loads it:
    a teacher-student checkpoint fills both models, a student-only one (a BoxInst checkpoint for
    BoxTeacher) fills the student and the teacher copies it, and a checkpoint that leaves any of the
    model's weights unloaded (another model's) is refused.

    Raises:
        ConfigError: ``weights`` is missing, unreadable, or a checkpoint of another model.
    """

    def __init__(self, cfg, weights: str, config_file: str = "the config"):
        if "://" not in weights and not os.path.isfile(weights):
            raise ConfigError(f"--weights {weights}: no such file")
        problem = weights_file_problem(weights)
        if problem is not None:
            raise ConfigError(f"--weights {problem}")
        self.cfg = cfg.clone()
        self.model = build_model(self.cfg)
        self.model.eval()
        checkpointer = WSISCheckpointer(self.model)
        checkpointer.load(weights, checkpointables=[])
        if checkpointer.unloaded_weights:
            raise unloaded_weights_error(weights, checkpointer.unloaded_weights, self.model, config_file)
        self.aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
        self.input_format = cfg.INPUT.FORMAT
        if self.input_format not in ("RGB", "BGR"):
            raise ConfigError(f"{config_file}: INPUT.FORMAT {self.input_format!r}; predict reads RGB or BGR models")

    def __call__(self, image_bgr: np.ndarray) -> Instances:
        """(H, W, 3) uint8 BGR -> the image's predictions on the CPU, in its pixels."""
        with torch.no_grad():
            return super().__call__(image_bgr)["instances"].to("cpu")


def model_num_classes(cfg) -> int:
    """Classes the config's model predicts (FCOS-based models: ``MODEL.FCOS``; R-CNNs: ``ROI_HEADS``)."""
    return cfg.MODEL.ROI_HEADS.NUM_CLASSES if "RCNN" in cfg.MODEL.META_ARCHITECTURE else cfg.MODEL.FCOS.NUM_CLASSES


def generic_metadata(num_classes: int) -> Metadata:
    return Metadata(name="wsis_d2_predict_generic", thing_classes=[f"class {i}" for i in range(num_classes)])


def training_metadata(cfg) -> Tuple[Metadata, Dict[int, int]]:
    """The metadata of ``cfg.DATASETS.TRAIN[0]`` (class names for the pictures) and the map of a
    contiguous class index to the dataset's COCO category id.

    The class names come from the dataset's registration; the category ids from its JSON, read when
    the metadata lacks them and the file exists (a dataset that would be generated or downloaded
    first is not read). A dataset that is not registered, whose JSON cannot be read, or whose class
    count is not the model's falls back to generic names ``class <i>`` (and ids = indices) with a warning.
    """
    num_classes = model_num_classes(cfg)
    names = list(cfg.DATASETS.TRAIN)
    name = names[0] if names else None
    identity = {i: i for i in range(num_classes)}
    if name is None or name not in DatasetCatalog.list():
        logger.warning(f"The training set {name!r} of the config is not registered here: the pictures name the "
                       f"classes 'class 0'..'class {num_classes - 1}' and category_id is the class index")
        return generic_metadata(num_classes), identity
    metadata = MetadataCatalog.get(name)
    json_file = metadata.get("json_file")
    if not metadata.get("thing_dataset_id_to_contiguous_id") and json_file and os.path.isfile(json_file):
        try:
            DatasetCatalog.get(name)  # detectron2's load_coco_json sets thing_classes and the id map
        except Exception as e:  # a broken annotation file must not stop predictions: names are a convenience
            logger.warning(f"Cannot read the training set {name} ({json_file}) for its class names: {e}")
    classes = metadata.get("thing_classes")
    if not classes or len(classes) != num_classes:
        logger.warning(f"The training set {name} names {len(classes or [])} classes, the model predicts "
                       f"{num_classes}: the pictures name them 'class <i>' and category_id is the class index")
        return generic_metadata(num_classes), identity
    to_contiguous = metadata.get("thing_dataset_id_to_contiguous_id")
    if not to_contiguous:
        logger.warning(f"The training set {name} has no COCO category ids here (its JSON is not on disk): "
                       "category_id in the results is the class index")
        return metadata, identity
    return metadata, {contiguous: dataset_id for dataset_id, contiguous in to_contiguous.items()}


def coco_results(instances: Instances, image_id: int, file_name: str, category_ids: Dict[int, int]) -> List[dict]:
    """One image's predictions as COCO results: ``image_id``, ``file_name``, ``category_id``, ``bbox``
    (x, y, w, h), ``score`` and, for a model with masks, ``segmentation`` (compressed RLE, ``counts`` a str)."""
    boxes = instances.pred_boxes.tensor.numpy() if len(instances) else np.zeros((0, 4), np.float32)
    boxes = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    masks = instances.pred_masks.numpy() if instances.has("pred_masks") else None
    results = []
    for k in range(len(instances)):
        result = {"image_id": image_id, "file_name": file_name,
                  "category_id": category_ids[int(instances.pred_classes[k])],
                  "bbox": [round(float(v), 2) for v in boxes[k]], "score": round(float(instances.scores[k]), 5)}
        if masks is not None:
            result["segmentation"] = encode_mask(masks[k])
        results.append(result)
    return results


def _images_in(folder: str) -> List[str]:
    return sorted(entry.path for entry in os.scandir(folder)
                  if entry.is_file() and entry.name.lower().endswith(IMAGE_EXTENSIONS))


def collect_images(inputs: List[str]) -> List[str]:
    """The image files ``--input`` names: a file (any extension; it is read to know), a folder (its
    files with an image extension, not recursive) or a glob pattern (quoted so the shell leaves it);
    in the given order, each folder's and pattern's sorted, without duplicates.

    Raises:
        ConfigError: an input that is neither a file, a folder, nor a pattern matching files; or no image at all.
    """
    found = []
    for item in inputs:
        if os.path.isdir(item):
            found += _images_in(item)
        elif os.path.isfile(item):
            found.append(item)
        else:
            matched = sorted(p for p in glob.glob(item, recursive=True) if os.path.isfile(p))
            if not matched:
                raise ConfigError(f"--input {item}: no such file or folder, and no file matches it as a pattern")
            found += matched
    found = list(dict.fromkeys(os.path.normpath(p) for p in found))
    if not found:
        raise ConfigError(f"--input {' '.join(inputs)}: no image (files ending in {', '.join(IMAGE_EXTENSIONS)})")
    return found


def is_video(inputs: List[str]) -> bool:
    """True when ``--input`` is one video file (by its extension)."""
    return len(inputs) == 1 and os.path.isfile(inputs[0]) and inputs[0].lower().endswith(VIDEO_EXTENSIONS)


def output_names(images: List[str]) -> List[str]:
    """Each image's path relative to the deepest folder holding them all: its name, or, for images
    of several folders (a recursive pattern), the sub-path that keeps two ``img.jpg`` apart."""
    folders = [os.path.dirname(os.path.abspath(p)) for p in images]
    common = os.path.commonpath(folders) if folders else ""
    return [os.path.relpath(os.path.abspath(p), common) for p in images]


def keep_confident(instances: Instances, confidence: float) -> Instances:
    return instances[instances.scores >= confidence]


def lower_score_thresholds(cfg, confidence: float) -> None:
    """Let the model keep its detections down to ``confidence`` (FCOS's ``INFERENCE_TH``, the R-CNN's
    ``SCORE_THRESH_TEST``; a threshold already below it stays), so that :func:`keep_confident` decides."""
    cfg.MODEL.FCOS.INFERENCE_TH = min(cfg.MODEL.FCOS.INFERENCE_TH, confidence)
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = min(cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST, confidence)


"""Pictures of predictions next to the ground truth, drawn with detectron2's Visualizer."""
import os
from typing import List

import cv2
import numpy as np
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import detection_utils as utils
from detectron2.utils.visualizer import Visualizer

from ..data.mapper import WSISDatasetMapper


def save_prediction_pictures(cfg, model, dataset_name: str, out_dir: str) -> List[str]:
    """Draw GT | prediction for the first ``cfg.WSIS.VIS_NUM_IMAGES`` images of a dataset.

    Returns the written PNG paths (``<out_dir>/<dataset>_<image id>.png``).
    """
    dicts = DatasetCatalog.get(dataset_name)[: cfg.WSIS.VIS_NUM_IMAGES]
    metadata = MetadataCatalog.get(dataset_name)
    mapper = WSISDatasetMapper(cfg, is_train=False)
    os.makedirs(out_dir, exist_ok=True)
    was_training = model.training
    model.eval()
    paths = []
    try:
        for d in dicts:
            image = utils.read_image(d["file_name"], format="RGB")
            with torch.no_grad():
                instances = model([mapper(dict(d))])[0]["instances"].to("cpu")
            instances = instances[instances.scores >= cfg.WSIS.VIS_SCORE_THRESH]
            scale = max(1.0, 384 / max(image.shape[:2]))
            gt = Visualizer(image, metadata, scale=scale).draw_dataset_dict(d).get_image()
            pred = Visualizer(image, metadata, scale=scale).draw_instance_predictions(instances).get_image()
            picture = np.concatenate([gt, np.full((gt.shape[0], 4, 3), 255, np.uint8), pred], axis=1)
            path = os.path.join(out_dir, f"{dataset_name}_{d['image_id']}.png")
            cv2.imwrite(path, picture[:, :, ::-1])
            paths.append(path)
    finally:
        model.train(was_training)
    return paths

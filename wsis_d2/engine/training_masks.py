"""Pictures of the masks a model trains on, in TensorBoard: image | box | predicted mask per instance.

Box- and point-supervised masks go wrong in ways a loss curve hides (a mask that fills its box, one
that collapses to nothing, the pairwise term bleeding into the background): every ``WSIS.VIS_PERIOD``
iterations :class:`TrainingMaskPictureHook` asks the model to keep a few instances of that step's batch
(:func:`~wsis_d2.modeling.condinst.snapshot.training_mask_snapshot`) and puts their picture into the
event storage as ``training_masks``, which detectron2's TensorBoard writer saves.
"""
from typing import Dict

import cv2
import numpy as np
import torch
from detectron2.engine import HookBase

PANEL = 96  # pixels of each panel's side
GAP = 2


def _rgb(image: torch.Tensor, input_format: str) -> np.ndarray:
    """(3, h, w) uint8 in ``input_format`` -> (h, w, 3) uint8 RGB."""
    array = image.permute(1, 2, 0).numpy()
    return np.ascontiguousarray(array[:, :, ::-1] if input_format == "BGR" else array)


def _crop(box: np.ndarray, height: int, width: int, margin: float = 0.25):
    """Pixel ranges (y0, y1, x0, x1) of the box plus ``margin`` of its size (at least 4 px) each side."""
    x0, y0, x1, y1 = box
    mx, my = max(margin * (x1 - x0), 4.0), max(margin * (y1 - y0), 4.0)
    cx0, cy0 = int(max(np.floor(x0 - mx), 0)), int(max(np.floor(y0 - my), 0))
    cx1, cy1 = int(min(np.ceil(x1 + mx), width)), int(min(np.ceil(y1 + my), height))
    return cy0, max(cy1, cy0 + 1), cx0, max(cx1, cx0 + 1)


def draw_training_masks(snapshot: Dict) -> np.ndarray:
    """(H, W, 3) uint8 RGB: one row per instance of ``snapshot``, three ``PANEL``-px panels each: the
    image around the box with the box drawn, the box as a mask (white inside), and the predicted mask
    probability (black 0 .. white 1), all cropped alike. No instance: one black row."""
    rows = []
    for k in range(len(snapshot["image_index"])):
        image = _rgb(snapshot["images"][int(snapshot["image_index"][k])], snapshot["format"])
        h, w = image.shape[:2]
        box = snapshot["boxes"][k].numpy()
        stride = snapshot["stride"]
        probs = snapshot["mask_probs"][k].numpy()
        # cell j of the stride-s logits covers pixels [s*j, s*(j+1)): repeat, then cut the padding
        probs = np.repeat(np.repeat(probs, stride, axis=0), stride, axis=1)[:h, :w]
        y0, y1, x0, x1 = _crop(box, h, w)
        with_box = image.copy()
        cv2.rectangle(with_box, (int(round(box[0])), int(round(box[1]))),
                      (int(round(box[2])) - 1, int(round(box[3])) - 1), (0, 255, 0), 1)
        box_mask = np.zeros((h, w), np.uint8)
        box_mask[int(round(box[1])):int(round(box[3])), int(round(box[0])):int(round(box[2]))] = 255
        mask = (np.clip(probs, 0, 1) * 255).round().astype(np.uint8)
        panels = [with_box[y0:y1, x0:x1], np.repeat(box_mask[y0:y1, x0:x1, None], 3, 2),
                  np.repeat(mask[y0:y1, x0:x1, None], 3, 2)]
        panels = [cv2.resize(p, (PANEL, PANEL), interpolation=cv2.INTER_NEAREST) for p in panels]
        gap = np.full((PANEL, GAP, 3), 255, np.uint8)
        rows.append(np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1))
    width = 3 * PANEL + 2 * GAP
    if not rows:
        return np.zeros((PANEL, width, 3), np.uint8)
    separated = []
    for row in rows:
        separated += [row, np.full((GAP, width, 3), 255, np.uint8)]
    return np.concatenate(separated[:-1], axis=0)


def recorders(model) -> list:
    """The modules of ``model`` (unwrapped from DDP) that can keep their training masks."""
    model = getattr(model, "module", model)
    return [m for m in model.modules() if hasattr(m, "record_training_masks")]


class TrainingMaskPictureHook(HookBase):
    """Every ``period`` iterations (from iteration 0), put ``training_masks`` (:func:`draw_training_masks`)
    into the event storage; a teacher-student model's student records (its teacher predicts in eval mode)."""

    def __init__(self, period: int):
        self.period = period

    def _due(self) -> bool:
        return self.trainer.iter % self.period == 0

    def before_step(self):
        due = self._due()
        for module in recorders(self.trainer.model):
            module.record_training_masks = due

    def after_step(self):
        if not self._due():
            return
        for module in recorders(self.trainer.model):
            snapshot, module.training_masks = module.training_masks, None
            module.record_training_masks = False
            if snapshot is not None:
                picture = draw_training_masks(snapshot)
                self.trainer.storage.put_image("training_masks",
                                               torch.from_numpy(picture).permute(2, 0, 1).float() / 255.0)

"""Run a model exported by ``wsis-d2 export``: the image's resize before the graph and the small step after it.

``wsis-d2 export`` copies this file beside the exported model (``model.pt`` or ``model.onnx``) and its
``export.json``; it needs NumPy, Pillow, and torch (TorchScript) or onnxruntime (ONNX), nothing of
wsis-d2 or detectron2::

    from postprocess import ExportedModel
    model = ExportedModel("export_dir")              # reads export.json, loads the model file
    result = model(image)                           # (H, W, 3) uint8 in export.json's "input_format"
    result["boxes"], result["scores"], result["classes"], result["masks"]   # in the image's frame

The graph itself takes one (3, h, w) float32 image, already resized (:func:`resize_shortest_edge`) and
in the model's channel order, any h and w, and returns four arrays for its D detections, in the frame
of that resized image: ``boxes`` (D, 4) XYXY, ``scores`` (D,) decreasing, ``classes`` (D,) int64 and
``mask_probs`` (D, h, w) float in [0, 1] (NMS and the mask paste are inside it).
:func:`postprocess` scales them to the original image and thresholds the masks.
"""
import json
import os

import numpy as np


def test_size(height: int, width: int, min_size: int, max_size: int):
    """detectron2's ``ResizeShortestEdge`` test size: the short side to ``min_size``, the long side at
    most ``max_size``; returns (new_height, new_width)."""
    scale = min_size / min(height, width)
    new_h, new_w = (min_size, scale * width) if height < width else (scale * height, min_size)
    if max(new_h, new_w) > max_size:
        scale = max_size / max(new_h, new_w)
        new_h, new_w = new_h * scale, new_w * scale
    return int(new_h + 0.5), int(new_w + 0.5)


def resize_shortest_edge(image: np.ndarray, min_size: int, max_size: int) -> np.ndarray:
    """(H, W, 3) uint8 -> the model's (3, h, w) float32 input, resized as detectron2's predictor does
    (Pillow, bilinear)."""
    from PIL import Image

    h, w = test_size(image.shape[0], image.shape[1], min_size, max_size)
    if (h, w) != image.shape[:2]:
        image = np.asarray(Image.fromarray(image).resize((w, h), Image.BILINEAR))
    return np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32)


def resize_bilinear(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """(D, h, w) -> (D, height, width) float32, bilinear with half-pixel centres (as torch's
    ``F.interpolate(..., mode="bilinear", align_corners=False)``, no antialiasing)."""
    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(np.float32)

    if maps.shape[1:] == (height, width):
        return maps.astype(np.float32)
    y0, y1, fy = axis(maps.shape[1], height)
    x0, x1, fx = axis(maps.shape[2], width)
    rows = maps[:, y0] * (1 - fy)[None, :, None] + maps[:, y1] * fy[None, :, None]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


def postprocess(boxes, scores, classes, mask_probs, output_height: int, output_width: int,
                mask_threshold: float = 0.5) -> dict:
    """The graph's outputs (in the frame of its (h, w) input) in the frame of the original image.

    Boxes are scaled by (output / input) and clipped; mask probabilities are resized bilinearly and
    thresholded (``> mask_threshold``), as CondInst's ``postprocess`` does. Returns a dict of NumPy
    arrays: ``boxes`` (D, 4) float32, ``scores`` (D,), ``classes`` (D,) int64, ``masks`` (D, H, W) bool.
    """
    boxes, mask_probs = np.asarray(boxes, np.float32), np.asarray(mask_probs, np.float32)
    in_h, in_w = mask_probs.shape[1:]
    scale = np.array([output_width / in_w, output_height / in_h] * 2, np.float32)
    boxes = np.minimum(np.maximum(boxes * scale, 0), [output_width, output_height] * 2).astype(np.float32)
    probs = resize_bilinear(mask_probs, output_height, output_width)
    return {"boxes": boxes, "scores": np.asarray(scores), "classes": np.asarray(classes, np.int64),
            "masks": probs > mask_threshold}


class ExportedModel:
    """The model file of an export folder with its resize and :func:`postprocess` around it."""

    def __init__(self, folder: str):
        with open(os.path.join(folder, "export.json"), encoding="utf-8") as f:
            self.meta = json.load(f)
        path = os.path.join(folder, self.meta["file"])
        if self.meta["format"] == "onnx":
            import onnxruntime

            session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            self.graph = lambda x: session.run(None, {"image": x})
        else:
            import torch

            module = torch.jit.load(path, map_location="cpu").eval()

            def graph(x):
                with torch.no_grad():  # the traced weights require grad; inference needs none
                    return [t.numpy() for t in module(torch.from_numpy(x))]

            self.graph = graph

    def __call__(self, image: np.ndarray) -> dict:
        """image: (H, W, 3) uint8 in ``meta["input_format"]`` (BGR: as OpenCV reads it)."""
        m = self.meta
        x = resize_shortest_edge(image, m["min_size_test"], m["max_size_test"])
        result = postprocess(*self.graph(x), image.shape[0], image.shape[1], m["mask_threshold"])
        result["class_names"] = [m["class_names"][c] if c < len(m["class_names"]) else str(c)
                                 for c in result["classes"]]
        return result

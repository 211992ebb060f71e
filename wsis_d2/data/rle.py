"""COCO run-length encoding helpers (pycocotools underneath)."""
import numpy as np
import pycocotools.mask as mask_util


def encode_mask(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a bool (H, W) mask, JSON-serialisable."""
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def to_rle(segmentation, height: int, width: int) -> dict:
    """Any COCO segmentation (polygons, uncompressed or compressed RLE) as compressed RLE."""
    if isinstance(segmentation, list):
        return mask_util.merge(mask_util.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_util.frPyObjects(segmentation, height, width)
    return segmentation


def decode(segmentation, height: int, width: int) -> np.ndarray:
    """(H, W) bool mask of any COCO segmentation."""
    return mask_util.decode(to_rle(segmentation, height, width)).astype(bool)

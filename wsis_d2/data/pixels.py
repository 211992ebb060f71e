"""Which pixels a box covers: the one rule shared by point sampling and box-filled masks."""
from typing import Tuple

import numpy as np


def pixel_span(start: float, stop: float, size: int) -> Tuple[int, int, bool]:
    """Pixels (along one axis) whose centres lie in [start, stop], clipped to [0, size).

    Pixel k covers [k, k + 1), its centre is k + 0.5. Returns (first, end, thin):
    pixels first..end-1; ``thin`` when the interval holds no pixel centre, and then
    the single pixel under the interval's middle.
    """
    first = max(int(np.ceil(start - 0.5)), 0)
    last = min(int(np.floor(stop - 0.5)), size - 1)
    if last < first:
        middle = min(max(int(np.floor((start + stop) / 2.0)), 0), size - 1)
        return middle, middle + 1, True
    return first, last + 1, False


def box_pixel_ranges(box, height: int, width: int):
    """Rows (r0, r1) and columns (c0, c1) of the XYXY box (:func:`pixel_span`'s rule)."""
    rows, cols = pixel_span(box[1], box[3], height), pixel_span(box[0], box[2], width)
    return rows[:2], cols[:2]

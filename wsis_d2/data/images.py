"""Reading an image the way training does, with a reason instead of a traceback when it cannot be read.

detectron2's ``read_image`` (Pillow, EXIF orientation applied) decodes the whole file, so a truncated
JPEG or PNG fails here; OpenCV's ``imread`` would return its grey-filled remainder with only a
libjpeg warning on stderr.
"""
from typing import Optional, Tuple

import numpy as np
from detectron2.data.detection_utils import read_image


def read_checked_image(path: str, format: str = "BGR") -> Tuple[Optional[np.ndarray], Optional[str]]:
    """``(image, None)`` for a readable image (H, W, C as ``read_image`` gives it), else ``(None, reason)``."""
    try:
        return read_image(path, format=format), None
    except FileNotFoundError:
        return None, f"{path}: no such file"
    except (OSError, ValueError, SyntaxError) as e:  # Pillow: unidentified, truncated or broken files
        return None, f"{path}: cannot be read as an image ({e})"

"""Bring-your-own-data converters to this project's COCO form (``wsis-d2 convert``)."""
from .instance_png import convert_instance_pngs
from .labelme import convert_labelme
from .via import convert_via

__all__ = ["convert_instance_pngs", "convert_labelme", "convert_via"]

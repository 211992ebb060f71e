"""Bring-your-own-data converters to this project's COCO form (``wsis-d2 convert``)."""
from .instance_png import convert_instance_pngs
from .labelme import convert_labelme

__all__ = ["convert_instance_pngs", "convert_labelme"]

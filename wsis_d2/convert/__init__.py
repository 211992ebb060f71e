"""Bring-your-own-data converters to this project's COCO form (``wsis-d2 convert``)."""
from .cvat import convert_cvat_xml, fix_cvat_coco
from .instance_png import convert_instance_pngs
from .labelme import convert_labelme
from .via import convert_via
from .yolo import convert_yolo

__all__ = ["convert_cvat_xml", "convert_instance_pngs", "convert_labelme", "convert_via", "convert_yolo",
           "fix_cvat_coco"]

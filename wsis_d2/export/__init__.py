"""Export for deployment: TorchScript / ONNX graphs of the CondInst family (dynamic mask head included)
and Mask R-CNN, one image in, plain tensors out (``wsis-d2 export``)."""
from .condinst import CondInstExport
from .exporter import (
    EXPORT_ADAPTERS, FORMATS, OnnxMissing, check_export, compare_outputs, export_model, export_module,
    load_exported, load_trained_model, mask_ious,
)
from .mask_rcnn import MaskRCNNExport

__all__ = ["EXPORT_ADAPTERS", "FORMATS", "CondInstExport", "MaskRCNNExport", "OnnxMissing", "check_export",
           "compare_outputs", "export_model", "export_module", "load_exported", "load_trained_model", "mask_ious"]

"""Pure-Python stand-in for detectron2's compiled extension ``detectron2._C``.

wsis-d2's installer puts this file at ``detectron2/_C.py`` only when it has to
build detectron2 v0.6 from the ``pb1-detectron2`` sdist, whose C++ sources are
missing. detectron2 imports ``_C`` at module level in a few places
(rotated boxes, deformable conv, rotated ROIAlign, the fast COCOeval), so a
missing module would make ``import detectron2.layers`` fail although wsis-d2
needs none of those ops. Every op raises a clear error naming itself instead.
"""

IS_WSIS_FALLBACK = True

_OPS = {
    "box_iou_rotated": "rotated-box IoU",
    "nms_rotated": "rotated-box NMS",
    "deform_conv_forward": "deformable convolution",
    "deform_conv_backward_input": "deformable convolution",
    "deform_conv_backward_filter": "deformable convolution",
    "modulated_deform_conv_forward": "modulated deformable convolution",
    "modulated_deform_conv_backward": "modulated deformable convolution",
    "roi_align_rotated_forward": "rotated ROIAlign",
    "roi_align_rotated_backward": "rotated ROIAlign",
    "InstanceAnnotation": "fast C++ COCOeval",
    "COCOevalEvaluateImages": "fast C++ COCOeval",
    "COCOevalAccumulate": "fast C++ COCOeval",
}


def get_compiler_version():
    return "none: detectron2._C is wsis-d2's pure-Python fallback"


def get_cuda_version():
    return "none: detectron2._C is wsis-d2's pure-Python fallback"


def has_cuda():
    return False


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    what = _OPS.get(name, "a compiled op")
    raise NotImplementedError(
        f"detectron2._C.{name} ({what}) is not available: this detectron2 v0.6 was "
        "built by wsis-d2 without its C++ extension. wsis-d2 itself never needs it; "
        "if your code does, install an official detectron2 build "
        "(https://detectron2.readthedocs.io/en/latest/tutorials/install.html) "
        "and re-run scripts/install.sh, which keeps an importable official build."
    )

"""Export a trained instance-segmentation model to TorchScript or ONNX, checked against PyTorch.

An export folder holds the model file (``model.pt``: ``torch.jit.trace``; ``model.onnx``: torch's
TorchScript-based ONNX exporter, ``dynamo=False``, opset :data:`ONNX_OPSET`, dynamic height, width and
detection count), ``export.json`` (what the graph expects and returns, the test sizes, the mask
threshold, class names, the check below), ``config.yaml`` and ``postprocess.py``
(:mod:`wsis_d2.export.postprocess`: the resize before the graph and the scaling and thresholding
after it, NumPy only).

Which module is traced is looked up by the model's class in :data:`EXPORT_ADAPTERS`; each takes one
(3, H, W) image and returns (boxes, scores, classes, mask_probs) (:class:`CondInstExport`,
:class:`MaskRCNNExport`). A teacher-student model exports the network it predicts with.
"""
import json
import os
from importlib.metadata import PackageNotFoundError, version
import shutil
import warnings
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.modeling import GeneralizedRCNN, build_model
from torch import nn

from ..config import ConfigError
from ..modeling.checkpoint import WSISCheckpointer, unloaded_weights_error, weights_file_problem
from ..modeling.condinst import CondInst
from ..modeling.teacher.teacher_student import TeacherStudent
from . import postprocess as postprocess_module
from .condinst import CondInstExport
from .mask_rcnn import MaskRCNNExport

FORMATS = {"torchscript": "model.pt", "onnx": "model.onnx"}
OUTPUT_NAMES = ["boxes", "scores", "classes", "mask_probs"]
ONNX_OPSET = 17
# model class -> (model, sample image (3, H, W)) -> the module to trace; looked up along the class's MRO
EXPORT_ADAPTERS: Dict[type, Callable[[nn.Module, torch.Tensor], nn.Module]] = {
    CondInst: lambda model, sample: CondInstExport(model),
    GeneralizedRCNN: MaskRCNNExport,
}
# a check passes when the exported model gives the same detections as PyTorch: boxes and scores within
# these tolerances and every mask (> threshold) with an IoU of at least MIN_MASK_IOU to PyTorch's
BOX_ATOL, SCORE_ATOL, MIN_MASK_IOU = 1e-3, 1e-4, 0.99
# torch >= 2.10 marks torch.jit.trace / load deprecated (in favour of torch.export); they still work and
# are what a TorchScript file needs, so the notice is not shown to a user who asked for one
_JIT_DEPRECATED = r"`torch\.jit\.\w+` is deprecated"


class OnnxMissing(ImportError):
    """``--format onnx`` without the ``onnx`` / ``onnxruntime`` packages."""


def predicting_model(model: nn.Module) -> nn.Module:
    """The network that makes ``model``'s predictions: a teacher-student model's teacher or student
    (``MODEL.TEACHER.USE_FOR_INFERENCE``), otherwise ``model``."""
    if isinstance(model, TeacherStudent):
        return model.teacher.model if model.use_teacher_inference else model.student
    return model


def export_module(model: nn.Module, sample: torch.Tensor) -> nn.Module:
    """The traceable module (image -> (boxes, scores, classes, mask_probs)) of ``model`` in eval mode.

    Raises:
        ValueError: no adapter for the model's class.
    """
    model = predicting_model(model).eval()
    for cls in type(model).__mro__:
        if cls in EXPORT_ADAPTERS:
            return EXPORT_ADAPTERS[cls](model, sample).eval()
    raise ValueError(f"{type(model).__name__} cannot be exported: wsis-d2 export writes the CondInst family "
                     f"and Mask R-CNN ({', '.join(c.__name__ for c in EXPORT_ADAPTERS)})")


def load_trained_model(cfg, weights: str, config_file: str) -> nn.Module:
    """``cfg``'s model with the checkpoint ``weights`` loaded, in eval mode.

    Raises:
        ConfigError: a missing, cut-short or corrupt file, or a checkpoint of another model (one that
            leaves some of the model's weights unloaded, as training and evaluation refuse it).
    """
    if not os.path.isfile(weights):
        raise ConfigError(f"--weights {weights}: no such file")
    problem = weights_file_problem(weights)
    if problem is not None:
        raise ConfigError(f"--weights {problem}")
    model = build_model(cfg)
    checkpointer = WSISCheckpointer(model)
    checkpointer.load(weights, checkpointables=[])
    if checkpointer.unloaded_weights:
        raise unloaded_weights_error(weights, checkpointer.unloaded_weights, model, config_file)
    return model.eval()


def onnx_runtime():
    """The ``onnxruntime`` module, or :class:`OnnxMissing` with the install line."""
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
        import onnxruntime
    except ImportError as e:
        raise OnnxMissing(f"--format onnx needs the packages onnx and onnxruntime ({e}): "
                          "pip install 'wsis-d2[onnx]' (or pip install onnx onnxruntime)") from e
    return onnxruntime


def write_model(module: nn.Module, sample: torch.Tensor, fmt: str, path: str) -> None:
    """Trace ``module`` on ``sample`` (3, H, W) and write it to ``path`` as ``fmt``."""
    with torch.no_grad(), warnings.catch_warnings():
        # tracing warns at every Python check of a shape (asserts, the dynamic head's parameter count):
        # those are constant for a given model; what generalises is checked after export
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=FutureWarning)
        if fmt == "torchscript":
            torch.jit.trace(module, (sample,), check_trace=False).save(path)
        elif fmt == "onnx":
            onnx_runtime()
            detections = {0: "detections"}
            torch.onnx.export(
                module, (sample,), path, dynamo=False, opset_version=ONNX_OPSET, input_names=["image"],
                output_names=OUTPUT_NAMES,
                dynamic_axes={"image": {1: "height", 2: "width"}, "boxes": detections, "scores": detections,
                              "classes": detections, "mask_probs": {0: "detections", 1: "height", 2: "width"}})
        else:
            raise ValueError(f"unknown export format {fmt!r}; choose one of {sorted(FORMATS)}")


def load_exported(path: str) -> Callable[[torch.Tensor], List[torch.Tensor]]:
    """The exported model file ``path`` (``.pt`` or ``.onnx``) as image (3, H, W) -> its four outputs."""
    if path.endswith(".onnx"):
        session = onnx_runtime().InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda image: [torch.from_numpy(a) for a in session.run(None, {"image": image.numpy()})]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_JIT_DEPRECATED, category=FutureWarning)
        module = torch.jit.load(path, map_location="cpu")
    return lambda image: list(module(image))


def mask_ious(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(D,) IoU of two (D, H, W) bool mask stacks, pair by pair; two empty masks have IoU 1."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def compare_outputs(reference: Sequence[torch.Tensor], exported: Sequence[torch.Tensor],
                    mask_threshold: float) -> dict:
    """How far ``exported``'s (boxes, scores, classes, mask_probs) are from ``reference``'s; ``ok`` when
    they hold the same detections (count, classes, boxes within :data:`BOX_ATOL` x the image size,
    scores within :data:`SCORE_ATOL`, every mask IoU >= :data:`MIN_MASK_IOU`)."""
    (b0, s0, c0, m0), (b1, s1, c1, m1) = reference, exported
    report = {"detections": len(b0), "exported_detections": len(b1)}
    if len(b0) != len(b1) or m0.shape[1:] != m1.shape[1:]:
        return dict(report, ok=False)
    if len(b0) == 0:
        return dict(report, ok=True, max_box_diff=0.0, max_score_diff=0.0, min_mask_iou=1.0)
    box_diff = (b0 - b1).abs().max().item()
    score_diff = (s0 - s1).abs().max().item()
    iou = mask_ious(m0 > mask_threshold, m1 > mask_threshold).min().item()
    ok = (torch.equal(c0.long(), c1.long()) and box_diff <= BOX_ATOL * max(m0.shape[1:])
          and score_diff <= SCORE_ATOL and iou >= MIN_MASK_IOU)
    return dict(report, ok=ok, max_box_diff=box_diff, max_score_diff=score_diff, min_mask_iou=iou)


def check_export(module: nn.Module, path: str, images: Sequence[torch.Tensor], mask_threshold: float) -> List[dict]:
    """:func:`compare_outputs` of PyTorch's ``module`` and the exported file, image by image."""
    exported = load_exported(path)
    reports = []
    with torch.no_grad():
        for image in images:
            report = compare_outputs(module(image), exported(image), mask_threshold)
            reports.append(dict(report, size=list(image.shape[-2:])))
    return reports


def class_names(cfg) -> List[str]:
    """The test set's category names when it is registered (else the training set's, else none)."""
    for name in list(cfg.DATASETS.TEST) + list(cfg.DATASETS.TRAIN):
        try:
            names = MetadataCatalog.get(name).get("thing_classes")
        except KeyError:
            names = None
        if names:
            return list(names)
    return []


def mask_threshold_of(model: nn.Module) -> float:
    model = predicting_model(model)
    return float(model.mask_threshold) if isinstance(model, CondInst) else 0.5


def check_output_dir(output_dir: str) -> None:
    """Refuse an ``output_dir`` that is a file or a folder with anything in it (never overwritten)."""
    if os.path.isfile(output_dir):
        raise ConfigError(f"--output {output_dir} is a file; name a new folder")
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        raise ConfigError(f"--output {output_dir} exists and is not empty; name a new folder "
                          "(an export never overwrites files)")


def export_model(model: nn.Module, cfg, fmt: str, output_dir: str, sample: torch.Tensor,
                 check_images: Sequence[torch.Tensor] = (), source: dict = None) -> dict:
    """Export ``model`` (``cfg``'s, in eval mode) into the new folder ``output_dir``.

    The graph is traced on ``sample`` (3, H, W) (a test-size input in ``INPUT.FORMAT``); the exported
    file is then run on ``sample`` and ``check_images`` (other sizes) and compared with PyTorch
    (:func:`compare_outputs`). Everything is written into ``<output_dir>.partial`` first and renamed to
    ``output_dir`` only when every check passes.

    Returns:
        the contents of ``export.json``.

    Raises:
        ConfigError: ``output_dir`` holds files; the exported model differs from PyTorch (the partial
            folder is kept to look at).
        OnnxMissing: ``fmt`` is onnx without onnx / onnxruntime installed.
    """
    check_output_dir(output_dir)
    if fmt == "onnx":
        onnx_runtime()
    partial = output_dir.rstrip("/") + ".partial"
    if os.path.exists(partial):
        raise ConfigError(f"{partial} exists (left by an earlier export that failed its check); "
                          "remove it or name another --output")
    module = export_module(model, sample)
    mask_threshold = mask_threshold_of(model)
    os.makedirs(partial)
    path = os.path.join(partial, FORMATS[fmt])
    write_model(module, sample, fmt, path)
    checks = check_export(module, path, [sample] + list(check_images), mask_threshold)
    meta = {
        "format": fmt, "file": FORMATS[fmt], "architecture": type(predicting_model(model)).__name__,
        "exporter": "torch.jit.trace" if fmt == "torchscript" else
                    f"torch.onnx.export (TorchScript-based, dynamo=False), opset {ONNX_OPSET}",
        "input": "image: (3, H, W) float32, any H and W, resized to the test size, 0-255, in input_format",
        "input_format": cfg.INPUT.FORMAT,
        "outputs": {"boxes": "(D, 4) XYXY in the input's frame", "scores": "(D,) decreasing",
                    "classes": "(D,) int64", "mask_probs": "(D, H, W) float, masks are mask_probs > mask_threshold"},
        "min_size_test": int(cfg.INPUT.MIN_SIZE_TEST), "max_size_test": int(cfg.INPUT.MAX_SIZE_TEST),
        "mask_threshold": mask_threshold, "class_names": class_names(cfg),
        "traced_on_size": list(sample.shape[-2:]), "checks": checks,
        "source": source or {}, "versions": {"wsis_d2": _version("wsis-d2"), "torch": torch.__version__},
    }
    with open(os.path.join(partial, "export.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=1)
    with open(os.path.join(partial, "config.yaml"), "w", encoding="utf-8") as f:
        f.write(cfg.dump())
    shutil.copyfile(postprocess_module.__file__, os.path.join(partial, "postprocess.py"))
    failed = [c for c in checks if not c["ok"]]
    if failed:
        raise ConfigError(f"the exported model differs from PyTorch on {len(failed)} of {len(checks)} check "
                          f"images ({failed[0]}); not written to {output_dir}, files kept in {partial}")
    if os.path.isdir(output_dir):
        os.rmdir(output_dir)  # empty (checked above)
    os.rename(partial, output_dir)
    return meta


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def synthetic_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A seeded (3, H, W) float image (whole numbers 0-255) of flat colour discs on grey, to trace on when
    no sample image is given."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.full((3, height, width), 110.0, np.float32)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.1, 0.3) * min(height, width)
        inside = ((yy - cy) ** 2 + (xx - cx) ** 2) < r ** 2
        image[:, inside] = rng.integers(0, 256, size=(3, 1))
    return torch.from_numpy(image)

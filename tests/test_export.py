"""wsis-d2 export: the exported graph gives PyTorch's detections on images of other sizes and other
detection counts than the one it was traced on (the tracing trap), TorchScript always, ONNX when
onnxruntime is installed; the shipped postprocess.py; refusals."""
import importlib.util
import json
import os
import sys

import numpy as np
import pytest
import torch
from detectron2.data import transforms as T
from detectron2.modeling import build_model
from PIL import Image

from wsis_d2.config import ConfigError
from wsis_d2.export import (
    CondInstExport, MaskRCNNExport, OnnxMissing, compare_outputs, export_model, export_module, load_exported,
    load_trained_model, mask_ious,
)
from wsis_d2.export.cli import main as export_main
from wsis_d2.export.exporter import synthetic_image
from wsis_d2.model_zoo import get_config

TRACE_SIZE = (128, 170)
# none is the trace size; 150 x 117 and 97 x 131 are not multiples of the size divisibility (32)
CHECK_SIZES = [(96, 128), (150, 117), (200, 144), (97, 131)]


def _images(sizes, first_seed=1):
    return [synthetic_image(h, w, seed=first_seed + i) for i, (h, w) in enumerate(sizes)]


def _config(name):
    cfg = get_config(name)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "224"])
    return cfg


def _eager(model, image, height=None, width=None):
    """PyTorch's own inference (the model's forward, not the export module) as the four outputs."""
    inputs = {"image": image}
    if height is not None:
        inputs.update(height=height, width=width)
    with torch.no_grad():
        inst = model([inputs])[0]["instances"]
    return inst.pred_boxes.tensor, inst.scores, inst.pred_classes, inst.pred_masks


def _assert_same(reference, exported, mask_threshold):
    """Same detections: count, classes, boxes (1e-3 x image size), scores, mask IoU >= 0.99 each."""
    boxes, scores, classes, masks = reference
    b, s, c, probs = exported
    assert len(b) == len(boxes) and probs.shape[1:] == masks.shape[1:]
    assert torch.equal(c.long(), classes.long())
    assert torch.allclose(b, boxes, atol=1e-3 * max(masks.shape[1:]))
    assert torch.allclose(s, scores, atol=1e-4)
    if len(b):
        assert mask_ious(probs >= mask_threshold, masks).min() >= 0.99  # detectron2 pastes p >= 0.5


ORIGINAL = synthetic_image(300, 410, seed=7).permute(1, 2, 0).numpy().astype(np.uint8)  # postprocess test


def _resized_original():
    resized = T.ResizeShortestEdge([128, 128], 224).get_transform(ORIGINAL).apply_image(ORIGINAL)
    return torch.as_tensor(resized.astype("float32").transpose(2, 0, 1))


def _threshold_for_detections_everywhere(model, trace_image, set_threshold):
    """A score threshold under which every test image has at least 3 detections of a random-init model
    (their scores differ little from image to image), chosen from its scores at threshold 0."""
    set_threshold(0.0)
    images = [trace_image, _resized_original()] + _images(CHECK_SIZES)
    third_best = min(float(_eager(model, x)[1][2]) for x in images)
    return third_best * 0.999


def _random_condinst(config):
    """A random-init CondInst-family model whose masks are not all near 0.5 (the controller's init is
    widened) and whose score threshold leaves some detections on every test image."""
    torch.manual_seed(0)
    cfg = _config(config)
    model = build_model(cfg).eval()
    torch.nn.init.normal_(model.fcos.head.extra.weight, std=0.1)
    trace_image = synthetic_image(*TRACE_SIZE, seed=0)
    score = _threshold_for_detections_everywhere(model, trace_image,
                                                 lambda t: setattr(model.fcos, "score_thresh", t))
    model.fcos.score_thresh = score ** 2  # FCOS thresholds the joint score, before its square root
    cfg.MODEL.FCOS.INFERENCE_TH = score ** 2
    return cfg, model, trace_image


def _random_mask_rcnn():
    torch.manual_seed(0)
    cfg = _config("MaskRCNN/R18_shapes.yaml")
    model = build_model(cfg).eval()
    # detectron2 initialises the mask predictor with std 0.001: every probability ~0.5, where the last bit
    # of a float flips a pixel; widened, as the CondInst controller's above
    torch.nn.init.normal_(model.roi_heads.mask_head.predictor.weight, std=0.1)
    predictor = model.roi_heads.box_predictor
    trace_image = synthetic_image(*TRACE_SIZE, seed=0)
    threshold = _threshold_for_detections_everywhere(model, trace_image,
                                                     lambda t: setattr(predictor, "test_score_thresh", t))
    predictor.test_score_thresh = threshold
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = threshold
    return cfg, model, trace_image


@pytest.fixture(scope="module")
def condinst():
    return _random_condinst("CondInst/R18_shapes.yaml")


@pytest.fixture(scope="module")
def mask_rcnn():
    return _random_mask_rcnn()


def _counts(model, images):
    return [len(_eager(model, x)[0]) for x in images]


def _check_against_eager(model, exported_file, trace_image, mask_threshold):
    """The exported file vs the model's own inference on CHECK_SIZES; returns the detection counts."""
    run = load_exported(exported_file)
    images = _images(CHECK_SIZES)
    counts = []
    with torch.no_grad():
        for image in images:
            reference = _eager(model, image)
            _assert_same(reference, run(image), mask_threshold)
            counts.append(len(reference[0]))
    traced_count = len(_eager(model, trace_image)[0])
    # the trap: a trace that baked in its size or detection count would fail on these
    assert min(counts) >= 3 and len(set(counts + [traced_count])) >= 2, (counts, traced_count)
    return counts


def test_condinst_torchscript_from_the_command_matches_pytorch(condinst, tmp_path, capsys):
    cfg, model, trace_image = condinst
    config_file, weights = tmp_path / "config.yaml", tmp_path / "model.pth"
    config_file.write_text(cfg.dump())
    torch.save({"model": model.state_dict()}, weights)
    sample = tmp_path / "sample.png"
    # the sample as an image file at the test size (the CLI resizes it with ResizeShortestEdge: a no-op here)
    # synthetic images hold whole numbers: the PNG (RGB, read back as BGR) holds exactly the trace image
    Image.fromarray(trace_image.permute(1, 2, 0).byte().numpy()[:, :, ::-1].copy()).save(sample)

    out = tmp_path / "export"
    export_main(["--config-file", str(config_file), "--weights", str(weights), "--format", "torchscript",
                 "--output", str(out), "--sample-image", str(sample)])
    assert sorted(os.listdir(out)) == ["config.yaml", "export.json", "model.pt", "postprocess.py"]
    meta = json.loads((out / "export.json").read_text())
    assert meta["architecture"] == "CondInst" and meta["traced_on_size"] == list(TRACE_SIZE)
    traced_count = len(_eager(model, trace_image)[0])
    assert [c["ok"] for c in meta["checks"]] == [True, True] and meta["checks"][0]["detections"] == traced_count
    assert f"checked at 128x170: {traced_count} detections" in capsys.readouterr().out
    _check_against_eager(model, str(out / "model.pt"), trace_image, model.mask_threshold)


def _load_postprocess(folder):
    spec = importlib.util.spec_from_file_location("exported_postprocess", os.path.join(folder, "postprocess.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_postprocess_gives_the_predictors_result_on_an_original_image(condinst, tmp_path):
    """postprocess.py alone (no wsis_d2 import): resize an original image, run the graph, scale back;
    against detectron2's predictor path (ResizeShortestEdge, then the model's own postprocess)."""
    cfg, model, trace_image = condinst
    out = tmp_path / "export"
    export_model(model, cfg, "torchscript", str(out), trace_image)
    shipped = _load_postprocess(str(out))
    assert not any(name.startswith("wsis_d2") for name in vars(shipped))
    exported = shipped.ExportedModel(str(out))
    assert len(exported.meta["class_names"]) == 6

    result = exported(ORIGINAL)
    boxes, scores, classes, masks = _eager(model, _resized_original(), height=300, width=410)
    assert len(boxes) > 0 and result["masks"].shape == (len(boxes), 300, 410)
    assert np.allclose(result["boxes"], boxes.numpy(), atol=0.5) and np.allclose(result["scores"], scores.numpy())
    assert np.array_equal(result["classes"], classes.numpy())
    assert mask_ious(torch.from_numpy(result["masks"]), masks).min() >= 0.99


def test_shipped_resize_matches_torch_bilinear(tmp_path):
    from wsis_d2.export import postprocess as shipped

    maps = torch.rand(3, 7, 9)
    for size in [(20, 31), (4, 5), (7, 9)]:
        expected = torch.nn.functional.interpolate(maps[None], size=size, mode="bilinear", align_corners=False)[0]
        assert np.allclose(shipped.resize_bilinear(maps.numpy(), *size), expected.numpy(), atol=1e-6)
    assert shipped.test_size(300, 410, 128, 224) == (128, 175)
    assert shipped.test_size(100, 1000, 128, 224) == (22, 224)


def test_boxinst_exports_as_condinst_and_teacher_student_exports_its_predictor():
    torch.manual_seed(0)
    boxinst = build_model(_config("BoxInst/R18_shapes.yaml"))
    assert isinstance(export_module(boxinst, synthetic_image(64, 64)), CondInstExport)
    teacher_student = build_model(_config("BoxTeacher/R18_shapes.yaml"))
    for use_teacher, expected in [(True, teacher_student.teacher.model), (False, teacher_student.student)]:
        teacher_student.use_teacher_inference = use_teacher
        assert export_module(teacher_student, synthetic_image(64, 64)).model is expected


def test_boxinst_torchscript_matches_pytorch(tmp_path):
    cfg, model, trace_image = _random_condinst("BoxInst/R18_shapes.yaml")
    out = tmp_path / "export"
    meta = export_model(model, cfg, "torchscript", str(out), trace_image, _images(CHECK_SIZES[:1]))
    assert meta["architecture"] == "BoxInst" and all(c["ok"] for c in meta["checks"])
    _check_against_eager(model, str(out / "model.pt"), trace_image, model.mask_threshold)


def test_mask_rcnn_torchscript_matches_pytorch(mask_rcnn, tmp_path):
    cfg, model, trace_image = mask_rcnn
    out = tmp_path / "export"
    meta = export_model(model, cfg, "torchscript", str(out), trace_image)
    assert meta["architecture"] == "GeneralizedRCNN" and meta["checks"][0]["detections"] >= 3
    _check_against_eager(model, str(out / "model.pt"), trace_image, 0.5)


def _no_detections_torchscript(path, parameter, value):
    """The exported TorchScript file with one bias set to ``value`` (scores far below the threshold)."""
    module = torch.jit.load(path)
    with torch.no_grad():
        dict(module.named_parameters())[parameter].fill_(value)
    return module


def test_traced_with_detections_runs_on_an_image_with_none(condinst, mask_rcnn, tmp_path):
    """Traced with detections; class scores then pushed far below the threshold in the exported file."""
    cases = [(condinst, "model.fcos.head.cls_logits.bias", -30.0, None),  # every class logit -30
             # Mask R-CNN: every foreground logit 0, the background's (last) 30
             (mask_rcnn, "adapter.model.roi_heads.box_predictor.cls_score.bias", 0.0, 30.0)]
    for (cfg, model, trace_image), parameter, fill, last in cases:
        out = tmp_path / type(model).__name__
        export_model(model, cfg, "torchscript", str(out), trace_image)
        module = torch.jit.load(str(out / "model.pt"))
        with torch.no_grad():
            bias = dict(module.named_parameters())[parameter]
            bias.fill_(fill)
            if last is not None:
                bias[-1] = last
            boxes, scores, classes, probs = module(_images(CHECK_SIZES[:1])[0])
        assert boxes.shape == (0, 4) and scores.shape == (0,) and classes.shape == (0,)
        assert probs.shape == (0, *CHECK_SIZES[0])


def _set_onnx_bias(path, suffix, fill, last=None):
    """Write a copy of the ONNX file with the initializer named ``*suffix`` filled (and its last entry set)."""
    import onnx
    from onnx import numpy_helper

    graph_model = onnx.load(path)
    matches = [t for t in graph_model.graph.initializer if t.name.endswith(suffix)]
    assert len(matches) == 1, [t.name for t in graph_model.graph.initializer][:20]
    array = numpy_helper.to_array(matches[0]).copy()
    array[:] = fill
    if last is not None:
        array[-1] = last
    matches[0].CopyFrom(numpy_helper.from_array(array, matches[0].name))
    copy = path.replace(".onnx", "_none.onnx")
    onnx.save(graph_model, copy)
    return copy


@pytest.mark.parametrize("arch", ["condinst", "mask_rcnn"])
def test_onnx_matches_pytorch(arch, request, tmp_path):
    pytest.importorskip("onnxruntime")
    cfg, model, trace_image = request.getfixturevalue(arch)
    out = tmp_path / "export"
    meta = export_model(model, cfg, "onnx", str(out), trace_image)
    assert meta["file"] == "model.onnx" and "dynamo=False" in meta["exporter"]
    threshold = model.mask_threshold if arch == "condinst" else 0.5
    _check_against_eager(model, str(out / "model.onnx"), trace_image, threshold)
    # no detections on an image, for a graph traced with some (ONNX Runtime's empty GroupNorm batch)
    if arch == "condinst":
        path = _set_onnx_bias(str(out / "model.onnx"), "cls_logits.bias", -30.0)
    else:
        path = _set_onnx_bias(str(out / "model.onnx"), "cls_score.bias", 0.0, last=30.0)
    boxes, scores, classes, probs = load_exported(path)(_images(CHECK_SIZES[1:2])[0])
    assert boxes.shape == (0, 4) and probs.shape == (0, *CHECK_SIZES[1])


def test_export_never_overwrites(condinst, tmp_path):
    cfg, model, trace_image = condinst
    out = tmp_path / "export"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(ConfigError, match="exists and is not empty"):
        export_model(model, cfg, "torchscript", str(out), trace_image)
    assert os.listdir(out) == ["mine.txt"] and (out / "mine.txt").read_text() == "keep"
    with pytest.raises(SystemExit, match="error: --output .* exists and is not empty"):
        export_main(["--config-file", "configs/CondInst/R18_shapes.yaml", "--weights", "w.pth",
                     "--format", "torchscript", "--output", str(out)])
    file_out = tmp_path / "file"
    file_out.write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        export_model(model, cfg, "torchscript", str(file_out), trace_image)


def test_onnx_missing_is_one_clear_line(condinst, tmp_path, monkeypatch):
    cfg, model, trace_image = condinst
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.raises(OnnxMissing, match=r"--format onnx needs the packages onnx and onnxruntime.*pip install"):
        export_model(model, cfg, "onnx", str(tmp_path / "export"), trace_image)
    assert not os.listdir(tmp_path)


def test_weights_of_another_model_or_no_file_are_refused(mask_rcnn, tmp_path):
    _, rcnn, _ = mask_rcnn
    weights = tmp_path / "rcnn.pth"
    torch.save({"model": rcnn.state_dict()}, weights)
    cfg = _config("CondInst/R18_shapes.yaml")
    with pytest.raises(ConfigError, match=r"rcnn.pth: lacks .* is it a checkpoint of that config"):
        load_trained_model(cfg, str(weights), "configs/CondInst/R18_shapes.yaml")
    with pytest.raises(ConfigError, match="no such file"):
        load_trained_model(cfg, str(tmp_path / "missing.pth"), "configs/CondInst/R18_shapes.yaml")


def test_unsupported_model_is_named():
    with pytest.raises(ValueError, match="Linear cannot be exported"):
        export_module(torch.nn.Linear(2, 2), synthetic_image(8, 8))
    with pytest.raises(ValueError, match="no mask head"):
        cfg = _config("MaskRCNN/R18_shapes.yaml")
        cfg.MODEL.MASK_ON = False
        MaskRCNNExport(build_model(cfg).eval(), synthetic_image(64, 64))


def test_compare_outputs_and_mask_ious_on_hand_cases():
    a = torch.zeros(2, 4, 4, dtype=torch.bool)
    b = a.clone()
    a[0, :2, :2] = True                  # 4 px
    b[0, :2, :3] = True                  # 6 px, 4 shared
    assert mask_ious(a, b).tolist() == pytest.approx([4 / 6, 1.0])  # two empty masks count as equal
    boxes = torch.tensor([[0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]])
    ref = (boxes, torch.tensor([0.9, 0.8]), torch.tensor([0, 1]), a.float())
    assert compare_outputs(ref, ref, 0.5)["ok"]
    assert not compare_outputs(ref, (boxes + 0.01, *ref[1:]), 0.5)["ok"]           # 0.01 > 1e-3 x 4 px
    assert not compare_outputs(ref, (boxes[:1], ref[1][:1], ref[2][:1], ref[3][:1]), 0.5)["ok"]
    assert not compare_outputs(ref, (*ref[:3], b.float()), 0.5)["ok"]              # IoU 0.67
    assert not compare_outputs(ref, (boxes, ref[1], torch.tensor([1, 1]), ref[3]), 0.5)["ok"]
    empty = (torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long), torch.zeros(0, 4, 4))
    assert compare_outputs(empty, empty, 0.5)["ok"]

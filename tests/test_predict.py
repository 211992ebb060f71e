"""``wsis-d2 predict`` on tiny shapes images with untrained checkpoints (shape checks, not accuracy):
pictures and COCO results for every model family, a video, the input and checkpoint guards."""
import contextlib
import hashlib
import io
import json
import shutil

import cv2
import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from pycocotools.coco import COCO

from wsis_d2.cli import main as cli_main
from wsis_d2.config import ConfigError, build_config
from wsis_d2.data.shapes import CATEGORIES
from wsis_d2.engine.predict import coco_results, collect_images, output_names, training_metadata
from wsis_d2.model_zoo import get_config_file
from wsis_d2.modeling.checkpoint import WSISCheckpointer

# the shapes data registered by conftest's tiny_shapes; 128 px; a few detections per image
TINY = ["DATASETS.TRAIN", "('tiny_full',)", "DATASETS.TEST", "('tiny_val',)", "INPUT.MIN_SIZE_TEST", "128",
        "MODEL.FCOS.POST_NMS_TOPK", "3", "TEST.DETECTIONS_PER_IMAGE", "3"]


def save_untrained(config: str, folder, opts=()) -> str:
    """A checkpoint (``model_final.pth`` in ``folder``) of ``config``'s freshly initialised model."""
    cfg = build_config(get_config_file(config), TINY + list(opts))
    model = build_model(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    WSISCheckpointer(model, save_dir=str(folder)).save("model_final")
    return str(folder / "model_final.pth")


def predict(config: str, weights, inputs, output, *extra):
    """Run the command as a user does; returns what it printed."""
    argv = ["predict", "--config-file", get_config_file(config), "--weights", str(weights),
            "--input", *map(str, inputs), "--output", str(output), *extra, *TINY]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(argv) == 0
    return out.getvalue()


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def condinst(tmp_path_factory):
    return save_untrained("CondInst/R18_shapes.yaml", tmp_path_factory.mktemp("condinst"))


@pytest.fixture()
def photos(tiny_shapes, tmp_path):
    """3 shapes images, a truncated JPEG and a text file in one folder."""
    folder = tmp_path / "photos"
    folder.mkdir()
    val = json.load(open(tiny_shapes["files"]["val"]))
    for image in val["images"][:3]:
        shutil.copy(f"{tiny_shapes['root']}/{image['file_name']}", folder / image["file_name"].split("/")[-1])
    cv2.imwrite(str(folder / "broken.jpg"), np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8))
    data = (folder / "broken.jpg").read_bytes()
    (folder / "broken.jpg").write_bytes(data[: len(data) // 2])
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_images_give_pictures_and_coco_results(condinst, photos, tmp_path):
    before = {p.name: digest(p) for p in photos.iterdir()}
    out = tmp_path / "out"
    printed = predict("CondInst/R18_shapes.yaml", condinst, [photos], out, "--confidence", "0")
    images = sorted(p for p in photos.iterdir() if p.suffix in (".png", ".jpg"))
    readable = [p for p in images if p.name != "broken.jpg"]
    for p in readable:  # the same name, the same size as the input
        picture = cv2.imread(str(out / p.name))
        assert picture is not None and picture.shape == cv2.imread(str(p)).shape
    assert not (out / "broken.jpg").exists() and not (out / "notes.txt").exists()
    assert "1 images skipped (cannot be read):" in printed and f"{photos / 'broken.jpg'}: cannot be read" in printed
    assert f"{len(readable)} images," in printed and "images/s" in printed
    assert {p.name: digest(p) for p in photos.iterdir()} == before  # inputs untouched

    results = json.loads((out / "results.json").read_text())
    ids = {p.name: k for k, p in enumerate(images, 1)}  # image_id: place in the input, 1-based
    assert 0 < len(results) <= 3 * len(readable)
    assert {r["file_name"] for r in results} == {p.name for p in readable}
    for r in results:
        assert r["image_id"] == ids[r["file_name"]]
        assert r["category_id"] in {c["id"] for c in CATEGORIES}  # the dataset's ids (1..6), not indices
        assert isinstance(r["segmentation"]["counts"], str)
        h, w = cv2.imread(str(photos / r["file_name"])).shape[:2]
        assert mask_util.decode(r["segmentation"]).shape == (h, w)
        assert len(r["bbox"]) == 4 and r["bbox"][2] >= 0 and 0 <= r["score"] <= 1
    # pycocotools loads the results against ground truth of the same images
    gt = COCO()
    gt.dataset = {"images": [{"id": ids[p.name], "file_name": p.name, "height": cv2.imread(str(p)).shape[0],
                              "width": cv2.imread(str(p)).shape[1]} for p in readable],
                  "annotations": [], "categories": CATEGORIES}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        loaded = gt.loadRes(str(out / "results.json"))
    assert len(loaded.getAnnIds()) == len(results)


def test_a_confidence_no_prediction_reaches_gives_empty_results_and_plain_pictures(condinst, photos, tmp_path):
    out = tmp_path / "out"
    predict("CondInst/R18_shapes.yaml", condinst, [photos / "broken.jpg", *sorted(photos.glob("*.png"))[:1]], out,
            "--confidence", "1")
    assert json.loads((out / "results.json").read_text()) == []
    first = sorted(photos.glob("*.png"))[0]
    assert np.array_equal(cv2.imread(str(out / first.name)), cv2.imread(str(first)))  # nothing drawn


def test_never_writes_over_an_input_nor_an_existing_output(condinst, photos, tmp_path, capsys):
    before = {p.name: digest(p) for p in photos.iterdir()}
    with pytest.raises(SystemExit, match=r"would overwrite the input .*; choose another --output"):
        predict("CondInst/R18_shapes.yaml", condinst, [photos], photos, "--overwrite")
    assert {p.name: digest(p) for p in photos.iterdir()} == before
    out = tmp_path / "out"
    predict("CondInst/R18_shapes.yaml", condinst, [photos], out)
    with pytest.raises(SystemExit, match="exists .*pass --overwrite"):
        predict("CondInst/R18_shapes.yaml", condinst, [photos], out)
    predict("CondInst/R18_shapes.yaml", condinst, [photos], out, "--overwrite")


def test_refuses_a_checkpoint_of_another_model(condinst, photos, tmp_path):
    with pytest.raises(SystemExit, match=r"lacks \(or holds another shape of\) .*MaskRCNN/R18_shapes.yaml's model"):
        predict("MaskRCNN/R18_shapes.yaml", condinst, [photos], tmp_path / "out")
    with pytest.raises(SystemExit, match="no such file"):
        predict("CondInst/R18_shapes.yaml", tmp_path / "none.pth", [photos], tmp_path / "out")
    assert not (tmp_path / "out" / "results.json").exists()


@pytest.mark.parametrize("config", [
    "BoxInst/R18_shapes.yaml", "BoxInst/MaskRCNN_R18_shapes.yaml", "BoxLevelSet/R18_shapes.yaml",
    "BoxTeacher/R18_shapes.yaml", "SIM/R18_shapes.yaml", "PointSup/CondInst_R18_shapes.yaml",
    "PointSup/MaskRCNN_R18_shapes.yaml", "MaskRCNN/R18_shapes.yaml"])
def test_every_model_family_predicts(config, photos, tmp_path):
    weights = save_untrained(config, tmp_path / "w")
    image = sorted(photos.glob("*.png"))[0]
    predict(config, weights, [image], tmp_path / "out", "--confidence", "0")
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results and all(mask_util.decode(r["segmentation"]).shape == cv2.imread(str(image)).shape[:2]
                           for r in results)


def test_a_teacher_student_model_takes_a_student_only_checkpoint(condinst, photos, tmp_path):
    # BoxInst's weights (a CondInst with BoxInst's mask branch) fill BoxTeacher's student and teacher
    weights = save_untrained("BoxInst/R18_shapes.yaml", tmp_path / "w")
    predict("BoxTeacher/R18_shapes.yaml", weights, [sorted(photos.glob("*.png"))[0]], tmp_path / "out")
    assert (tmp_path / "out" / "results.json").is_file()


def test_a_video_gives_an_annotated_video(condinst, tiny_shapes, tmp_path):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (96, 64), True)
    if not writer.isOpened():
        pytest.skip("OpenCV cannot write MJPG AVI here")
    val = json.load(open(tiny_shapes["files"]["val"]))["images"][0]["file_name"]
    frame = cv2.resize(cv2.imread(f"{tiny_shapes['root']}/{val}"), (96, 64))
    for k in range(3):
        writer.write(np.roll(frame, 5 * k, axis=1))
    writer.release()
    out = tmp_path / "out"
    printed = predict("CondInst/R18_shapes.yaml", condinst, [video], out, "--confidence", "0")
    capture = cv2.VideoCapture(str(out / "clip.avi"))
    frames = []
    while True:
        ok, f = capture.read()
        if not ok:
            break
        frames.append(f)
    assert len(frames) == 3 and frames[0].shape == (64, 96, 3)
    assert "3 frames in" in printed
    with pytest.raises(SystemExit, match="would overwrite the input"):
        predict("CondInst/R18_shapes.yaml", condinst, [out / "clip.avi"], out, "--overwrite")


def test_class_names_and_ids_come_from_the_training_set(tiny_shapes, caplog):
    cfg = build_config(get_config_file("CondInst/R18_shapes.yaml"), TINY)
    metadata, ids = training_metadata(cfg)
    assert metadata.thing_classes == [c["name"] for c in CATEGORIES]
    assert ids == {k: c["id"] for k, c in enumerate(CATEGORIES)}
    cfg = build_config(get_config_file("CondInst/R18_shapes.yaml"), TINY + ["DATASETS.TRAIN", "('nowhere',)"])
    metadata, ids = training_metadata(cfg)  # a warning, not a crash
    assert metadata.thing_classes == [f"class {i}" for i in range(6)] and ids == {i: i for i in range(6)}
    assert "'nowhere' of the config is not registered" in caplog.text


def test_inputs_folders_patterns_and_names(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        cv2.imwrite(str(tmp_path / folder / "x.png"), np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "a" / "y.JPG").write_bytes(b"")
    (tmp_path / "a" / "z.txt").write_text("")
    found = collect_images([str(tmp_path / "a"), str(tmp_path / "*" / "x.png")])
    assert found == [str(tmp_path / "a" / "x.png"), str(tmp_path / "a" / "y.JPG"), str(tmp_path / "b" / "x.png")]
    assert output_names(found) == ["a/x.png", "a/y.JPG", "b/x.png"]  # two x.png kept apart
    assert output_names([str(tmp_path / "a" / "x.png")]) == ["x.png"]
    with pytest.raises(ConfigError, match="no such file or folder, and no file matches it"):
        collect_images([str(tmp_path / "missing*.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no image"):
        collect_images([str(tmp_path / "empty")])


def test_coco_results_of_hand_made_predictions():
    mask = torch.zeros((1, 6, 8), dtype=torch.bool)
    mask[0, 1:4, 2:7] = True
    inst = Instances((6, 8), pred_boxes=Boxes(torch.tensor([[2.0, 1.0, 7.0, 4.0]])), scores=torch.tensor([0.75]),
                     pred_classes=torch.tensor([1]), pred_masks=mask)
    [r] = coco_results(inst, 7, "im.png", {0: 10, 1: 20})
    assert r["image_id"] == 7 and r["category_id"] == 20 and r["bbox"] == [2.0, 1.0, 5.0, 3.0] and r["score"] == 0.75
    assert np.array_equal(mask_util.decode(r["segmentation"]), mask[0].numpy().astype(np.uint8))
    assert coco_results(inst[:0], 7, "im.png", {0: 10, 1: 20}) == []


def test_overrides_after_the_inputs_are_not_inputs(condinst, photos, tmp_path):
    image = sorted(photos.glob("*.png"))[0]
    argv = ["predict", "--config-file", get_config_file("CondInst/R18_shapes.yaml"), "--weights", condinst,
            "--output", str(tmp_path / "out"), "--confidence", "0", "--input", str(image), *TINY,
            "MODEL.FCOS.POST_NMS_TOPK", "1"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(argv) == 0
    assert len(json.loads((tmp_path / "out" / "results.json").read_text())) == 1  # the last override won

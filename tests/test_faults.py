"""Issue 27: bad inputs and faults as a new user meets them, one test per case, in the issue's order
(data loss first, then silently wrong output, then tracebacks that must be one line, then scale and
newer detectron2). Each asserts the exact outcome: the refusal naming the file, the skip reported, the
fallback taken, the score."""
import json
import os

import cv2
import numpy as np
import pytest

from wsis_d2.cli import main as cli_main


def _labelme_folder(folder):
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), np.full((20, 30, 3), 90, np.uint8))
    shape = {"label": "cat", "points": [[2, 2], [10, 2], [10, 10]], "shape_type": "polygon"}
    for name, shapes in (("a", [shape]), ("b", [])):
        (folder / f"{name}.json").write_text(json.dumps({"imagePath": "a.jpg", "imageHeight": 20,
                                                         "imageWidth": 30, "shapes": shapes}))
    return folder


# ---- data loss ----------------------------------------------------------------------------------------

def test_convert_overwrite_never_replaces_an_input_nor_a_hard_link_to_one(tmp_path, capsys):
    folder = _labelme_folder(tmp_path / "lm")
    before = {p.name: p.read_text() for p in folder.glob("*.json")}
    os.link(folder / "b.json", tmp_path / "link.json")
    for out, named in ((folder / "a.json", folder / "a.json"), (tmp_path / "link.json", folder / "b.json")):
        with pytest.raises(SystemExit):
            cli_main(["convert", "--format", "labelme", "--input", str(folder), "--output", str(out), "--overwrite"])
        assert f"error: --output {out} is the input file {named}" in capsys.readouterr().err
    assert {p.name: p.read_text() for p in folder.glob("*.json")} == before
    # an earlier output is still replaced with --overwrite
    (tmp_path / "out.json").write_text("old")
    cli_main(["convert", "--format", "labelme", "--input", str(folder), "--output", str(tmp_path / "out.json"),
              "--overwrite"])
    assert len(json.loads((tmp_path / "out.json").read_text())["annotations"]) == 1


def test_autolabel_refuses_a_hard_link_to_its_input(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((10, 10, 3), np.uint8))
    coco = {"images": [{"id": 1, "file_name": "a.png", "height": 10, "width": 10}], "categories": [{"id": 1, "name": "x"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 4, 4], "iscrowd": 0}]}
    src = tmp_path / "boxes.json"
    src.write_text(json.dumps(coco))
    os.link(src, tmp_path / "link.json")
    with pytest.raises(SystemExit):
        cli_main(["autolabel", "--input", str(src), "--image-root", str(tmp_path), "--backend", "box",
                  "--output", str(tmp_path / "link.json"), "--overwrite"])
    assert f"link.json: would overwrite the input {src}" in capsys.readouterr().err
    assert json.loads(src.read_text()) == coco


# ---- silently wrong output ----------------------------------------------------------------------------

def test_instance_png_void_is_per_mask_type_and_binary_masks_are_reported(tmp_path, capsys):
    from wsis_d2.convert import convert_instance_pngs

    for name in ("img", "m16", "m8", "bin"):
        (tmp_path / name).mkdir()
    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.full((40, 60, 3), 100, np.uint8))
    ids = np.zeros((40, 60), np.uint16)
    ids[2:10, 2:10], ids[20:30, 20:40], ids[30:38, 45:55] = 255, 256, 1000
    cv2.imwrite(str(tmp_path / "m16" / "a.png"), ids)  # 16-bit ids: 255 is an object
    coco, report = convert_instance_pngs(str(tmp_path / "img"), str(tmp_path / "m16"))
    assert len(coco["annotations"]) == 3 and not report.skipped
    ids8 = np.where(ids == 1000, 255, np.minimum(ids, 3)).astype(np.uint8)  # 8-bit: 255 is VOC's void
    cv2.imwrite(str(tmp_path / "m8" / "a.png"), ids8)
    coco, _ = convert_instance_pngs(str(tmp_path / "img"), str(tmp_path / "m8"))
    assert len(coco["annotations"]) == 1
    binary = ((ids == 255) | (ids == 256)).astype(np.uint8) * 255  # a 0/255 foreground mask of 2 objects
    cv2.imwrite(str(tmp_path / "bin" / "a.png"), binary)
    with pytest.raises(SystemExit, match="no image was converted"):
        cli_main(["convert", "--format", "instance-png", "--images", str(tmp_path / "img"), "--masks",
                  str(tmp_path / "bin"), "--output", str(tmp_path / "out.json")])
    assert (f"skipped: {tmp_path / 'bin' / 'a.png'}: holds only 0 and 255 (or is 1-bit): a binary foreground "
            "mask, not instance ids" in capsys.readouterr().out)
    coco, report = convert_instance_pngs(str(tmp_path / "img"), str(tmp_path / "bin"), binary_components=True)
    assert sorted(a["area"] for a in coco["annotations"]) == [64.0, 200.0] and not report.skipped


@pytest.mark.parametrize("ids", [[0, 1, 2], [7, 3, 5], ["a", "b", "c"]])
def test_ground_truth_as_predictions_scores_100_whatever_the_annotation_ids(tmp_path, ids):
    import torch
    from detectron2.structures import Boxes, Instances

    from wsis_d2.data.register import register_wsis_coco_instances
    from wsis_d2.evaluation import build_coco_evaluator

    from .conftest import small_config

    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((60, 60, 3), np.uint8))
    masks = np.zeros((3, 60, 60), bool)
    masks[0, 5:25, 5:25], masks[1, 30:50, 10:40], masks[2, 8:20, 35:55] = True, True, True
    from wsis_d2.data.rle import encode_mask
    anns = [{"id": i, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": encode_mask(m),
             "area": float(m.sum()), "bbox": [float(m.any(0).argmax()), float(m.any(1).argmax()),
                                              float(m.any(0).sum()), float(m.any(1).sum())]}
            for i, m in zip(ids, masks)]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png", "height": 60, "width": 60}],
                                "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}))
    name = f"faults_ids_{'_'.join(map(str, ids))}"
    register_wsis_coco_instances(name, {}, str(path), str(tmp_path), replace=True)
    cfg = small_config("MaskRCNN/R18_shapes.yaml")
    evaluator = build_coco_evaluator(cfg, name, str(tmp_path / "eval"))
    evaluator.reset()
    boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns])
    pred = Instances((60, 60), pred_boxes=Boxes(boxes), scores=torch.ones(3), pred_classes=torch.zeros(3).long(),
                     pred_masks=torch.as_tensor(masks))
    evaluator.process([{"image_id": 1, "height": 60, "width": 60}], [{"instances": pred}])
    results = evaluator.evaluate()
    assert results["segm"]["AP"] == pytest.approx(100.0) and results["bbox"]["AP"] == pytest.approx(100.0)
    assert [a["id"] for a in json.loads(path.read_text())["annotations"]] == ids  # the file is unchanged


def test_a_second_training_into_a_busy_output_dir_is_refused_and_a_killed_ones_lock_is_not_stale(
        tiny_shapes, tmp_path, caplog):
    import signal
    import subprocess
    import sys

    from wsis_d2.engine import run_lock

    out = tmp_path / "out"
    config = os.path.join(os.path.dirname(__file__), "..", "configs", "CondInst", "R18_shapes.yaml")
    # the first training: a process holding the lock until it is killed with -9
    code = ("import sys, time; from wsis_d2.engine import run_lock; run_lock.acquire(sys.argv[1]); "
            "print('locked', flush=True); time.sleep(60)")
    first = subprocess.Popen([sys.executable, "-c", code, str(out)], stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__))))
    try:
        assert first.stdout.readline().strip() == "locked"
        with pytest.raises(SystemExit, match=rf"error: OUTPUT_DIR {out} is in use by another training "
                                             rf"\(pid {first.pid} on .*\).* choose another OUTPUT_DIR"):
            cli_main(["train", "--config-file", config, "--resume", "OUTPUT_DIR", str(out),
                      "WSIS.SHAPES_ROOT", tiny_shapes["root"]])
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # killed, it left the lock file but not the lock: the next run goes on and says so
    with caplog.at_level("WARNING"):
        assert run_lock.acquire(str(out))
    run_lock.release(str(out))
    assert f"(pid {first.pid} on" in caplog.text and "ended without releasing its lock: it crashed or was killed" in caplog.text


def _truncated_jpeg(path, size=(40, 60)):
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_labelme_size_comes_from_the_image_and_truncated_images_are_named_skips(tmp_path, capsys, caplog):
    folder = tmp_path / "lm"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.full((40, 60, 3), 90, np.uint8))
    shape = {"label": "cat", "points": [[35, 22], [55, 22], [55, 38], [35, 38]], "shape_type": "polygon"}
    (folder / "a.json").write_text(json.dumps({"imagePath": "a.png", "imageHeight": 20, "imageWidth": 30,
                                               "shapes": [shape]}))
    _truncated_jpeg(folder / "t.jpg")
    (folder / "t.json").write_text(json.dumps({"imagePath": "t.jpg", "imageHeight": 40, "imageWidth": 60,
                                               "shapes": [shape]}))
    out = tmp_path / "out.json"
    cli_main(["convert", "--format", "labelme", "--input", str(folder), "--output", str(out)])
    printed = capsys.readouterr().out
    assert f"note: {folder / 'a.json'}: imageHeight/imageWidth say 30x20, but a.png is 60x40: the image's size is used" in printed
    assert f"skipped: {folder / 't.json'}: {folder / 't.jpg'}: cannot be read as an image (image file is truncated" in printed
    coco = json.loads(out.read_text())
    assert coco["images"] == [{"id": 1, "file_name": "a.png", "height": 40, "width": 60}]
    assert coco["annotations"][0]["area"] == 21 * 17  # the object the 30x20 canvas would have cut away
    # autolabel: the truncated image is a logged skip with --skip-bad and a one-line error without it
    boxes = {"images": [{"id": 1, "file_name": "t.jpg", "height": 40, "width": 60},
                        {"id": 2, "file_name": "a.png", "height": 40, "width": 60}],
             "annotations": [{"id": k, "image_id": k, "category_id": 1, "bbox": [35, 22, 20, 16], "iscrowd": 0}
                             for k in (1, 2)], "categories": [{"id": 1, "name": "cat"}]}
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    args = ["autolabel", "--input", str(tmp_path / "boxes.json"), "--image-root", str(folder), "--backend", "box",
            "--workers", "1", "--output", str(tmp_path / "auto.json")]
    with pytest.raises(SystemExit, match=r"error: .*boxes.json: image id 1: .*t.jpg: cannot be read as an image "
                                         r"\(image file is truncated"):
        cli_main(args)
    with caplog.at_level("WARNING"):
        cli_main(args + ["--skip-bad"])
    assert "t.jpg: cannot be read as an image (image file is truncated" in caplog.text
    assert [a["image_id"] for a in json.loads((tmp_path / "auto.json").read_text())["annotations"]] == [2]


# ---- one line instead of a traceback ------------------------------------------------------------------

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(*args, timeout=300):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "wsis_d2.cli", "train", *map(str, args)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONPATH=REPO))


def _tiny_train_opts(root, out, iters=1, **extra):
    opts = {"WSIS.SHAPES_ROOT": root, "OUTPUT_DIR": out, "SOLVER.MAX_ITER": iters, "SOLVER.IMS_PER_BATCH": 2,
            "SOLVER.WARMUP_ITERS": 1, "SOLVER.CHECKPOINT_PERIOD": 1, "DATALOADER.NUM_WORKERS": 0,
            "INPUT.MIN_SIZE_TRAIN": "(64,)", "INPUT.MIN_SIZE_TEST": 64, "DATASETS.TEST": "()",
            "WSIS.VIS_NUM_IMAGES": 0}
    opts.update(extra)
    return [str(v) for kv in opts.items() for v in kv]


CONDINST = os.path.join(REPO, "configs", "CondInst", "R18_shapes.yaml")


@pytest.fixture
def two_image_shapes(tiny_shapes, tmp_path):
    """A copy of tiny shapes whose training view holds two images, the first a truncated file."""
    import shutil

    root = tmp_path / "shapes"
    shutil.copytree(tiny_shapes["root"], root)
    train = root / "annotations" / "train_full.json"
    coco = json.loads(train.read_text())
    coco["images"] = coco["images"][:2]
    keep = {img["id"] for img in coco["images"]}
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in keep]
    train.write_text(json.dumps(coco))
    bad = root / coco["images"][0]["file_name"]
    bad.write_bytes(bad.read_bytes()[:300])
    return root, bad


def test_a_corrupt_training_image_is_named_in_one_line_or_skipped_when_asked(two_image_shapes, tmp_path):
    root, bad = two_image_shapes
    # in a DataLoader worker process: its traceback is not shown, the file is named
    proc = _train("--config-file", CONDINST, *_tiny_train_opts(root, tmp_path / "a", **{"DATALOADER.NUM_WORKERS": 1}))
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {bad}: cannot be used as an image (OSError: image file is truncated"), last
    assert last.endswith("or pass --skip-bad (WSIS.SKIP_BAD_IMAGES True) to train on the other images")
    assert "Traceback" not in proc.stderr + proc.stdout and f"Stopped: {last[len('error: '):]}" in proc.stdout
    proc = _train("--config-file", CONDINST, "--skip-bad", *_tiny_train_opts(root, tmp_path / "b", 2))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"skipped: {bad}: cannot be used as an image (OSError: image file is truncated" in proc.stdout
    assert (tmp_path / "b" / "model_final.pth").is_file()


@pytest.fixture(scope="module")
def two_checkpoints(tiny_shapes, tmp_path_factory):
    """A 2-iteration training of tiny shapes, checkpointed at each iteration (in this process)."""
    from wsis_d2.engine.trainer import Trainer

    from .conftest import small_config

    out = tmp_path_factory.mktemp("ckpt")
    cfg = small_config(output_dir=out, SOLVER__CHECKPOINT_PERIOD="1", DATASETS__TEST="()", INPUT__MIN_SIZE_TRAIN="(64,)")
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    return cfg, out


def test_a_truncated_last_checkpoint_falls_back_to_the_previous_one_and_saves_are_atomic(
        two_checkpoints, monkeypatch, caplog):
    import shutil

    import torch

    from wsis_d2.engine.trainer import Trainer

    cfg, out = two_checkpoints
    run = out.parent / (out.name + "_truncated")
    shutil.copytree(out, run)
    cfg = cfg.clone()
    cfg.OUTPUT_DIR, cfg.SOLVER.MAX_ITER = str(run), 3
    last = run / (run / "last_checkpoint").read_text().strip()
    last.write_bytes(last.read_bytes()[:4096])  # cut short, as by a full disk
    trainer = Trainer(cfg)
    with caplog.at_level("WARNING"):
        trainer.resume_or_load(resume=True)
    assert trainer.start_iter == 2  # model_0000001.pth: iteration 1 done
    assert (f"{last}: cannot be read as a checkpoint (RuntimeError: PytorchStreamReader failed" in caplog.text
            and f"resumed from the newest readable checkpoint {run / 'model_0000001.pth'} instead" in caplog.text)
    # a save killed half-way (torch.save stops after some bytes) leaves the previous files as they were
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.name != "log.txt"}

    def killed(data, f):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        trainer.checkpointer.save("model_0000001")
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.name not in ("log.txt", "model_0000001.pth.tmp")}
    assert after == before and (run / "last_checkpoint").read_text() == last.name


@pytest.mark.parametrize("key, value, message", [
    ("SOLVER.IMS_PER_BATCH", "0", r"error: SOLVER.IMS_PER_BATCH is 0; it must lie in \[1, inf\)"),
    ("INPUT.MIN_SIZE_TRAIN", "(-64,)", r"error: INPUT.MIN_SIZE_TRAIN is \(-64,\); it must hold sizes > 0"),
    ("SOLVER.IMS_PER_BATCH", "3", r"error: SOLVER.IMS_PER_BATCH 3 is the batch of all 2 processes together"),
])
def test_config_values_that_cannot_train_stop_before_training_in_one_line(tiny_shapes, tmp_path, key, value, message):
    with pytest.raises(SystemExit, match=message):
        cli_main(["train", "--config-file", CONDINST, "--num-gpus", "2",
                  *_tiny_train_opts(tiny_shapes["root"], tmp_path, **{key: value})])
    assert not (tmp_path / "last_checkpoint").exists()


def test_an_empty_annotations_list_stops_before_training_in_one_line(tiny_shapes, tmp_path):
    import shutil

    root = tmp_path / "shapes"
    shutil.copytree(tiny_shapes["root"], root)
    train = root / "annotations" / "train_full.json"
    train.write_text(json.dumps(dict(json.loads(train.read_text()), annotations=[])))
    with pytest.raises(SystemExit, match=rf"error: DATASETS.TRAIN shapes_full \({train}\): no image with an annotation "
                                         r"to train from \(No valid data found in shapes_full.\); its 'annotations' "
                                         "list is empty"):
        cli_main(["train", "--config-file", CONDINST, *_tiny_train_opts(root, tmp_path / "out")])


def test_a_check_failing_in_every_worker_process_is_one_line(tiny_shapes, tmp_path):
    import shutil

    root = tmp_path / "shapes"
    shutil.copytree(tiny_shapes["root"], root)
    train = root / "annotations" / "train_full.json"
    train.write_text(json.dumps(dict(json.loads(train.read_text()), annotations=[])))
    proc = _train("--config-file", CONDINST, "--num-gpus", 2, *_tiny_train_opts(root, tmp_path / "out"))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: DATASETS.TRAIN shapes_full ({train}): no image with an annotation to train from (No valid data "
        "found in shapes_full.); its 'annotations' list is empty or holds only iscrowd objects")
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


# ---- scale and newer detectron2 -----------------------------------------------------------------------

def test_grabcut_on_a_6000x4000_photo_works_at_a_bounded_resolution_and_reports_per_image_time(tmp_path, capsys):
    import time

    import pycocotools.mask as mask_util

    rng = np.random.default_rng(0)
    image = cv2.resize(rng.integers(40, 170, (400, 600, 3), dtype=np.uint8), (6000, 4000),
                       interpolation=cv2.INTER_LINEAR)
    cv2.circle(image, (3000, 2000), 1200, (30, 160, 230), -1)
    cv2.imwrite(str(tmp_path / "big.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    coco = {"images": [{"id": 1, "file_name": "big.jpg", "height": 4000, "width": 6000}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1780, 780, 2440, 2440], "iscrowd": 0}],
            "categories": [{"id": 1, "name": "disc"}]}
    (tmp_path / "boxes.json").write_text(json.dumps(coco))
    start = time.perf_counter()
    cli_main(["autolabel", "--input", str(tmp_path / "boxes.json"), "--image-root", str(tmp_path), "--workers", "1"])
    assert time.perf_counter() - start < 20  # 40 s at full resolution on a quiet 2-core machine
    printed = capsys.readouterr().out
    assert "per image" in printed and "s for big.jpg)" in printed
    out = json.loads((tmp_path / "boxes_grabcut.json").read_text())
    disc = np.zeros((4000, 6000), np.uint8)
    cv2.circle(disc, (3000, 2000), 1200, 1, -1)
    mask = mask_util.decode(out["annotations"][0]["segmentation"]).astype(bool)
    assert (mask & (disc > 0)).sum() / (mask | (disc > 0)).sum() > 0.98
    assert out["info"]["autolabel"]["slowest_image"] == "big.jpg"


def _as_detectron2_main(monkeypatch):
    """detectron2 main's (02b5c4e) behaviours that v0.6 lacks, on the installed v0.6: ``_load_file``
    asserts it runs inside ``load``, and ``DefaultTrainer`` saves and requires ``_trainer``."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.engine import DefaultTrainer, TrainerBase

    load, load_file = DetectionCheckpointer.load, DetectionCheckpointer._load_file

    def main_load(self, *args, **kwargs):
        self._inside_load = True
        try:
            return load(self, *args, **kwargs)
        finally:
            self._inside_load = False

    def main_load_file(self, filename):
        assert getattr(self, "_inside_load", False), "`_load_file` must be called inside `load`"
        return load_file(self, filename)

    def main_state_dict(self):
        return dict(TrainerBase.state_dict(self), _trainer=self._trainer.state_dict())

    def main_load_state_dict(self, state_dict):
        TrainerBase.load_state_dict(self, state_dict)
        self._trainer.load_state_dict(state_dict["_trainer"])

    monkeypatch.setattr(DetectionCheckpointer, "load", main_load)
    monkeypatch.setattr(DetectionCheckpointer, "_load_file", main_load_file)
    monkeypatch.setattr(DefaultTrainer, "state_dict", main_state_dict)
    monkeypatch.setattr(DefaultTrainer, "load_state_dict", main_load_state_dict)


def test_model_backend_loads_weights_only_through_load_as_detectron2_main_requires(two_checkpoints, monkeypatch):
    from wsis_d2.autolabel import ModelBackend
    from wsis_d2.model_zoo import get_config_file

    _as_detectron2_main(monkeypatch)
    _, out = two_checkpoints
    backend = ModelBackend(get_config_file("CondInst/R18_shapes.yaml"), str(out / "model_final.pth"),
                           opts=["MODEL.DEVICE", "cpu"])
    assert backend.predictor.model is not None


def test_resume_of_a_checkpoint_written_under_detectron2_v0_6_works_on_main(two_checkpoints, monkeypatch, caplog):
    import torch

    from wsis_d2.engine.trainer import Trainer

    cfg, out = two_checkpoints
    run = out.parent / (out.name + "_v06")
    run.mkdir()
    checkpoint = torch.load(out / "model_0000001.pth", map_location="cpu", weights_only=False)
    del checkpoint["trainer"]["_trainer"]  # what v0.6's DefaultTrainer saves: iteration, hooks, no optimizer
    torch.save(checkpoint, run / "model_0000001.pth")
    (run / "last_checkpoint").write_text("model_0000001.pth")
    _as_detectron2_main(monkeypatch)
    cfg = cfg.clone()
    cfg.OUTPUT_DIR, cfg.SOLVER.MAX_ITER = str(run), 3
    trainer = Trainer(cfg)
    with caplog.at_level("WARNING"):
        trainer.resume_or_load(resume=True)
    assert trainer.start_iter == 2
    assert "holds no optimizer state (written under detectron2 v0.6)" in caplog.text
    # and a checkpoint written now carries the optimizer for both versions
    trainer.checkpointer.save("model_again")
    saved = torch.load(run / "model_again.pth", map_location="cpu", weights_only=False)
    assert "optimizer" in saved["trainer"]["_trainer"]


# ---- cases beyond the issue's, met while trying it as a new user ---------------------------------------

def test_cut_short_weights_and_an_empty_last_checkpoint_are_one_line(two_checkpoints, tiny_shapes, tmp_path):
    _, out = two_checkpoints
    cut = tmp_path / "cut.pth"
    cut.write_bytes((out / "model_final.pth").read_bytes()[:5000])
    with pytest.raises(SystemExit, match=rf"error: MODEL.WEIGHTS: {cut}: cannot be read as a checkpoint \("):
        cli_main(["train", "--config-file", CONDINST, "--eval-only", "MODEL.WEIGHTS", str(cut),
                  *_tiny_train_opts(tiny_shapes["root"], tmp_path / "eval")])
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last_checkpoint").write_text("")
    with pytest.raises(SystemExit, match=rf"error: --resume: no checkpoint in {tmp_path / 'run'} can be read "
                                         rf"\({tmp_path / 'run' / 'last_checkpoint'} is empty\)"):
        cli_main(["train", "--config-file", CONDINST, "--resume", *_tiny_train_opts(tiny_shapes["root"], tmp_path / "run")])

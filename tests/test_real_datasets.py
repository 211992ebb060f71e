"""``wsis-d2 prepare pennfudan|balloon`` on tiny fake extracted folders, the registered names, and
2 training iterations of the MV2 configs on them."""
import glob
import json
import os

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from wsis_d2.cli import main
from wsis_d2.data.checks import AnnotationError
from wsis_d2.data.real import REAL_VIEWS, register_real_dataset
from wsis_d2.data.register import derived_view_file
from wsis_d2.data.views import make_view
from wsis_d2.utils.paths import write_json_atomically


def _photo(path, height, width, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(path)


@pytest.fixture(scope="module")
def fake_pennfudan(tmp_path_factory):
    """PennFudanPed/ with 8 photos (80 x 96) and instance-id masks of 1 or 2 people each."""
    root = tmp_path_factory.mktemp("download") / "PennFudanPed"
    (root / "PNGImages").mkdir(parents=True)
    (root / "PedMasks").mkdir()
    (root / "Annotation").mkdir()
    for i in range(8):
        stem = f"FudanPed{i + 1:05d}"
        _photo(root / "PNGImages" / f"{stem}.png", 80, 96, i)
        ids = np.zeros((80, 96), np.uint8)
        ids[10:70, 8:30] = 1
        if i % 2:
            ids[20:75, 50:80] = 2
        Image.fromarray(ids).save(root / "PedMasks" / f"{stem}_mask.png")
    return root


@pytest.fixture(scope="module")
def fake_balloon(tmp_path_factory):
    """balloon/{train,val}/ with 3 and 2 photos and their via_region_data.json."""
    root = tmp_path_factory.mktemp("download") / "balloon"
    for split, count in (("train", 3), ("val", 2)):
        (root / split).mkdir(parents=True)
        data = {}
        for i in range(count):
            name = f"{split}{i}.jpg"
            _photo(root / split / name, 64, 80, i)
            regions = {"0": {"shape_attributes": {"name": "polygon", "all_points_x": [10, 30, 30, 10],
                                                  "all_points_y": [10, 10, 40, 40]}, "region_attributes": {}},
                       "1": {"shape_attributes": {"name": "polygon", "all_points_x": [50, 70, 60],
                                                  "all_points_y": [20, 20, 50]}, "region_attributes": {}}}
            data[f"{name}1"] = {"fileref": "", "size": 1, "filename": name, "base64_img_data": "",
                                "file_attributes": {}, "regions": regions}
        (root / split / "via_region_data.json").write_text(json.dumps(data))
    return root


@pytest.fixture(scope="module")
def prepared(fake_pennfudan, fake_balloon, tmp_path_factory):
    out = tmp_path_factory.mktemp("datasets")
    # the folder holding PennFudanPed/ is accepted too
    main(["prepare", "pennfudan", "--root", str(fake_pennfudan.parent), "--output", str(out / "pennfudan"),
          "--val-size", "3"])
    main(["prepare", "balloon", "--root", str(fake_balloon), "--output", str(out / "balloon")])
    register_real_dataset("pennfudan", str(out / "pennfudan"))
    register_real_dataset("balloon", str(out / "balloon"))
    return out


def _load(path):
    return json.loads(path.read_text())


def test_prepare_writes_coco_views_and_images(prepared):
    ann = prepared / "pennfudan" / "annotations"
    train, val = _load(ann / "train.json"), _load(ann / "val.json")
    assert (len(train["images"]), len(val["images"])) == (5, 3)
    assert len(train["annotations"]) + len(val["annotations"]) == 12  # 8 photos, every other one with 2 people
    assert train["categories"] == [{"id": 1, "name": "person"}]
    assert not {im["file_name"] for im in train["images"]} & {im["file_name"] for im in val["images"]}
    for split, data in (("train", train), ("val", val)):
        assert sorted(os.listdir(prepared / "pennfudan" / split)) == sorted(im["file_name"] for im in data["images"])
    for view in REAL_VIEWS:
        assert _load(ann / f"train_{view}.json")["info"]["supervision"] == view
    assert not any("segmentation" in a for a in _load(ann / "train_box.json")["annotations"])
    assert all(len(a["point_coords"]) == 10 for a in _load(ann / "train_point.json")["annotations"])

    balloon = prepared / "balloon" / "annotations"
    assert [len(_load(balloon / f"{s}.json")["images"]) for s in ("train", "val")] == [3, 2]
    assert [len(_load(balloon / f"{s}.json")["annotations"]) for s in ("train", "val")] == [6, 4]  # its own split


def test_the_pennfudan_split_is_fixed(prepared, fake_pennfudan, tmp_path, capsys):
    again = tmp_path / "again"
    main(["prepare", "pennfudan", "--root", str(fake_pennfudan), "--output", str(again), "--val-size", "3"])
    assert "pennfudan_val               3 images" in capsys.readouterr().out
    names = [[im["file_name"] for im in _load(folder / "annotations" / "val.json")["images"]]
             for folder in (prepared / "pennfudan", again)]
    assert names[0] == names[1]
    with pytest.raises(SystemExit, match="train.json exists .* pass --overwrite"):
        main(["prepare", "pennfudan", "--root", str(fake_pennfudan), "--output", str(again), "--val-size", "3"])
    # a mixed view made from this train.json (seed 1: prepare's views' seed, recorded in train.json)
    main(["prepare", "pennfudan", "--root", str(fake_pennfudan), "--output", str(again), "--val-size", "3",
          "--overwrite", "--seed", "1"])
    assert _load(again / "annotations" / "train.json")["info"]["view_seed"] == 1
    mixed = derived_view_file(str(again / "annotations" / "train.json"), "mixed_50_0")
    train = _load(again / "annotations" / "train.json")
    assert json.loads(open(mixed).read())["annotations"] == make_view(train, "mixed_50_0", seed=1)["annotations"] != \
        make_view(train, "mixed_50_0", seed=0)["annotations"]
    (again / "annotations" / "train_pseudo_grabcut.json").write_text("{}")
    main(["prepare", "pennfudan", "--root", str(fake_pennfudan), "--output", str(again), "--val-size", "2",
          "--overwrite"])
    assert len(os.listdir(again / "val")) == 2
    # made from the old split: removed, to be made again from the new train.json on first use
    assert not os.path.exists(mixed) and not (again / "annotations" / "train_pseudo_grabcut.json").exists()


def test_a_json_write_that_fails_leaves_no_file(tmp_path):
    with pytest.raises(TypeError):
        write_json_atomically(str(tmp_path / "x.json"), {"x": object()})
    assert os.listdir(tmp_path) == []  # neither the file nor its temporary
    write_json_atomically(str(tmp_path / "x.json"), {"x": [1]})
    assert _load(tmp_path / "x.json") == {"x": [1]} and os.listdir(tmp_path) == ["x.json"]


def test_a_wrong_folder_gets_one_line(fake_pennfudan, fake_balloon, tmp_path):
    with pytest.raises(SystemExit) as error:
        main(["prepare", "pennfudan", "--root", str(fake_balloon), "--output", str(tmp_path / "out")])
    message = str(error.value)
    assert "\n" not in message and "not a Penn-Fudan folder (no PNGImages, PedMasks in it)" in message
    assert "https://www.cis.upenn.edu/~jshi/ped_html/" in message
    with pytest.raises(SystemExit, match="not a balloon folder .*balloon_dataset.zip"):
        main(["prepare", "balloon", "--root", str(fake_pennfudan), "--output", str(tmp_path / "out")])
    with pytest.raises(SystemExit, match="overlaps the source folder"):
        main(["prepare", "balloon", "--root", str(fake_balloon), "--output", str(fake_balloon / "prepared")])


def test_registered_names(prepared):
    names = [f"{d}_{s}" for d in ("pennfudan", "balloon") for s in ["train", "val"] + [f"train_{v}" for v in REAL_VIEWS]]
    assert set(names) <= set(DatasetCatalog.list())
    box = DatasetCatalog.get("pennfudan_train_box")
    assert len(box) == 5 and all("segmentation" not in a for d in box for a in d["annotations"])
    val = DatasetCatalog.get("balloon_val")
    assert all("segmentation" in a for d in val for a in d["annotations"])
    assert MetadataCatalog.get("pennfudan_train_semi_10").thing_classes == ["person"]
    assert MetadataCatalog.get("balloon_train").image_root == str(prepared / "balloon" / "train")
    # per-object mixes are made from train.json on first use, beside it
    mixed_file = prepared / "pennfudan" / "annotations" / "train_mixed_50_0.json"
    assert "pennfudan_train_mixed_50_0" in DatasetCatalog.list() and not mixed_file.exists()
    mixed = [a for d in DatasetCatalog.get("pennfudan_train_mixed_50_0") for a in d["annotations"]]
    assert mixed_file.exists() and len(mixed) == 8
    assert 0 < sum("segmentation" in a for a in mixed) < len(mixed)
    umask = os.umask(0)
    os.umask(umask)  # readable as a file written with open(): not the temporary file's 0600
    assert mixed_file.stat().st_mode & 0o777 == 0o666 & ~umask
    assert not [p.name for p in mixed_file.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_dataset_not_prepared_says_how(tmp_path):
    from wsis_d2.autolabel import register_real_pseudo

    register_real_dataset("balloon", str(tmp_path / "nowhere"))
    register_real_pseudo({"balloon": str(tmp_path / "nowhere")})
    try:
        for name in ("balloon_train_box", "balloon_train_pseudo_grabcut"):
            with pytest.raises(AnnotationError, match="train_box.json: not found .*wsis-d2 prepare balloon --root"):
                DatasetCatalog.get(name)
    finally:
        register_real_dataset("balloon")
        register_real_pseudo()


@pytest.mark.parametrize("config", ["CondInst/MV2_pennfudan.yaml", "MaskRCNN/MV2_pennfudan.yaml"])
def test_mv2_configs_train_two_iterations_on_pennfudan(config, prepared, tmp_path, monkeypatch):
    """A shipped MV2 config on the prepared (fake) pennfudan_train, ImageNet weights when installed."""
    from detectron2.utils.file_io import PathManager

    from wsis_d2.config import build_config
    from wsis_d2.engine.trainer import Trainer
    from wsis_d2.model_zoo import get_config_file

    register_real_dataset("pennfudan", str(prepared / "pennfudan"))
    monkeypatch.setenv("WSIS_CACHE", str(tmp_path / "cache"))
    try:
        PathManager.get_local_path("wsis://ImageNetPretrained/MobileNetV2")
        weights = "wsis://ImageNetPretrained/MobileNetV2"
    except ValueError:  # the weights package is not installed
        weights = ""
    cfg = build_config(get_config_file(config), [
        "MODEL.WEIGHTS", weights, "MODEL.DEVICE", "cpu", "OUTPUT_DIR", str(tmp_path), "SOLVER.MAX_ITER", "2",
        "SOLVER.IMS_PER_BATCH", "2", "SOLVER.WARMUP_ITERS", "1", "DATALOADER.NUM_WORKERS", "0",
        "INPUT.MIN_SIZE_TRAIN", "(96,)", "INPUT.MAX_SIZE_TRAIN", "160", "DATASETS.TEST", "()"])
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    assert not weights or not [n for n in trainer.checkpointer.unloaded_weights if "bottom_up" in n]
    trainer.train()
    assert trainer.iter == 2
    metrics = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert all(np.isfinite(m["total_loss"]) for m in metrics if "total_loss" in m)
    assert os.path.isfile(tmp_path / "model_final.pth")
    assert torch.isfinite(next(trainer.model.parameters())).all()


def test_real_pseudo_views_are_made_from_the_box_view_on_first_use(prepared):
    from wsis_d2.autolabel import register_real_pseudo

    root = prepared / "pennfudan"
    made = root / "annotations" / "train_pseudo_box.json"
    register_real_pseudo({"pennfudan": str(root)})
    try:
        assert not made.exists()
        dicts = DatasetCatalog.get("pennfudan_train_pseudo_box")
        assert made.exists() and _load(made)["info"]["autolabel"]["source"] == "train_box.json"
        assert len(dicts) == 5 and all("segmentation" in a for d in dicts for a in d["annotations"])
        assert MetadataCatalog.get("pennfudan_train_pseudo_grabcut").supervision == "pseudo_grabcut"
    finally:
        register_real_pseudo()


def _mv2_configs():
    from wsis_d2.model_zoo import get_config_file

    root = os.path.dirname(get_config_file("CondInst/MV2_pennfudan.yaml"))
    return sorted(os.path.relpath(p, os.path.dirname(root))
                  for p in glob.glob(os.path.join(os.path.dirname(root), "*", "*MV2_*.yaml")))


def test_every_real_photo_config_shares_input_batch_and_schedule():
    """The realphoto benchmark compares methods on one input size, batch and schedule: every shipped
    MV2_<dataset> config must keep them, name its dataset's registered sets and the ImageNet weights."""
    from wsis_d2.config import build_config
    from wsis_d2.model_zoo import get_config_file

    configs = _mv2_configs()
    assert len(configs) >= 18, configs
    shared = None
    for config in configs:
        cfg = build_config(get_config_file(config))
        dataset = config.rsplit("MV2_", 1)[1][:-len(".yaml")]
        assert cfg.DATASETS.TRAIN[0].startswith(dataset + "_train") and cfg.DATASETS.TEST == (f"{dataset}_val",), config
        assert cfg.MODEL.WEIGHTS == "wsis://ImageNetPretrained/MobileNetV2" and cfg.INPUT.FORMAT == "RGB", config
        these = (cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TEST, cfg.SOLVER.IMS_PER_BATCH,
                 cfg.SOLVER.MAX_ITER, cfg.SOLVER.STEPS, cfg.SOLVER.WARMUP_ITERS)
        assert shared is None or these == shared, f"{config}: {these} vs {shared}"
        shared = these

"""Config values and datasets that cannot train or evaluate as asked are refused before training."""
import json
import logging
import os

import pytest
from detectron2.config import CfgNode

from wsis_d2.config import ConfigError
from wsis_d2.config.ranges import check_increasing_pair, check_ranges
from wsis_d2.data import register_wsis_coco_instances
from wsis_d2.engine import Trainer
from wsis_d2.evaluation import build_coco_evaluator

from .conftest import small_config


def test_check_ranges_open_and_closed_bounds():
    cfg = CfgNode({"A": CfgNode({"ZERO": 0.0, "ONE": 1, "PAIR": (0.7, 0.8)})})
    check_ranges(cfg, {"ZERO": "[0, 1)", "ONE": "(0, 1]"}, prefix="A.")
    with pytest.raises(ConfigError, match=r"A.ZERO is 0.0; it must lie in \(0, inf\)"):
        check_ranges(cfg, {"ZERO": "(0, inf)"}, prefix="A.")
    with pytest.raises(ConfigError, match=r"A.ONE is 1; it must lie in \[0, 1\)"):
        check_ranges(cfg, {"A.ONE": "[0, 1)"})
    check_increasing_pair(cfg, "A.PAIR")
    for bad in [(0.7,), (0.9, 0.1), (0.5, 1.5)]:
        cfg.A.PAIR = bad
        with pytest.raises(ConfigError, match="A.PAIR"):
            check_increasing_pair(cfg, "A.PAIR")


@pytest.mark.parametrize("config,key,value", [
    ("BoxTeacher/R18_shapes.yaml", "MODEL.TEACHER.MOMENTUM", "-0.5"),
    ("BoxTeacher/R18_shapes.yaml", "MODEL.TEACHER.IOU_THRESH", "1.5"),
    ("BoxTeacher/R18_shapes.yaml", "MODEL.BOX_TEACHER.START_ITER", "-5"),
    ("SIM/R18_shapes.yaml", "MODEL.SIM.NUM_PROTOTYPES", "0"),
    ("SIM/R18_shapes.yaml", "MODEL.SIM.GUMBEL_TAU", "0.0"),
    ("SIM/R18_shapes.yaml", "MODEL.SIM.COPY_PASTE.PROB", "2.0"),
    ("SIM/R18_shapes.yaml", "MODEL.SIM.COPY_PASTE.MAX_OBJECTS", "0"),
    ("SIM/R18_shapes.yaml", "MODEL.SIM.FG_THRESH_RANGE", "(0.7,)"),
    ("SIM/R18_shapes.yaml", "MODEL.SIM.FG_THRESH_RANGE", "(0.9, 0.1)"),
])
def test_teacher_student_values_out_of_range_are_refused(tiny_shapes, config, key, value):
    cfg = small_config(config, train="tiny_box")
    cfg.merge_from_list([key, value])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        Trainer.build_model(cfg)


def test_a_schedule_that_ends_before_the_teacher_starts_is_reported(tiny_shapes, tmp_path, caplog):
    cfg = small_config("BoxTeacher/R18_shapes.yaml", train="tiny_box", output_dir=tmp_path)  # START_ITER 500
    with caplog.at_level(logging.WARNING):
        Trainer(cfg)
    assert "BoxTeacher starts its pseudo labels at iteration 500 (START_ITER), not before SOLVER.MAX_ITER 2" in caplog.text
    caplog.clear()
    cfg = small_config("SIM/R18_shapes.yaml", train="tiny_box", output_dir=tmp_path, MODEL__SIM__START_ITER="0")
    with caplog.at_level(logging.WARNING):
        Trainer(cfg)
    assert "START_ITER" not in caplog.text


def _register_variant(tiny_shapes, tmp_path, name, view, change):
    """A copy of one of the tiny shapes files, edited by ``change(coco)``, registered as ``name``."""
    root = tiny_shapes["root"]
    coco = json.loads(open(tiny_shapes["files"][view]).read())
    change(coco)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(coco))
    register_wsis_coco_instances(name, {}, str(path), root, replace=True)
    return name


def test_class_count_must_cover_the_training_data(tiny_shapes, caplog):
    cfg = small_config("BoxInst/R18_shapes.yaml", train="tiny_box", MODEL__FCOS__NUM_CLASSES="3")
    with pytest.raises(ConfigError, match="MODEL.FCOS.NUM_CLASSES is 3, but DATASETS.TRAIN tiny_box has 6 classes"):
        Trainer.build_train_loader(cfg)
    cfg = small_config("MaskRCNN/R18_shapes.yaml", MODEL__ROI_HEADS__NUM_CLASSES="5")
    with pytest.raises(ConfigError, match="MODEL.ROI_HEADS.NUM_CLASSES is 5"):
        Trainer.build_train_loader(cfg)
    cfg = small_config("BoxInst/R18_shapes.yaml", train="tiny_box", MODEL__FCOS__NUM_CLASSES="80")
    with caplog.at_level(logging.WARNING):
        Trainer.build_train_loader(cfg)
    assert "MODEL.FCOS.NUM_CLASSES is 80, but DATASETS.TRAIN tiny_box has only 6 classes" in caplog.text


def test_test_set_must_name_the_training_classes(tiny_shapes, tmp_path):
    def swap_two_names(coco):
        coco["categories"][0]["name"], coco["categories"][1]["name"] = (coco["categories"][1]["name"],
                                                                        coco["categories"][0]["name"])

    test = _register_variant(tiny_shapes, tmp_path, "tiny_val_swapped", "val", swap_two_names)
    cfg = small_config("BoxInst/R18_shapes.yaml", train="tiny_box", DATASETS__TEST=f"('{test}',)")
    with pytest.raises(ConfigError, match="DATASETS.TEST tiny_val_swapped has the classes"):
        Trainer.build_train_loader(cfg)


def test_box_only_test_set_gets_box_ap_and_a_partly_masked_one_is_refused(tiny_shapes, tmp_path):
    def strip_masks(coco):
        for a in coco["annotations"]:
            a.pop("segmentation", None)

    def strip_first_mask(coco):
        coco["annotations"][0].pop("segmentation")

    boxes = _register_variant(tiny_shapes, tmp_path, "tiny_val_boxes", "val", strip_masks)
    cfg = small_config("BoxInst/R18_shapes.yaml", train="tiny_box", DATASETS__TEST=f"('{boxes}',)")
    Trainer.build_train_loader(cfg)  # accepted before training
    assert build_coco_evaluator(cfg, boxes, str(tmp_path / "eval"))._tasks == ("bbox",)
    assert build_coco_evaluator(cfg, "tiny_val", str(tmp_path / "eval"))._tasks == ("bbox", "segm")

    partly = _register_variant(tiny_shapes, tmp_path, "tiny_val_partly", "val", strip_first_mask)
    cfg = small_config("BoxInst/R18_shapes.yaml", train="tiny_box", DATASETS__TEST=f"('{partly}',)")
    with pytest.raises(ConfigError, match=r"DATASETS.TEST tiny_val_partly: 1 of its \d+ annotations have no "
                                          r"'segmentation' \(e.g. one on image .*val/000000.png, image_id 1\)"):
        Trainer.build_train_loader(cfg)
    with pytest.raises(ConfigError, match="tiny_val_partly"):
        build_coco_evaluator(cfg, partly, os.fspath(tmp_path / "eval"))

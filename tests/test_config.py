from pathlib import Path

import pytest
from detectron2.config import get_cfg

from wsis_d2.config import add_wsis_config
from wsis_d2.model_zoo import CONFIG_ROOT, get_config, get_config_file, list_configs

REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_defaults_follow_the_papers():
    cfg = add_wsis_config(get_cfg())
    assert cfg.MODEL.FCOS.SIZES_OF_INTEREST == [64, 128, 256, 512]
    assert cfg.MODEL.FCOS.POS_RADIUS == 1.5 and cfg.MODEL.FCOS.NMS_TH == 0.6
    assert cfg.MODEL.CONDINST.MASK_OUT_STRIDE == 4 and cfg.MODEL.CONDINST.MAX_PROPOSALS == 500
    assert cfg.MODEL.CONDINST.MASK_HEAD.CHANNELS == 8 and cfg.MODEL.CONDINST.MASK_HEAD.NUM_LAYERS == 3
    assert cfg.MODEL.CONDINST.MASK_BRANCH.OUT_CHANNELS == 8


def test_add_wsis_config_is_idempotent():
    cfg = add_wsis_config(get_cfg())
    cfg.MODEL.FCOS.NUM_CLASSES = 3
    add_wsis_config(cfg)
    assert cfg.MODEL.FCOS.NUM_CLASSES == 3


def test_packaged_configs_are_the_repo_configs():
    assert CONFIG_ROOT.resolve() == REPO_CONFIGS.resolve()
    shipped = set(list_configs())
    on_disk = {str(p.relative_to(REPO_CONFIGS)) for p in REPO_CONFIGS.glob("*/*.yaml")}
    assert shipped == on_disk and len(shipped) >= 8


@pytest.mark.parametrize("name", list_configs())
def test_every_config_merges(name):
    cfg = get_config(name)
    from detectron2.modeling import META_ARCH_REGISTRY

    assert cfg.MODEL.META_ARCHITECTURE in META_ARCH_REGISTRY
    if "shapes" in name:
        assert cfg.MODEL.WEIGHTS == "", "shapes configs must not download weights"
        assert cfg.DATASETS.TEST == ("shapes_val",)


def test_unknown_config_lists_the_available_ones():
    with pytest.raises(FileNotFoundError, match="CondInst/R18_shapes.yaml"):
        get_config_file("CondInst/nope.yaml")

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


def test_config_mistakes_name_the_file_and_key(tmp_path):
    from wsis_d2.config import ConfigError
    from wsis_d2.config import build_config

    base = get_config_file("CondInst/R18_shapes.yaml")
    typo = tmp_path / "typo.yaml"
    typo.write_text(f'_BASE_: "{base}"\nMODEL:\n  CONDINST:\n    MASK_LOSSSES: []\n')
    with pytest.raises(ConfigError, match=r"typo.yaml: Non-existent config key: MODEL.CONDINST.MASK_LOSSSES"):
        build_config(str(typo))
    with pytest.raises(ConfigError, match=r"nope.yaml: no such config file"):
        build_config(str(tmp_path / "nope.yaml"))
    orphan = tmp_path / "orphan.yaml"
    orphan.write_text('_BASE_: "gone.yaml"\n')
    with pytest.raises(ConfigError, match=r"orphan.yaml: .*gone.yaml"):
        build_config(str(orphan))
    with pytest.raises(ConfigError, match=r"override: Type mismatch .* SOLVER.IMS_PER_BATCH"):
        build_config(base, ["SOLVER.IMS_PER_BATCH", "abc"])
    with pytest.raises(ConfigError, match=r"KEY VALUE pairs; got 1"):
        build_config(base, ["SOLVER.IMS_PER_BATCH"])
    with pytest.raises(ConfigError, match=r"override: Non-existent key: FOO.BAR"):
        build_config(base, ["FOO.BAR", "1"])
    assert build_config(base, ["SOLVER.IMS_PER_BATCH", "4"]).SOLVER.IMS_PER_BATCH == 4


def test_moved_and_removed_keys_name_their_new_home(tmp_path):
    from wsis_d2.config import ConfigError
    from wsis_d2.config.moved_keys import MOVED_KEYS, REMOVED_KEYS
    from wsis_d2.config.ranges import config_value
    from wsis_d2.engine.setup import build_config

    defaults = add_wsis_config(get_cfg())
    for old, new in MOVED_KEYS.items():
        config_value(defaults, new)  # the new home exists
        with pytest.raises(KeyError):
            config_value(defaults, old)  # and the old one is gone
    for old in REMOVED_KEYS:
        with pytest.raises(KeyError):
            config_value(defaults, old)

    base = get_config_file("BoxTeacher/R18_shapes.yaml")
    old = tmp_path / "old.yaml"
    old.write_text(f'_BASE_: "{base}"\nMODEL:\n  BOX_TEACHER:\n    MOMENTUM: 0.9\n')
    with pytest.raises(ConfigError, match=r"old.yaml: MODEL.BOX_TEACHER.MOMENTUM has moved to MODEL.TEACHER.MOMENTUM$"):
        build_config(str(old))
    child = tmp_path / "child.yaml"  # the key sits in a _BASE_: that file is named
    child.write_text('_BASE_: "old.yaml"\n')
    with pytest.raises(ConfigError, match=r"old.yaml: MODEL.BOX_TEACHER.MOMENTUM has moved"):
        build_config(str(child))
    with pytest.raises(ConfigError, match=r"^command-line override: MODEL.SIM.USE_TEACHER_INFERENCE has moved to "
                                          r"MODEL.TEACHER.USE_FOR_INFERENCE$"):
        build_config(base, ["MODEL.SIM.USE_TEACHER_INFERENCE", "False"])
    removed = tmp_path / "removed.yaml"
    removed.write_text(f'_BASE_: "{base}"\nMODEL:\n  BOX_TEACHER:\n    BACKGROUND_COLOR:\n      MODE: ignore\n')
    with pytest.raises(ConfigError, match=r"removed.yaml: MODEL.BOX_TEACHER.BACKGROUND_COLOR.MODE was removed: "
                                          r".*benchmarks/README.md"):
        build_config(str(removed))
    with pytest.raises(ConfigError, match=r"override: MODEL.BOX_TEACHER.CONFIDENCE_PIXEL_WEIGHTS was removed"):
        build_config(base, ["MODEL.BOX_TEACHER.CONFIDENCE_PIXEL_WEIGHTS", "True"])
    assert build_config(base, ["MODEL.TEACHER.MOMENTUM", "0.9"]).MODEL.TEACHER.MOMENTUM == 0.9


def test_runs_without_usable_weights_are_refused(tmp_path, monkeypatch):
    from wsis_d2.config import ConfigError
    from wsis_d2.config import build_config
    from wsis_d2.engine.setup import check_weights

    cfg = build_config(get_config_file("CondInst/R18_shapes.yaml"), ["OUTPUT_DIR", str(tmp_path)])
    check_weights(cfg, eval_only=False, resume=False)  # training from scratch needs none
    with pytest.raises(ConfigError, match="--eval-only needs trained weights"):
        check_weights(cfg, eval_only=True, resume=False)
    with pytest.raises(ConfigError, match="--eval-only needs trained weights"):
        check_weights(cfg, eval_only=True, resume=True)  # no checkpoint to resume from either
    (tmp_path / "last_checkpoint").write_text("model_0000009.pth")
    check_weights(cfg, eval_only=True, resume=True)
    r50 = build_config(get_config_file("CondInst/R50_1x.yaml"))
    with pytest.raises(ConfigError, match="MODEL.WEIGHTS is 'detectron2://ImageNetPretrained"):
        check_weights(r50, eval_only=True, resume=False)  # backbone-only weights would score a random head
    cfg.MODEL.WEIGHTS = str(tmp_path / "model_final.pth")
    with pytest.raises(ConfigError, match=r"MODEL.WEIGHTS: .*model_final.pth: no such file"):
        check_weights(cfg, eval_only=False, resume=False)
    (tmp_path / "model_final.pth").write_bytes(b"")  # cut short (a full disk): refused before anything loads
    with pytest.raises(ConfigError, match=r"MODEL.WEIGHTS: .*model_final.pth: cannot be read as a checkpoint"):
        check_weights(cfg, eval_only=True, resume=False)
    import torch

    torch.save({"model": {}}, tmp_path / "model_final.pth")
    check_weights(cfg, eval_only=True, resume=False)
    # a URL is fetched before anything else loads; one that cannot be is refused with what to do
    cfg.MODEL.WEIGHTS = "http://127.0.0.1:9/R-50.pkl"  # the discard port: nothing answers
    monkeypatch.setenv("FVCORE_CACHE", str(tmp_path / "cache"))  # iopath's download cache, not the user's
    with pytest.raises(ConfigError, match=r"MODEL.WEIGHTS: http://127.0.0.1:9/R-50.pkl cannot be downloaded .*"
                                          "pass MODEL.WEIGHTS path/to/the/file"):
        check_weights(cfg, eval_only=False, resume=False)


def test_train_command_stops_with_one_line_before_any_process_starts(tmp_path):
    from wsis_d2.engine import main

    config = get_config_file("CondInst/R18_shapes.yaml")
    with pytest.raises(SystemExit, match=r"^error: --eval-only needs trained weights"):
        main(["--config-file", config, "--eval-only", "OUTPUT_DIR", str(tmp_path)])
    with pytest.raises(SystemExit, match=r"^error: .*nope.yaml: no such config file"):
        main(["--config-file", str(tmp_path / "nope.yaml")])
    assert not list(tmp_path.iterdir())  # nothing was set up or written

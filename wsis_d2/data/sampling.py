"""Training sampler for mixed supervision: images that hold a drawn mask come up more often.

With masks on one object in ten (``MODEL.MIXED_SUPERVISION``, views ``mixed_<m>_<p>``) most batches
hold no mask at all (Penn-Fudan's ``mixed_10_0``: 26 of 120 images, a batch of 4 without one 38 % of
the time), so the dice loss trains on a fraction of the iterations. ``DATALOADER.MASKED_IMAGE_REPEAT``
repeats those images within each epoch, through detectron2's
:class:`~detectron2.data.samplers.RepeatFactorTrainingSampler` (its stochastic rounding of
fractional factors, the LVIS repeat-factor sampling of Gupta et al., CVPR 2019, here keyed on the
kind of label rather than on class frequency).
"""
import logging
from typing import Sequence

import torch
from detectron2.data.samplers import RepeatFactorTrainingSampler

from ..config import ConfigError

logger = logging.getLogger(__name__)


def has_drawn_mask(record: dict) -> bool:
    """True when one of the image's non-crowd annotations carries a ``segmentation`` (crowd regions
    are not trained on, as :func:`~wsis_d2.data.config_checks.supervision_counts` counts them)."""
    return any("segmentation" in a and not a.get("iscrowd", 0) for a in record.get("annotations", ()))


def masked_image_repeat_factors(dataset_dicts: Sequence[dict], repeat: float) -> torch.Tensor:
    """Per-image repeat factors: ``repeat`` for an image with a drawn mask, 1 for the others.

    Args:
        dataset_dicts: detectron2 dataset dicts, in the loader's order.
        repeat: how many times as often an image with a mask is sampled (>= 1).

    Returns:
        float32 tensor of shape (len(dataset_dicts),).

    Raises:
        ConfigError: ``repeat`` is below 1, or above 1 while no image has a mask, or every image has
            one (nothing to repeat against).
    """
    if repeat < 1:
        raise ConfigError(f"DATALOADER.MASKED_IMAGE_REPEAT is {repeat}; it must be >= 1 (1 samples every "
                          "image equally often)")
    masked = torch.tensor([has_drawn_mask(d) for d in dataset_dicts], dtype=torch.bool)
    if repeat > 1 and not (0 < int(masked.sum()) < len(masked)):
        which = "no" if not masked.any() else "every"
        raise ConfigError(f"DATALOADER.MASKED_IMAGE_REPEAT is {repeat}, but {which} training image has a drawn "
                          "mask, so there is nothing to sample more often: set it to 1, or train on a view "
                          "where only some objects keep their masks (e.g. mixed_10_0)")
    return torch.where(masked, torch.tensor(float(repeat)), torch.tensor(1.0))


def build_masked_image_sampler(cfg, dataset_dicts: Sequence[dict]):
    """The training sampler ``DATALOADER.MASKED_IMAGE_REPEAT`` asks for, or None (detectron2 builds
    ``DATALOADER.SAMPLER_TRAIN`` as usual) when it is 1.

    Raises:
        ConfigError: the repeat is combined with another ``DATALOADER.SAMPLER_TRAIN`` than
            ``TrainingSampler`` (two samplers cannot both decide), or see
            :func:`masked_image_repeat_factors`.
    """
    repeat = float(cfg.DATALOADER.MASKED_IMAGE_REPEAT)
    if repeat == 1:  # (below 1 is refused with the other ranges, before the data loads)
        return None
    if cfg.DATALOADER.SAMPLER_TRAIN != "TrainingSampler":
        raise ConfigError(f"DATALOADER.MASKED_IMAGE_REPEAT {repeat} chooses the training sampler itself; it "
                          f"cannot be combined with DATALOADER.SAMPLER_TRAIN {cfg.DATALOADER.SAMPLER_TRAIN!r} "
                          "(set that to TrainingSampler, or the repeat to 1)")
    factors = masked_image_repeat_factors(dataset_dicts, repeat)
    n = int((factors > 1).sum())
    logger.info(f"Sampling the {n} of {len(factors)} training images that hold a drawn mask {repeat:g} times "
                f"as often (DATALOADER.MASKED_IMAGE_REPEAT): {n * repeat / (n * repeat + len(factors) - n):.0%} "
                "of the images drawn")
    return RepeatFactorTrainingSampler(factors)  # seeded as detectron2's TrainingSampler (shared seed)

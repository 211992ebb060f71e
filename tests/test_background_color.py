"""The background-colour check of PseudoMaskLoss (cells inside a box coloured like the band around it)."""
from types import SimpleNamespace

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.structures import Boxes, Instances

from wsis_d2.config import add_wsis_config
from wsis_d2.modeling.losses import ImageFrameInputs, PseudoAffinityLoss, PseudoMaskLoss
from wsis_d2.modeling.losses.background_color import background_colored, band_samples
from wsis_d2.modeling.losses.pairwise import rgb_to_lab

from .conftest import check_empty_image_and_tiny_boxes, small_config

BACKGROUND = (50.0, 0.0, 0.0)
OBJECT = (80.0, 20.0, -10.0)


def ring_image(size: int = 8) -> torch.Tensor:
    """(1, 3, size, size) LAB: background, an object over cells [2:6, 2:6] with a background hole at [3:5, 3:5]."""
    lab = torch.tensor(BACKGROUND).view(1, 3, 1, 1).repeat(1, 1, size, size)
    lab[..., 2:6, 2:6] = torch.tensor(OBJECT).view(1, 3, 1, 1)
    lab[..., 3:5, 3:5] = torch.tensor(BACKGROUND).view(1, 3, 1, 1)
    return lab


def box_cells(y0, y1, x0, x1, size: int = 8) -> torch.Tensor:
    in_box = torch.zeros((1, 1, size, size), dtype=torch.bool)
    in_box[..., y0:y1, x0:x1] = True
    return in_box


def test_band_samples_are_evenly_spaced_and_capped():
    band = torch.zeros((2, 12), dtype=torch.bool)
    band[0, :10] = True  # 10 cells, at most 4: every 3rd
    band[1, [5, 7]] = True  # fewer than 4: both, then -1
    assert band_samples(band, 4).tolist() == [[0, 3, 6, 9], [5, 7, -1, -1]]
    assert band_samples(band[:, :3], 4).shape == (2, 3)  # never more samples than cells


def test_hole_coloured_like_the_band_is_background_coloured():
    lab = ring_image()
    valid = torch.ones((1, 1, 8, 8), dtype=torch.bool)
    colored = background_colored(lab, box_cells(2, 6, 2, 6), valid, band=1)
    expected = box_cells(3, 5, 3, 5)
    assert torch.equal(colored, expected)  # the hole, not the object, nor anything outside the box


def test_similarity_threshold_is_boxinsts():
    lab = ring_image()
    valid = torch.ones((1, 1, 8, 8), dtype=torch.bool)
    in_box = box_cells(2, 6, 2, 6)
    # a hole 1 LAB unit off the background: exp(-1/2) = .61 >= .3; 4 units off: exp(-2) = .14 < .3
    lab[0, 0, 3, 3] += 1.0
    lab[0, 0, 4, 4] += 4.0
    colored = background_colored(lab, in_box, valid, band=1, thresh=0.3)
    assert colored[0, 0, 3, 3] and not colored[0, 0, 4, 4]
    assert not background_colored(lab, in_box, valid, band=1, thresh=0.7)[0, 0, 3, 3]  # .61 < .7


def test_no_band_no_instances_and_padding():
    lab = ring_image()
    valid = torch.ones((1, 1, 8, 8), dtype=torch.bool)
    whole = box_cells(0, 8, 0, 8)
    assert not background_colored(lab, whole, valid).any()  # the box covers the image: nothing to compare with
    padded = valid.clone()
    padded[..., :, :] = False
    padded[..., 2:6, 2:6] = True  # everything around the box is padding
    assert not background_colored(lab, box_cells(2, 6, 2, 6), padded, band=1).any()
    empty = background_colored(lab[:0], whole[:0], valid[:0])
    assert empty.shape == (0, 1, 8, 8)


def test_image_frame_inputs_compare_at_the_logit_stride():
    # a BGR image of 16 x 16 pixels at stride 2: the ring_image cells, each 2 x 2 pixels
    rgb = torch.zeros((1, 3, 16, 16))
    rgb[:, 0] = 0.5
    rgb[:, :, 4:12, 4:12] = torch.tensor([0.9, 0.2, 0.1]).view(1, 3, 1, 1)
    rgb[:, :, 6:10, 6:10] = torch.tensor([0.5, 0.0, 0.0]).view(1, 3, 1, 1)
    raw = (rgb * 255).flip(1)
    inst = Instances((16, 16), gt_boxes=Boxes(torch.tensor([[4.0, 4.0, 12.0, 12.0]])))
    inputs = ImageFrameInputs([inst], torch.tensor([0]), torch.tensor([0]), stride=2, raw_images=raw,
                              image_sizes=[(16, 16)], original_heights=[16])
    colored = inputs.background_colored(band=1, max_samples=64, thresh=0.3)
    assert torch.equal(colored, box_cells(3, 5, 3, 5))
    lab = rgb_to_lab(torch.nn.functional.avg_pool2d(rgb, 2))
    assert torch.allclose(inputs.lab_cells(), lab, atol=1e-4)


def loss_config(mode: str):
    cfg = get_cfg()
    add_wsis_config(cfg)
    cfg.MODEL.BOX_TEACHER.WARMUP_ITERS = 1
    cfg.MODEL.BOX_TEACHER.BACKGROUND_COLOR.MODE = mode
    return cfg


def test_pseudo_mask_loss_background_color_modes_hand_case():
    soft = torch.tensor([[[[0.9, 0.8, 0.2]]]])  # binary target 1, 1, 0
    colored = torch.tensor([[[[False, True, True]]]])  # the teacher's 2nd foreground cell looks like background
    inputs = SimpleNamespace(iteration=1, pseudo_masks=lambda: (soft, torch.tensor([1.0])),
                             background_colored=lambda band, samples, thresh: colored)
    logits = torch.zeros((1, 1, 1, 3), requires_grad=True)  # p = .5 everywhere

    ignore = PseudoMaskLoss(loss_config("ignore"))(logits, inputs)["loss_pseudo_mask"]
    # pixel weights 1, 0, 1; target 1, -, 0: 2 sum(p t) = 1; sum(p^2) + sum(t^2) = .5 + 1
    assert ignore.item() == pytest.approx(0.5 * (1 - 1 / 1.5), rel=1e-4)
    ignore.backward()
    assert logits.grad[0, 0, 0, 1] == 0 and logits.grad[0, 0, 0, 0] != 0

    background = PseudoMaskLoss(loss_config("background"))(logits, inputs)["loss_pseudo_mask"]
    # target 1, 0, 0: 2 sum(p t) = 1; sum(p^2) + sum(t^2) = .75 + 1
    assert background.item() == pytest.approx(0.5 * (1 - 1 / 1.75), rel=1e-4)
    logits.grad = None
    background.backward()
    assert logits.grad[0, 0, 0, 1] > 0  # pushed towards background

    plain = PseudoMaskLoss(loss_config(""))(logits, inputs)["loss_pseudo_mask"]
    # target 1, 1, 0: 2 sum(p t) = 2; .75 + 2
    assert plain.item() == pytest.approx(0.5 * (1 - 2 / 2.75), rel=1e-4)
    with pytest.raises(ValueError, match="BACKGROUND_COLOR.MODE"):
        PseudoMaskLoss(loss_config("grabcut"))


@pytest.mark.parametrize("loss_class", [PseudoMaskLoss, PseudoAffinityLoss])
def test_pseudo_losses_skip_their_work_before_start_iter(loss_class):
    def unused(*args):
        raise AssertionError("read before START_ITER")

    cfg = loss_config("background")
    cfg.MODEL.BOX_TEACHER.START_ITER = 10
    logits = torch.ones((2, 1, 4, 4), requires_grad=True)
    inputs = SimpleNamespace(iteration=9, pseudo_masks=unused, background_colored=unused, color_graph=unused,
                             box_masks=unused)
    (loss,) = loss_class(cfg)(logits, inputs).values()
    assert loss.item() == 0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


@pytest.mark.parametrize("mode", ["ignore", "background"])
def test_boxteacher_with_the_check_trains_on_empty_images_and_tiny_boxes(tiny_shapes, mode):
    cfg = small_config("BoxTeacher/R18_shapes.yaml", train="tiny_box",
                       MODEL__BOX_TEACHER__BACKGROUND_COLOR__MODE=mode)
    torch.manual_seed(0)
    losses = check_empty_image_and_tiny_boxes(cfg, iteration=600)  # past START_ITER: the check runs
    assert "loss_pseudo_mask" in losses


def test_benchmark_counts_flagged_cells_on_and_off_the_object():
    import importlib.util
    from pathlib import Path

    import numpy as np
    import pycocotools.mask as mask_util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "background_color_check.py"
    spec = importlib.util.spec_from_file_location("background_color_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # a red ring on grey, 32 x 32 px: object pixels [8:24, 8:24] with a grey hole [12:20, 12:20]
    image = np.full((32, 32, 3), 128, np.uint8)
    image[8:24, 8:24] = (200, 30, 30)
    image[12:20, 12:20] = 128
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 1
    mask[12:20, 12:20] = 0
    annotation = {"segmentation": mask_util.encode(np.asfortranarray(mask)), "bbox": [8, 8, 16, 16]}
    on_flagged, on, off_flagged, off = module.cell_shares(image, [annotation], stride=4, band=2, samples=64,
                                                          thresh=0.3)
    # 4 x 4 in-box cells: the 2 x 2 hole off the object, all flagged; the 12 ring cells on it, none
    assert (on_flagged, on, off_flagged, off) == (0, 12, 4, 4)
    # at twice the size (as a training resize would give it): twice the cells per side
    image2, (annotation2,) = module.resized(image, [annotation], 64)
    assert image2.shape == (64, 64, 3) and annotation2["bbox"] == [16, 16, 32, 32]
    on_flagged, on, off_flagged, off = module.cell_shares(image2, [annotation2], stride=4, band=2, samples=64,
                                                          thresh=0.3)
    # linear resizing blends the ring's colour into the hole's edge pixels: some edge cells lose the match
    assert (on_flagged, on, off) == (0, 48, 16) and 12 <= off_flagged <= 16

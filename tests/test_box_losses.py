"""Box-supervised losses on hand-computed cases: projection, colour pairwise, level set."""
import math

import cv2
import numpy as np
import pytest
import torch

from wsis_d2.modeling.boxlevelset import guided_filter, levelset_energy
from wsis_d2.modeling.boxlevelset.levelset_loss import contour_length
from wsis_d2.modeling.losses.box_targets import box_coverage_xy, box_masks
from wsis_d2.modeling.losses.pairwise import (color_similarity, log_same_label_probability, neighbour_offsets,
                                              neighbours, rgb_to_lab, valid_edges)
from wsis_d2.modeling.losses.pairwise_color import pairwise_color_loss
from wsis_d2.modeling.losses.projection import projection_loss


# ------------------------------------------------------------------ box targets
def test_box_coverage_is_the_area_share_of_each_cell():
    rows, cols = box_coverage_xy(torch.tensor([[2.0, 0.0, 9.0, 4.0]]), height=2, width=3, stride=4)
    assert cols.tolist() == [[0.5, 1.0, 0.25]] and rows.tolist() == [[1.0, 0.0]]
    tiny = box_masks(torch.tensor([[5.0, 5.0, 6.0, 7.0]]), 3, 3, 4)  # a 1 x 2 px box
    assert tiny[0, 1, 1].item() == pytest.approx(1 / 16 * 2) and tiny.sum().item() == pytest.approx(2 / 16)


# ------------------------------------------------------------------ projection
def test_projection_loss_hand_case_6x6():
    probs = torch.zeros((1, 1, 6, 6))
    probs[0, 0, 1:4, 1:3] = 0.5
    box = torch.tensor([[1.0, 1.0, 4.0, 3.0]])  # cells x 1-3, y 1-2
    # proj_x = [0,.5,.5,0,0,0] vs [0,1,1,1,0,0]: 1 - 2*1 / (0.5 + 3)
    # proj_y = [0,.5,.5,.5,0,0] vs [0,1,1,0,0,0]: 1 - 2*1 / (0.75 + 2)
    expected = (1 - 2 / 3.5) + (1 - 2 / 2.75)
    assert projection_loss(probs, box, stride=1).item() == pytest.approx(expected, abs=1e-5)
    perfect = torch.zeros((1, 1, 6, 6))
    perfect[0, 0, 1:3, 1:4] = 1
    assert projection_loss(perfect, box, 1).item() == pytest.approx(0.0, abs=1e-5)


def test_projection_loss_gradients_and_tiny_boxes():
    logits = torch.zeros((2, 1, 6, 6), requires_grad=True)
    boxes = torch.tensor([[4.0, 4.0, 16.0, 12.0], [9.0, 9.0, 10.0, 11.0]])  # second: 1 x 2 px at stride 4
    loss = projection_loss(logits.sigmoid(), boxes, stride=4)
    assert torch.isfinite(loss).all()
    loss.sum().backward()
    grad = logits.grad
    assert torch.isfinite(grad).all() and grad[0].abs().sum() > 0 and grad[1].abs().sum() > 0
    # the first box covers cells x 1-3 and y 1-2: its x-projection pushes column 1-3 up, column 5 down
    assert grad[0, 0, :, 5].sum() > 0 and grad[0, 0, :, 2].sum() < 0


# ------------------------------------------------------------------ colour pairwise
def test_rgb_to_lab_matches_opencv():
    rgb = np.random.default_rng(0).uniform(0, 1, size=(5, 7, 3)).astype(np.float32)
    expected = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    ours = rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert np.abs(ours - expected).max() < 0.2


def test_neighbours_are_shifted_slices():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    nb = neighbours(x, size=3, dilation=2, fill=-1)
    offsets = neighbour_offsets(3, 2)
    k = offsets.index((0, 2))
    assert nb[0, 0, k].tolist() == [[2, 3, -1, -1], [6, 7, -1, -1], [10, 11, -1, -1], [14, 15, -1, -1]]
    assert len(offsets) == 8 and (2, 2) in offsets and (-2, -2) in offsets


def _two_colour_image():
    """4x4 LAB image: left two columns one colour, right two another (far apart)."""
    rgb = torch.zeros((1, 3, 4, 4))
    rgb[:, 0, :, :2] = 1.0  # red
    rgb[:, 2, :, 2:] = 1.0  # blue
    return rgb_to_lab(rgb)


def test_pairwise_edges_hand_case_4x4():
    lab = _two_colour_image()
    sim = color_similarity(lab, size=3, dilation=1)
    valid = valid_edges(torch.ones((1, 1, 4, 4), dtype=torch.bool), size=3, dilation=1)
    k_right = neighbour_offsets(3, 1).index((0, 1))
    assert sim[0, k_right, 0, 0].item() == pytest.approx(1.0)  # red -> red
    assert sim[0, k_right, 0, 1].item() < 1e-6  # red -> blue
    counted = (sim >= 0.3) & valid
    # each 4x2 half: 4 corner pixels with 3 same-half neighbours, 4 with 5
    assert counted.sum().item() == 2 * (4 * 3 + 4 * 5)
    assert not valid[0, k_right, :, 3].any()  # no edges leave the image


def test_pairwise_loss_values_hand_case_4x4():
    lab = _two_colour_image()
    sim = color_similarity(lab, 3, 1)
    valid = valid_edges(torch.ones((1, 1, 4, 4), dtype=torch.bool), 3, 1)
    p = torch.full((1, 1, 4, 4), 0.2)
    p[..., :2] = 0.9
    logits = torch.logit(p).requires_grad_()
    whole = torch.ones((1, 1, 4, 4), dtype=torch.bool)
    edges = (sim >= 0.3) & valid
    loss = pairwise_color_loss(logits, edges, whole, 3, 1)
    expected = (32 * -math.log(0.9 * 0.9 + 0.1 * 0.1) + 32 * -math.log(0.2 * 0.2 + 0.8 * 0.8)) / 64
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    left_box = torch.zeros_like(whole)
    left_box[..., :2] = True  # only edges centred in the left half count
    assert pairwise_color_loss(logits, edges, left_box, 3, 1).item() == pytest.approx(-math.log(0.82))
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    none = pairwise_color_loss(logits, edges, torch.zeros_like(whole), 3, 1)
    assert none.item() == 0.0  # a box too small to hold an edge gives no pairwise signal


def test_colour_losses_leave_out_the_bottom_rows_their_config_names():
    """BOTTOM_PIXELS_REMOVED is the colour losses' own key (CondInst passes no BoxInst value to its inputs)."""
    import inspect

    from detectron2.config import get_cfg
    from detectron2.structures import Boxes, Instances

    from wsis_d2.config import add_wsis_config
    from wsis_d2.modeling.condinst import CondInst
    from wsis_d2.modeling.losses import ImageFrameInputs, PairwiseColorLoss, PseudoAffinityLoss

    cfg = add_wsis_config(get_cfg())
    gt = Instances((8, 8), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 8.0, 8.0]])), gt_classes=torch.tensor([0]))
    inputs = ImageFrameInputs([gt], torch.tensor([0]), torch.tensor([0]), stride=1,
                              raw_images=torch.full((1, 3, 8, 8), 128.0), image_sizes=[(8, 8)], original_heights=[16])
    cfg.MODEL.BOXINST.BOTTOM_PIXELS_REMOVED = 4  # 4 of the 16 original rows: the bottom 2 of the 8 resized ones
    edges = PairwiseColorLoss(cfg).similar_edges(inputs)
    assert edges[0, :, :6].any() and not edges[0, :, 6:].any()
    assert PseudoAffinityLoss(cfg).bottom_pixels_removed == 4
    cfg.MODEL.BOXINST.BOTTOM_PIXELS_REMOVED = 0
    assert PairwiseColorLoss(cfg).similar_edges(inputs)[0, :, 6:].any()
    assert "bottom_pixels_removed" not in inspect.signature(CondInst.__init__).parameters


def test_log_same_label_probability_is_stable():
    logits = torch.tensor([[[[30.0, -30.0, 30.0]]]], requires_grad=True)
    out = log_same_label_probability(logits, size=3, dilation=1)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(logits.grad).all()


# ------------------------------------------------------------------ level set
def test_levelset_energy_hand_case():
    u = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    box = torch.ones((1, 1, 2, 2))
    exact = u.clone()
    assert levelset_energy(exact, u, box).item() == pytest.approx(0.0, abs=1e-6)  # c1 = 1, c2 = 0
    half = torch.full((1, 1, 2, 2), 0.5)
    # c1 = c2 = 0.5: each pixel 0.25 * 0.5 + 0.25 * 0.5 = 0.25, mean 0.25 (a saddle: zero gradient)
    assert levelset_energy(half, u, box).item() == pytest.approx(0.25)
    start = torch.tensor([[[[0.6, 0.6], [0.4, 0.4]]]], requires_grad=True)
    # c1 = 1.2 / 2 = 0.6, c2 = 0.8 / 2 = 0.4; every pixel 0.4^2 * 0.6 + 0.6^2 * 0.4 = 0.24
    energy = levelset_energy(start, u, box)
    assert energy.item() == pytest.approx(0.24)
    energy.backward()
    # dE/dm = ((u - c1)^2 - (u - c2)^2) / 4: -0.05 on the bright row (grow), +0.05 on the dark (shrink)
    assert start.grad.flatten().tolist() == pytest.approx([-0.05, -0.05, 0.05, 0.05], abs=1e-5)


def test_levelset_energy_ignores_the_outside_of_the_box():
    u = torch.tensor([[[[1.0, 1.0, 9.0], [0.0, 0.0, 9.0]]]])
    probs = torch.tensor([[[[1.0, 1.0, 0.3], [0.0, 0.0, 0.7]]]])
    box = torch.tensor([[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]]])
    assert levelset_energy(probs, u, box).item() == pytest.approx(0.0, abs=1e-6)
    assert levelset_energy(probs[:0], u[:0], box[:0]).shape == (0,)


def test_contour_length_counts_edges_in_the_box():
    m = torch.tensor([[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]]])
    assert contour_length(m, torch.ones_like(m)).item() == 4.0


def test_guided_filter_flat_guide_is_a_box_blur_and_an_edge_guide_keeps_edges():
    src = torch.zeros((1, 1, 1, 8))
    src[..., 4:] = 1.0
    flat = guided_filter(torch.zeros((1, 1, 1, 8)), src, radius=1, eps=1e-2)
    # a = 0, b = box(src): the output is box(box(src)), the box blur applied twice
    assert flat[0, 0, 0].tolist() == pytest.approx([0, 0, 1 / 9, 1 / 3, 2 / 3, 8 / 9, 1, 1], abs=1e-4)
    edge = guided_filter(src.clone(), src, radius=1, eps=1e-4)
    assert (edge - src).abs().max() < 0.05

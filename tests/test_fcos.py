import torch

from wsis_d2.modeling.fcos.losses import fcos_losses
from wsis_d2.modeling.fcos.targets import (assign_fcos_targets, centerness_targets, compute_locations,
                                           level_size_ranges)


def _one_level(h=4, w=4, stride=8):
    loc = compute_locations(h, w, stride, "cpu")
    ranges = torch.tensor([[-1.0, float("inf")]]).expand(len(loc), 2)
    strides = torch.full((len(loc),), float(stride))
    return loc, ranges, strides


def test_locations_sit_at_block_centres():
    loc = compute_locations(2, 3, 8, "cpu")
    assert loc.tolist() == [[4, 4], [12, 4], [20, 4], [4, 12], [12, 12], [20, 12]]


def test_center_sampling_hand_case():
    loc, ranges, strides = _one_level()
    box = torch.tensor([[0.0, 0.0, 32.0, 32.0]])
    labels, reg, inds = assign_fcos_targets(loc, ranges, strides, box, torch.tensor([2]), 5, True, 1.5)
    # centre (16, 16) +- 1.5 * 8 -> (4, 28) exclusive: only x, y in {12, 20}
    positives = {tuple(p) for p in loc[labels == 2].tolist()}
    assert positives == {(12.0, 12.0), (20.0, 12.0), (12.0, 20.0), (20.0, 20.0)}
    assert (labels[labels != 2] == 5).all() and (inds[labels == 5] == -1).all()
    k = loc.tolist().index([12.0, 12.0])
    assert reg[k].tolist() == [12 / 8, 12 / 8, 20 / 8, 20 / 8]  # (l, t, r, b) / stride
    labels, _, _ = assign_fcos_targets(loc, ranges, strides, box, torch.tensor([2]), 5, False, 1.5)
    assert (labels == 2).sum() == 16  # without centre sampling every inside location


def test_smallest_box_wins_and_level_ranges_apply():
    loc, ranges, strides = _one_level()
    boxes = torch.tensor([[0.0, 0.0, 32.0, 32.0], [0.0, 0.0, 16.0, 16.0]])
    labels, _, inds = assign_fcos_targets(loc, ranges, strides, boxes, torch.tensor([0, 1]), 3, False)
    k = loc.tolist().index([4.0, 4.0])
    assert labels[k] == 1 and inds[k] == 1
    # a level for objects <= 10 px away only: (4, 4) in the small box has max distance 12 -> background
    tight = torch.tensor([[-1.0, 10.0]]).expand(len(loc), 2)
    labels, _, _ = assign_fcos_targets(loc, tight, strides, boxes[1:], torch.tensor([1]), 3, False)
    assert (labels == 3).all()


def test_no_gt_means_all_background():
    loc, ranges, strides = _one_level()
    labels, reg, inds = assign_fcos_targets(loc, ranges, strides, torch.zeros((0, 4)), torch.zeros(0).long(), 4)
    assert (labels == 4).all() and (inds == -1).all() and reg.shape == (16, 4)


def test_level_size_ranges():
    assert level_size_ranges([64, 128], 3) == [[-1.0, 64.0], [64.0, 128.0], [128.0, float("inf")]]


def test_centerness_targets_hand_case():
    t = torch.tensor([[1.0, 2.0, 3.0, 2.0], [1.0, 1.0, 1.0, 1.0]])
    assert torch.allclose(centerness_targets(t), torch.tensor([(1 / 3) ** 0.5, 1.0]))


def test_losses_perfect_boxes_and_no_positives():
    labels = torch.tensor([0, 2, 2])  # 2 = background for 2 classes
    reg_t = torch.tensor([[1.0, 2.0, 3.0, 2.0], [0, 0, 0, 0], [0, 0, 0, 0]])
    box_reg = reg_t.clone().requires_grad_()
    logits = torch.zeros((3, 2), requires_grad=True)
    ctr = torch.zeros(3, requires_grad=True)
    losses = fcos_losses(logits, box_reg, ctr, labels, reg_t, num_classes=2)
    assert losses["loss_fcos_loc"].item() < 1e-5  # GIoU of identical boxes
    # focal loss at p = 0.5 for 6 entries, 1 positive: normalised by 1 positive
    p = 0.5
    expected = 0.25 * (1 - p) ** 2 * -torch.log(torch.tensor(p)) + 5 * 0.75 * p ** 2 * -torch.log(torch.tensor(1 - p))
    assert torch.isclose(losses["loss_fcos_cls"], expected, atol=1e-5)

    empty = fcos_losses(logits, box_reg, ctr, torch.full((3,), 2), reg_t, num_classes=2)
    assert empty["loss_fcos_loc"].item() == 0 and empty["loss_fcos_ctr"].item() == 0
    sum(empty.values()).backward()
    assert box_reg.grad is not None and torch.isfinite(logits.grad).all()

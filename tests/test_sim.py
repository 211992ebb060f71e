"""SIM: Sinkhorn, prototypes, semantic-aware pseudo labels, copy-paste, its loss and the model."""
import copy

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from wsis_d2.engine.trainer import Trainer
from wsis_d2.modeling.sim import (ClassPrototypes, ObjectBank, paste_objects,
                                  semantic_pseudo_label, semantic_pseudo_mask_loss, sinkhorn)

from .conftest import box_batch_with_gt_masks, check_empty_image_and_tiny_boxes, small_config, teacher_from_gt_masks


def test_sinkhorn_rows_sum_to_one_and_columns_share_equally():
    torch.manual_seed(0)
    scores = torch.rand(12, 3) * 2 - 1  # cosine similarities
    q = sinkhorn(scores, epsilon=0.05, iterations=3)
    assert torch.allclose(q.sum(1), torch.ones(12), atol=1e-5)
    # 3 iterations: prototypes' shares closer to n / K = 4 than a plain softmax's; many: equal
    plain = torch.softmax(scores / 0.05, dim=1).sum(0)
    assert (q.sum(0) - 4).abs().max() < (plain - 4).abs().max()
    assert torch.allclose(sinkhorn(scores, iterations=50).sum(0), torch.full((3,), 4.0), atol=1e-2)
    # clear preferences survive the equipartition
    clear = torch.tensor([[1.0, -1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, 1.0]])
    assert sinkhorn(clear).argmax(1).tolist() == [0, 0, 1, 1]


def test_prototype_update_hand_case():
    protos = ClassPrototypes(num_classes=2, num_prototypes=1, dim=2, momentum=0.5)
    protos.prototypes.copy_(torch.tensor([[[1.0, 0.0]], [[0.0, 1.0]]]))
    untouched = protos.prototypes[1].clone()
    # class 0: two features (any norm), normalised (1, 0) and (0.6, 0.8): mean (0.8, 0.4), normalised
    protos.update([torch.tensor([[3.0, 0.0], [0.6, 0.8]])], [0])
    mean = torch.tensor([1.6, 0.8]) / 2
    mean = mean / mean.norm()
    expected = 0.5 * torch.tensor([1.0, 0.0]) + 0.5 * mean
    assert torch.allclose(protos.prototypes[0, 0], expected / expected.norm(), atol=1e-6)
    assert torch.equal(protos.prototypes[1], untouched)  # unseen class unchanged
    protos.update([], [])  # no confident pixels anywhere: nothing moves
    assert torch.allclose(protos.prototypes[0, 0], expected / expected.norm(), atol=1e-6)
    # semantic map: sigmoid of the best cosine with the instance's class prototypes
    feats = torch.tensor([[[[2.0]], [[0.0]]]])  # (1, C=2, 1, 1), direction (1, 0)
    value = protos.semantic_map(feats, torch.tensor([1]))
    assert value.item() == pytest.approx(torch.sigmoid(torch.tensor(0.0)).item())


def test_prototypes_of_a_class_split_its_clusters():
    torch.manual_seed(0)
    protos = ClassPrototypes(num_classes=1, num_prototypes=2, dim=2, momentum=0.0)
    protos.prototypes.copy_(torch.tensor([[[1.0, 0.1], [0.1, 1.0]]]) / torch.tensor(1.01).sqrt())
    near_x = torch.tensor([[1.0, 0.0]]) + 0.01 * torch.randn(20, 2)
    near_y = torch.tensor([[0.0, 1.0]]) + 0.01 * torch.randn(20, 2)
    protos.update([torch.cat([near_x, near_y])], [0])
    # momentum 0: each prototype is the normalised mean of the cluster nearest to it
    assert torch.allclose(protos.prototypes[0, 0], torch.nn.functional.normalize(
        torch.nn.functional.normalize(near_x, dim=1).mean(0), dim=0), atol=1e-6)
    assert torch.allclose(protos.prototypes[0, 1], torch.nn.functional.normalize(
        torch.nn.functional.normalize(near_y, dim=1).mean(0), dim=0), atol=1e-6)


def test_semantic_pseudo_label_hand_case():
    # one box's crop, a 1 x 5 row
    instance = torch.tensor([[0.9, 0.9, 0.6, 0.2, 0.1]])
    semantic = torch.tensor([[0.7, 0.5, 0.7, 0.7, 0.3]])
    fg, labelled = semantic_pseudo_label(instance, semantic)
    # M = .8 .7 .65 .45 .2; n_pos = 3 -> the 3rd largest .65, clamped to .7 -> foreground .8 .7
    assert fg.tolist() == [[True, True, False, False, False]]
    # background below .4; .65 and .45 ignored
    assert labelled.tolist() == [[True, True, False, False, True]]
    # a confident teacher: the rank threshold (.75 = 4th largest) sits inside the clamp range
    fg, _ = semantic_pseudo_label(torch.tensor([[1.0, 1.0, 0.9, 0.6, 0.0]]), torch.tensor([[0.6, 0.5, 0.6, 0.9, 0.3]]))
    assert fg.tolist() == [[True, True, True, True, False]]
    # no teacher foreground: threshold .8
    fg, labelled = semantic_pseudo_label(torch.full((1, 3), 0.5), torch.tensor([[0.2, 0.9, 1.0]]))
    assert not fg.any() and labelled.tolist() == [[True, False, False]]


def _own_instances(h=20, w=20):
    inst = Instances((h, w), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0], [12.0, 12.0, 20.0, 20.0]])),
                     gt_classes=torch.tensor([0, 1]))
    masks = torch.zeros((2, h, w))
    masks[0, 2:8, 2:8] = 1.0
    masks[1, 14:18, 14:18] = 1.0
    inst.gt_pseudo_masks = masks.bool()
    inst.gt_pseudo_valid = torch.ones((2, h, w), dtype=torch.bool)
    inst.gt_pseudo_weights = torch.tensor([0.8, 0.9])
    inst.gt_pasted = torch.zeros(2, dtype=torch.bool)
    return inst


def test_copy_paste_keeps_boxes_and_masks_consistent_under_occlusion():
    image = torch.zeros((3, 20, 20), dtype=torch.uint8)
    source = torch.full((3, 24, 24), 200, dtype=torch.uint8)
    source_masks = torch.zeros((3, 24, 24), dtype=torch.bool)
    source_masks[0, 4:9, 4:12] = True  # partly under object 1; covers own object 0's box a little
    source_masks[1, 6:10, 8:12] = True  # on top of object 0
    source_masks[2, 12:24, 12:24] = True  # covers own object 1's box entirely; cut to the image
    out = paste_objects(image, _own_instances(), source, source_masks, torch.tensor([2, 3, 4]), min_area=4)
    assert out is not None
    new_image, inst = out
    assert inst.gt_classes.tolist() == [0, 2, 3, 4]  # own object 1 (box covered) dropped
    pasted = inst.gt_pasted
    assert pasted.tolist() == [False, True, True, True]
    visible = inst.gt_pseudo_masks[pasted]
    # pasted masks are disjoint (the upper one wins) and their boxes are their visible pixels
    assert int(visible.sum(0).max()) == 1
    assert inst.gt_boxes.tensor[2].tolist() == [8.0, 6.0, 12.0, 10.0]  # object 1, on top: all of it
    assert inst.gt_boxes.tensor[1].tolist() == [4.0, 4.0, 12.0, 9.0]  # object 0 minus what 1 hides
    assert inst.gt_boxes.tensor[3].tolist() == [12.0, 12.0, 20.0, 20.0]
    covered = visible.any(0)
    assert (new_image[:, covered] == 200).all() and (new_image[:, ~covered] == 0).all()
    # the own object keeps its box; what the pasted ones cover is labelled background for it
    assert inst.gt_boxes.tensor[0].tolist() == [0.0, 0.0, 10.0, 10.0]
    assert not inst.gt_pseudo_masks[0][covered].any() and inst.gt_pseudo_valid[0][covered].all()
    assert inst.gt_pseudo_masks[0].sum() == 36 - covered[2:8, 2:8].sum()
    assert inst.gt_pseudo_valid[pasted].all() and (inst.gt_pseudo_weights[pasted] == 1).all()
    # nothing big enough to paste
    tiny = torch.zeros((1, 24, 24), dtype=torch.bool)
    tiny[0, 0, 0] = True
    assert paste_objects(image, _own_instances(), source, tiny, torch.tensor([2])) is None


def test_object_bank_samples_half_at_most_three_by_score():
    bank = ObjectBank(size=2)
    assert bank.sample() is None
    masks = torch.ones((8, 4, 4), dtype=torch.bool)
    bank.add(torch.zeros(3, 4, 4), masks, torch.arange(8), torch.tensor([1.0] + [1e-3] * 7))
    bank.add(torch.zeros(3, 4, 4), masks[:0], torch.arange(0), torch.zeros(0))  # no objects: not kept
    assert len(bank) == 1
    _, chosen_masks, chosen = bank.sample(max_objects=3, score_power=3.0)
    assert len(chosen) == 3 and 0 in chosen.tolist()  # score^3 makes object 0 near certain
    for _ in range(3):
        bank.add(torch.zeros(3, 4, 4), masks[:2], torch.arange(2), torch.ones(2))
    assert len(bank) == 2  # the oldest images leave
    assert len(bank.sample()[2]) == 1  # half of 2


def test_semantic_pseudo_mask_loss_hand_case_and_gradients():
    logits = torch.zeros((2, 1, 1, 3), requires_grad=True)
    pseudo = torch.tensor([[[[1.0, 0.0, 0.0]]], [[[1.0, 1.0, 1.0]]]])
    valid = torch.tensor([[[[1.0, 1.0, 0.0]]], [[[1.0, 1.0, 1.0]]]])
    loss = semantic_pseudo_mask_loss(logits, pseudo, valid, torch.tensor([1.0, 0.0]))
    # instance 1 unweighted, cell 2 ignored; at p = .5: fg .25 * .25 * log 2, bg .75 * .25 * log 2
    log2 = torch.log(torch.tensor(2.0)).item()
    assert loss.item() == pytest.approx((0.25 * 0.25 * log2 + 0.75 * 0.25 * log2) / 2, rel=1e-5)
    loss.backward()
    assert logits.grad[1].abs().sum() == 0 and logits.grad[0, 0, 0, 2] == 0
    assert logits.grad[0, 0, 0, 0] < 0 < logits.grad[0, 0, 0, 1]
    none = semantic_pseudo_mask_loss(logits, pseudo, valid, torch.zeros(2))
    assert none.item() == 0 and none.requires_grad


def test_unit_feature_similarity_hand_case():
    from wsis_d2.modeling.losses.pairwise import unit_feature_similarity

    # a 1 x 2 map: (2, 0) and (0, 3) are (1, 0) and (0, 1) once normalised, sqrt(2) apart
    feats = torch.tensor([[[[2.0, 0.0]], [[0.0, 3.0]]]])
    right = 4  # neighbour offset (0, +1) of the 3 x 3 pattern
    sim = unit_feature_similarity(feats, size=3, dilation=1)
    assert sim.shape == (1, 8, 1, 2)
    assert sim[0, right, 0, 0].item() == pytest.approx(torch.exp(-torch.tensor(2.0).sqrt()).item(), rel=1e-6)
    assert torch.allclose(unit_feature_similarity(10 * feats, 3, 1), sim)  # scale-free


def _split_box_inputs():
    """One 4 x 4 image of one colour (every colour similarity 1), one box over all of it, logits at
    stride 1; teacher features (1, 0) on the left two columns and (-1, 0) on the right two."""
    from wsis_d2.modeling.losses.inputs import ImageFrameInputs

    gt = Instances((4, 4), gt_boxes=Boxes(torch.tensor([[0.0, 0.0, 4.0, 4.0]])), gt_classes=torch.tensor([0]))
    teacher_feats = torch.zeros((1, 2, 4, 4))
    teacher_feats[0, 0, :, :2] = 1.0
    teacher_feats[0, 0, :, 2:] = -1.0
    return ImageFrameInputs([gt], torch.tensor([0]), torch.tensor([0]), stride=1,
                            raw_images=torch.full((1, 3, 4, 4), 128.0), image_sizes=[(4, 4)], original_heights=[4],
                            iteration=10 ** 6, mask_feats=torch.zeros((1, 2, 4, 4)), mask_feat_stride=1,
                            teacher_feats=teacher_feats)


def test_teacher_feature_pairwise_loss_cuts_the_edges_the_teacher_separates():
    from wsis_d2.model_zoo import get_config
    from wsis_d2.modeling.losses import PairwiseColorLoss
    from wsis_d2.modeling.sim import TeacherFeaturePairwiseLoss

    cfg = get_config("SIM/Base-SIM.yaml")
    cfg.MODEL.BOXINST.PAIRWISE.DILATION = 1
    cfg.MODEL.BOXINST.BOTTOM_PIXELS_REMOVED = 0  # the 4 x 4 image keeps all its rows
    cfg.MODEL.SIM.PAIRWISE_THRESH = 0.2  # the cross edges' colour x feature similarity is exp(-2) = .135
    inputs = _split_box_inputs()
    # the student's masks: p = .9 on the left half, .2 on the right
    probs = torch.full((1, 1, 4, 4), 0.9)
    probs[..., 2:] = 0.2
    logits = torch.logit(probs).requires_grad_()
    with_features = TeacherFeaturePairwiseLoss(cfg)(logits, inputs)["loss_pairwise"]
    colour_only = PairwiseColorLoss(cfg)(logits, inputs)["loss_pairwise"]
    # 84 directed edges in a 4 x 4 8-neighbourhood: 32 inside each half, 20 across
    left = -torch.log(torch.tensor(0.9 * 0.9 + 0.1 * 0.1))
    right = -torch.log(torch.tensor(0.2 * 0.2 + 0.8 * 0.8))
    across = -torch.log(torch.tensor(0.9 * 0.2 + 0.1 * 0.8))
    assert with_features.item() == pytest.approx(((32 * left + 32 * right) / 64).item(), rel=1e-5)
    assert colour_only.item() == pytest.approx(((32 * left + 32 * right + 20 * across) / 84).item(), rel=1e-5)
    # the left half's inner column is pulled towards the right half by colour alone, not with the features
    grad_features, = torch.autograd.grad(with_features, logits)
    grad_colour, = torch.autograd.grad(colour_only, logits)
    assert (grad_features[0, 0, :, 1] < 0).all() and (grad_colour[0, 0, :, 1] > 0).all()
    # the reference's threshold .1 keeps every edge of one colour (feature factor >= exp(-2))
    cfg.MODEL.SIM.PAIRWISE_THRESH = 0.1
    assert TeacherFeaturePairwiseLoss(cfg)(logits, inputs)["loss_pairwise"].item() == pytest.approx(
        colour_only.item(), rel=1e-5)
    # no instances: zero, still connected
    empty = TeacherFeaturePairwiseLoss(cfg)(logits[:0], inputs)["loss_pairwise"]
    assert empty.item() == 0 and empty.requires_grad


def test_teacher_feature_pairwise_loss_needs_a_teacher(tiny_shapes):
    from wsis_d2.model_zoo import get_config
    from wsis_d2.modeling.losses.inputs import ImageFrameInputs
    from wsis_d2.modeling.sim import TeacherFeaturePairwiseLoss

    boxinst = small_config("BoxInst/R18_shapes.yaml", train="tiny_box",
                           MODEL__CONDINST__MASK_LOSSES="['ProjectionLoss', 'TeacherFeaturePairwiseLoss']")
    with pytest.raises(ValueError, match="TeacherFeaturePairwiseLoss reads"):
        Trainer.build_model(boxinst)
    inputs = _split_box_inputs()
    no_teacher = ImageFrameInputs(inputs.gt_instances, inputs.im_inds, inputs.gt_inds, 1,
                                  raw_images=inputs.raw_images, image_sizes=[(4, 4)], original_heights=[4])
    with pytest.raises(NotImplementedError, match="holds no teacher features"):
        TeacherFeaturePairwiseLoss(get_config("SIM/Base-SIM.yaml")).similar_edges(no_teacher)


@pytest.mark.parametrize("pairwise", ["PairwiseColorLoss", "TeacherFeaturePairwiseLoss"])
def test_sim_trains_from_boxes_with_prototypes_pseudo_labels_and_copy_paste(tiny_shapes, pairwise):
    cfg = small_config("SIM/R18_shapes.yaml", train="tiny_box", MODEL__SIM__START_ITER="0",
                       MODEL__SIM__COPY_PASTE__PROB="1.0", MODEL__SIM__COPY_PASTE__MIN_AREA="1",
                       MODEL__CONDINST__MASK_LOSSES=f"['ProjectionLoss', '{pairwise}', 'SemanticPseudoMaskLoss']")
    model = Trainer.build_model(cfg)
    batch, full = box_batch_with_gt_masks("SIM/R18_shapes.yaml", cfg)
    teacher_from_gt_masks(model, full)
    before = model.prototypes.prototypes.clone()
    seen = sorted(set(torch.cat([f["instances"].gt_classes for f in full]).tolist()))
    e1 = torch.tensor([0.0, 1.0] + [0.0] * 14)  # the features on the objects
    with EventStorage(5):
        student = model.student_inputs(batch)
        # confident pixels' features (all along e1) pull the seen classes' prototypes towards e1
        for c in range(before.shape[0]):
            moved = (model.prototypes.prototypes[c] @ e1) - (before[c] @ e1)
            assert (moved.max() > 0) if c in seen else (moved.abs().max() == 0), c
        assert len(model.bank) == 2
        labelled = student[0]["instances"]
        assert labelled.gt_pseudo_weights.gt(0).all() and not labelled.has("gt_masks")
        teacher_feats = [out["mask_feats"] for out in model.teacher_predictions(batch, True)]
        for x, feats in zip(student, teacher_feats):  # each image's teacher features ride along
            assert torch.equal(x["teacher_mask_feats"], feats)
        second = model.student_inputs(copy.deepcopy(batch))  # now the bank has objects to paste
        assert any(bool(s["instances"].gt_pasted.any()) for s in second)
        losses = model.student(second)
    assert losses["loss_sim_pseudo"] > 0 and losses["loss_sim_paste"] > 0 and losses["loss_pairwise"] > 0
    with EventStorage(5):  # one teacher feature everywhere: the edges are colour's alone
        uniform = model.student([dict(x, teacher_mask_feats=torch.ones_like(x["teacher_mask_feats"]))
                                 for x in second])
    features_matter = not torch.isclose(uniform["loss_pairwise"], losses["loss_pairwise"])
    assert features_matter == (pairwise == "TeacherFeaturePairwiseLoss")
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(p.grad is None for p in model.teacher.parameters())


def test_sim_refuses_mask_losses_and_survives_empty_images(tiny_shapes):
    bad = small_config("SIM/R18_shapes.yaml", train="tiny_box",
                       MODEL__CONDINST__MASK_LOSSES="['DiceMaskLoss']")
    with pytest.raises(ValueError, match="DiceMaskLoss reads"):
        Trainer.build_model(bad)
    check_empty_image_and_tiny_boxes(small_config("SIM/R18_shapes.yaml", train="tiny_box",
                                                  MODEL__SIM__START_ITER="0"))
    check_empty_image_and_tiny_boxes(small_config(
        "SIM/R18_shapes.yaml", train="tiny_box", MODEL__SIM__START_ITER="0",
        MODEL__CONDINST__MASK_LOSSES="['ProjectionLoss', 'TeacherFeaturePairwiseLoss', 'SemanticPseudoMaskLoss']"))


def test_sim_checkpoint_round_trip_restores_teacher_and_prototypes(tiny_shapes, tmp_path):
    cfg = small_config("SIM/R18_shapes.yaml", train="tiny_box", output_dir=tmp_path,
                       SOLVER__CHECKPOINT_PERIOD="2", TEST__EVAL_PERIOD="0")
    trainer = Trainer(cfg)
    with torch.no_grad():
        trainer.model.prototypes.prototypes.mul_(-1.0)  # a state a fresh model does not have
    trainer.train()
    restored = Trainer.build_model(cfg)
    DetectionCheckpointer(restored).load(str(tmp_path / "model_final.pth"))
    state = trainer.model.state_dict()
    assert any(k.startswith("teacher.") for k in state) and "prototypes.prototypes" in state
    for k, v in restored.state_dict().items():
        assert torch.equal(v, state[k]), k

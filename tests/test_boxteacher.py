"""Teacher-student machinery (EMA, pseudo-mask assignment, weighted dice) and BoxTeacher."""
from types import SimpleNamespace

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.utils.events import EventStorage
from torch import nn

from wsis_d2.engine.trainer import Trainer
from wsis_d2.evaluation.pseudo_masks import pseudo_mask_ious
from wsis_d2.modeling.losses import weighted_dice_loss
from wsis_d2.modeling.teacher import MeanTeacher, assign_pseudo_masks, ema_momentum, mask_aware_scores

from .conftest import box_batch_with_gt_masks, small_config, teacher_from_gt_masks


def test_ema_update_maths_and_teacher_never_trains():
    student = nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1))
    teacher = MeanTeacher(nn.Sequential(nn.Linear(2, 1), nn.BatchNorm1d(1)))
    teacher.copy_from(student)
    before = teacher.model[0].weight.clone()
    with torch.no_grad():
        student[0].weight.add_(1.0)
        student[1].num_batches_tracked.fill_(7)
    teacher.update(student, momentum=0.9)
    assert torch.allclose(teacher.model[0].weight, 0.9 * before + 0.1 * (before + 1.0))
    assert teacher.model[1].num_batches_tracked.item() == 7  # integer buffers are copied
    assert not any(p.requires_grad for p in teacher.parameters())
    wrapper = nn.ModuleDict({"student": student, "teacher": teacher})
    wrapper.train()
    assert student.training and not teacher.model.training
    assert ema_momentum(0, 0.999) == 0.0 and ema_momentum(9, 0.999) == pytest.approx(0.9)
    assert ema_momentum(10**6, 0.999) == 0.999


def test_mask_aware_score_and_pseudo_mask_assignment():
    probs = torch.zeros((3, 10, 10))
    probs[0, 2:6, 2:6] = 0.9  # fits GT 0 well
    probs[1, 2:6, 2:6] = 0.6  # same box, less sure: loses GT 0, no other GT overlaps
    probs[2, 6:10, 6:10] = 0.8
    probs[2, 0, 0] = 0.3  # below the mask threshold: not in the mask-aware score
    assert mask_aware_scores(probs).tolist() == pytest.approx([0.9, 0.6, 0.8])
    gt = torch.tensor([[2.0, 2.0, 6.0, 6.0], [6.0, 6.0, 9.0, 9.0], [0.0, 7.0, 2.0, 9.0]])
    pred = torch.tensor([[2.0, 2.0, 6.0, 6.0], [2.0, 2.0, 6.0, 6.0], [6.0, 6.0, 10.0, 10.0]])
    cls = torch.tensor([0.5, 0.9, 0.64])
    masks, weights = assign_pseudo_masks(gt, pred, cls, probs)
    # rank sqrt(c * s): 0.671, 0.735, 0.716 -> prediction 1 claims GT 0 first, 0 finds nothing left
    assert torch.allclose(masks[0], probs[1])
    assert weights[0].item() == pytest.approx((0.9 ** 0.5 * 0.6) ** 0.5)
    # GT 1 (IoU 9/16 with prediction 2): its mask clipped to the GT box
    assert masks[1].sum().item() == pytest.approx(0.8 * 9) and masks[1][9].sum() == 0
    assert weights[1].item() == pytest.approx((0.8 * 0.8) ** 0.5)
    assert weights[2] == 0 and masks[2].sum() == 0  # no prediction overlaps it: box losses only
    empty_masks, empty_weights = assign_pseudo_masks(gt, pred[:0], cls[:0], probs[:0])
    assert empty_masks.shape == (3, 10, 10) and empty_weights.sum() == 0


def test_weighted_dice_hand_case():
    probs = torch.tensor([[[[1.0, 0.0]]], [[[0.5, 0.5]]]], requires_grad=True)
    pseudo = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 0.0]]]])
    loss = weighted_dice_loss(probs, pseudo, torch.tensor([0.5, 1.0]))
    # dice losses: 0 and 1 - 2 * 0.5 / (0.5 + 1) = 1/3; weighted sum over 2 valid instances
    assert loss.item() == pytest.approx((0.5 * 0 + 1.0 / 3) / 2, rel=1e-4)
    loss.backward()
    assert probs.grad[1].abs().sum() > 0
    zero = weighted_dice_loss(probs, pseudo, torch.zeros(2))
    assert zero.item() == 0 and zero.requires_grad


def _pseudo_labelled(iteration: int, masks: torch.Tensor, weights: torch.Tensor):
    """Loss inputs that hold only pseudo masks (the GT ``Instances`` fields a teacher-student model sets)."""
    fields = {"gt_pseudo_masks": masks, "gt_pseudo_weights": weights}
    return SimpleNamespace(iteration=iteration, instance_masks=lambda field, missing, fill=None: fields[field],
                           instance_values=lambda field: fields[field])


def test_pseudo_mask_loss_targets_the_binarised_teacher_mask():
    from detectron2.config import get_cfg

    from wsis_d2.config import add_wsis_config
    from wsis_d2.modeling.losses import PseudoMaskLoss

    cfg = get_cfg()
    add_wsis_config(cfg)
    cfg.MODEL.BOX_TEACHER.WARMUP_ITERS = 10
    soft = torch.tensor([[[[0.9, 0.6, 0.4, 0.1]]]])
    weights = torch.tensor([0.8])
    inputs = _pseudo_labelled(5, soft, weights)
    logits = torch.tensor([[[[1.0, 0.0, -1.0, 2.0]]]], requires_grad=True)
    loss = PseudoMaskLoss(cfg)(logits, inputs)["loss_pseudo_mask"]
    p = logits.detach().sigmoid()
    target = torch.tensor([1.0, 1.0, 0.0, 0.0])
    dice = 1 - 2 * (p.flatten() * target).sum() / ((p ** 2).sum() + (target ** 2).sum())
    # weight .5 x warm-up 5/10 x w .8 x dice(p, teacher mask > .5) over one claimed box
    assert loss.item() == pytest.approx(0.5 * 0.5 * 0.8 * dice.item(), rel=1e-4)
    loss.backward()
    assert logits.grad.abs().sum() > 0
    # a teacher sure of the same pixels gives the same loss: only the binary mask is the target
    sure = _pseudo_labelled(5, torch.tensor([[[[1.0, 1.0, 0.0, 0.0]]]]), weights)
    assert PseudoMaskLoss(cfg)(logits, sure)["loss_pseudo_mask"].item() == pytest.approx(loss.item())


def test_boxteacher_trains_from_boxes_and_pseudo_masks(tiny_shapes):
    cfg = small_config("BoxTeacher/R18_shapes.yaml", train="tiny_box")
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    batch = next(iter(Trainer.build_train_loader(cfg)))
    assert all(not d["instances"].has("gt_masks") for d in batch)
    labelled = model.pseudo_label(batch)
    assert all(x.gt_pseudo_masks.shape[0] == len(x) and x.gt_pseudo_weights.shape == (len(x),) for x in labelled)
    with EventStorage(600):  # past the shapes preset's START_ITER: the teacher labels the batch
        losses = model(batch)
    assert {"loss_prj", "loss_pairwise", "loss_pseudo_mask"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.student.parameters())
    # the teacher's masks, not GT masks, are what the student sees: a mask-reading loss is refused
    cfg.MODEL.CONDINST.MASK_LOSSES = ["DiceMaskLoss"]
    with pytest.raises(ValueError, match="DiceMaskLoss reads"):
        Trainer.build_model(cfg)


@pytest.mark.parametrize("strong", [True, False])
def test_strong_view_jitters_the_students_image_only(tiny_shapes, strong, monkeypatch):
    from wsis_d2.modeling.teacher.strong_aug import strong_photometric

    cfg = small_config("BoxTeacher/R18_shapes.yaml", train="tiny_box", MODEL__BOX_TEACHER__STRONG_AUG=str(strong),
                       MODEL__BOX_TEACHER__START_ITER="0")
    model = Trainer.build_model(cfg)
    batch = next(iter(Trainer.build_train_loader(cfg)))
    originals = [x["image"].clone() for x in batch]
    teacher_saw = []
    teacher_forward = model.teacher.model.forward

    def recording_forward(inputs):
        teacher_saw.extend(x["image"].clone() for x in inputs)
        return teacher_forward(inputs)

    monkeypatch.setattr(model.teacher.model, "forward", recording_forward)
    torch.manual_seed(0)
    with EventStorage(0):
        student = model.student_inputs(batch)
    assert len(teacher_saw) == len(batch)
    for x, s, original, seen in zip(batch, student, originals, teacher_saw):
        assert torch.equal(seen, original) and torch.equal(x["image"], original)  # the teacher's view is the plain one
        assert s["image"].shape == original.shape
        assert torch.equal(s["instances"].gt_boxes.tensor, x["instances"].gt_boxes.tensor)  # photometric only
    changed = [not torch.equal(s["image"].float(), o.float()) for s, o in zip(student, originals)]
    assert any(changed) if strong else not any(changed)
    # the jitter keeps 0-255, and its grey images (p 0.2) have three equal channels
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    views = torch.stack([strong_photometric(image, "BGR") for _ in range(30)])
    assert views.min() >= 0 and views.max() <= 255
    assert any(torch.allclose(v[0], v[1]) and torch.allclose(v[1], v[2]) for v in views)


def test_trainer_updates_the_teacher_and_resume_restores_it(tiny_shapes, tmp_path):
    cfg = small_config("BoxTeacher/R18_shapes.yaml", train="tiny_box", output_dir=tmp_path,
                       SOLVER__CHECKPOINT_PERIOD="2", TEST__EVAL_PERIOD="0")
    trainer = Trainer(cfg)
    initial = {k: v.clone() for k, v in trainer.model.teacher.state_dict().items()}
    trainer.train()
    trained = trainer.model.teacher.state_dict()
    assert any(not torch.equal(initial[k], trained[k]) for k in initial)  # EMAUpdateHook ran
    restored = Trainer.build_model(cfg)
    DetectionCheckpointer(restored).load(str(tmp_path / "model_final.pth"))
    for k, v in restored.teacher.state_dict().items():
        assert torch.equal(v, trained[k]), k


def test_resume_continues_with_the_saved_teacher(tiny_shapes, tmp_path):
    cfg = small_config("BoxTeacher/R18_shapes.yaml", train="tiny_box", output_dir=tmp_path,
                       SOLVER__CHECKPOINT_PERIOD="2", TEST__EVAL_PERIOD="0", SOLVER__MAX_ITER="2")
    first = Trainer(cfg)
    first.train()
    saved = {k: v.clone() for k, v in first.model.teacher.state_dict().items()}
    student = first.model.student.state_dict()
    assert any(not torch.equal(v, student[k[len("model."):]]) for k, v in saved.items())  # a copy would show
    cfg.defrost()
    cfg.SOLVER.MAX_ITER = 3
    resumed = Trainer(cfg)
    resumed.resume_or_load(resume=True)  # train_net.py --resume
    assert resumed.start_iter == 2
    for k, v in resumed.model.teacher.state_dict().items():
        assert torch.equal(v, saved[k]), k  # not the fresh copy of the student
    resumed.train()
    assert any(not torch.equal(v, saved[k]) for k, v in resumed.model.teacher.state_dict().items())


def test_pseudo_affinity_hand_case():
    from wsis_d2.modeling.losses import pseudo_affinity_loss
    from wsis_d2.modeling.losses.pairwise import valid_edges

    # 1 x 4 pseudo mask [1, 1, 0, 0] smooths (3 x 3 mean over the pixels that exist) to
    # [1, 2/3, 1/3, 0]: affinities 2/3 (0-1), 4/9 (1-2, dropped), 2/3 (2-3)
    pseudo = torch.tensor([[[[1.0, 1.0, 0.0, 0.0]]]])
    logits = torch.tensor([[[[2.0, 1.0, -1.0, 0.5]]]], requires_grad=True)
    valid = valid_edges(torch.ones((1, 1, 1, 4), dtype=torch.bool), 3, 1)
    in_box = torch.ones((1, 1, 1, 4), dtype=torch.bool)
    loss = pseudo_affinity_loss(logits, pseudo, torch.tensor([0.5]), valid, in_box, 3, 1, 0.5)
    p = torch.sigmoid(logits.detach()[0, 0, 0])

    def same(i, j):
        return -torch.log(p[i] * p[j] + (1 - p[i]) * (1 - p[j]))

    expected = 0.5 * (2 * same(0, 1) + 2 * same(2, 3)) / 4  # 4 directed edges, weight 0.5, one instance
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert logits.grad.abs().sum() > 0
    assert pseudo_affinity_loss(logits, pseudo, torch.zeros(1), valid, in_box, 3, 1).item() == 0


def test_student_only_weights_load_into_both_copies(tiny_shapes, tmp_path):
    from wsis_d2.modeling.checkpoint import WSISCheckpointer

    cfg = small_config("BoxTeacher/R18_shapes.yaml", train="tiny_box")
    torch.manual_seed(1)
    source = Trainer.build_model(cfg).student
    torch.save({"model": source.state_dict()}, tmp_path / "student_only.pth")  # e.g. a BoxInst checkpoint
    torch.manual_seed(2)
    model = Trainer.build_model(cfg)
    WSISCheckpointer(model).load(str(tmp_path / "student_only.pth"))
    for name, value in source.state_dict().items():
        assert torch.equal(model.student.state_dict()[name], value)
        assert torch.equal(model.teacher.model.state_dict()[name], value)
    # evaluation outputs carry no soft masks; pseudo-labelling turns them on only while it runs
    assert not model.teacher.model.keep_mask_probs


def test_pseudo_mask_iou_counts_kept_masks_only():
    pseudo = torch.zeros((3, 4, 4))
    pseudo[0, :2, :2] = 0.9  # 4 px vs GT 8 px: IoU 0.5
    pseudo[1] = 0.4  # kept but all below 0.5: empty mask, IoU 0
    pseudo[2] = 1.0  # not kept (weight 0)
    gt = torch.zeros((3, 4, 4), dtype=torch.bool)
    gt[0, :2, :4] = True
    gt[1, 0, 0] = True
    ious = pseudo_mask_ious(pseudo, torch.tensor([0.7, 0.2, 0.0]), gt)
    assert ious.tolist() == pytest.approx([0.5, 0.0])


def test_pseudo_mask_quality_is_logged_from_hidden_masks(tiny_shapes, tmp_path):
    cfg = small_config("BoxTeacher/R18_shapes.yaml", train="tiny_box", output_dir=tmp_path, TEST__EVAL_PERIOD="0",
                       WSIS__PSEUDO_MASK_EVAL__PERIOD="1", WSIS__PSEUDO_MASK_EVAL__DATASET="tiny_full",
                       WSIS__PSEUDO_MASK_EVAL__NUM_IMAGES="3")
    trainer = Trainer(cfg)
    trainer.train()
    history = trainer.storage.history("pseudo_mask/miou").values()
    assert len(history) == 2 and all(0.0 <= v <= 1.0 for v, _ in history)
    kept = trainer.storage.history("pseudo_mask/kept").values()
    assert all(0.0 <= v <= 1.0 for v, _ in kept)
    bad = small_config("BoxTeacher/R18_shapes.yaml", train="tiny_box", output_dir=tmp_path / "bad",
                       WSIS__PSEUDO_MASK_EVAL__PERIOD="1", WSIS__PSEUDO_MASK_EVAL__DATASET="tiny_box")
    with pytest.raises(ValueError, match="without masks"):
        Trainer(bad).train()
    no_teacher = small_config(train="tiny_full", output_dir=tmp_path / "plain", WSIS__PSEUDO_MASK_EVAL__PERIOD="1")
    with pytest.raises(ValueError, match="makes no pseudo masks"):
        Trainer(no_teacher)


def test_pseudo_mask_losses_start_at_start_iter_without_running_the_teacher(tiny_shapes, monkeypatch):
    from wsis_d2.modeling.losses.registry import linear_ramp

    assert [linear_ramp(i, 10, start=20) for i in (0, 19, 20, 25, 30, 99)] == [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]
    assert linear_ramp(19, 0, start=20) == 0.0 and linear_ramp(20, 0, start=20) == 1.0
    cfg = small_config("BoxTeacher/R18_shapes.yaml", train="tiny_box", MODEL__BOX_TEACHER__START_ITER="300",
                       MODEL__BOX_TEACHER__WARMUP_ITERS="10")
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    batch = next(iter(Trainer.build_train_loader(cfg)))
    calls = []
    original = model.teacher_predictions
    monkeypatch.setattr(model, "teacher_predictions", lambda *a, **k: calls.append(1) or original(*a, **k))
    with EventStorage(299):
        early = model(batch)
    assert not calls and early["loss_pseudo_mask"].item() == 0 and early["loss_pseudo_affinity"].item() == 0
    assert early["loss_prj"].item() > 0  # the box losses run as ever
    with EventStorage(305):
        late = model(batch)
    assert calls and torch.isfinite(late["loss_pseudo_mask"])  # from START_ITER on the teacher labels the batch


def test_teacher_feature_pairwise_option_reads_teacher_features_before_start_iter(tiny_shapes):
    """With SIM's pairwise term the student reads the teacher's features before START_ITER as well,
    while the teacher's masks still wait for it."""
    losses = ["ProjectionLoss", "TeacherFeaturePairwiseLoss", "PseudoMaskLoss", "PseudoAffinityLoss"]
    cfg = small_config("BoxTeacher/R18_shapes.yaml", train="tiny_box", MODEL__BOX_TEACHER__START_ITER="300",
                       MODEL__BOX_TEACHER__WARMUP_ITERS="0", MODEL__CONDINST__MASK_LOSSES=str(losses))
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    assert model.student_reads_teacher_features
    batch, full = box_batch_with_gt_masks("BoxTeacher/R18_shapes.yaml", cfg)
    # before START_ITER only the teacher's backbone and mask branch run: the same features
    predicted = model.teacher_predictions(batch, with_mask_feats=True)
    for feats, out in zip(model.teacher_mask_features(batch), predicted):
        assert torch.equal(feats, out["mask_feats"])
    teacher_from_gt_masks(model, full)  # claims every GT box
    teacher_feats = [out["mask_feats"] for out in model.teacher_predictions(batch, with_mask_feats=True)]
    predictions, detections = model.teacher_predictions, []
    model.teacher_predictions = lambda *args, **kwargs: detections.append(1) or predictions(*args, **kwargs)
    for iteration, claimed in ((250, False), (305, True)):  # the pairwise warm-up is over by 250
        detections.clear()
        with EventStorage(iteration):
            inputs = model.student_inputs(batch)
            losses = model.student(inputs)
        assert bool(detections) == claimed  # the teacher detects only once its masks are used
        for x, feats, student_input in zip(batch, teacher_feats, inputs):
            assert torch.equal(student_input["teacher_mask_feats"], feats)
            weights = student_input["instances"].gt_pseudo_weights
            assert bool(weights.gt(0).all()) if claimed else not weights.any(), iteration
        assert (losses["loss_pseudo_mask"].item() > 0) == claimed
        # the term reads the features its inputs carry: one feature everywhere leaves colour's edges alone,
        # a random feature per cell (similarity ~exp(-sqrt 2) between neighbours) drops the weaker ones. (Not
        # the teacher's own features against uniform ones: a randomly initialised teacher's may be so alike
        # that they drop no edge of a batch; that made this check fail once in a fresh clone's suite.)
        scrambled = torch.Generator().manual_seed(iteration)
        with EventStorage(iteration):
            uniform, distinct = (model.student([dict(x, teacher_mask_feats=make(x["teacher_mask_feats"]))
                                                for x in inputs])["loss_pairwise"]
                                 for make in (torch.ones_like,
                                              lambda f: torch.randn(f.shape, generator=scrambled)))
        assert not torch.isclose(uniform, distinct)
    sum(losses.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.student.parameters())

    cfg.MODEL.CONDINST.MASK_LOSSES = ["ProjectionLoss", "PairwiseColorLoss"]
    plain = Trainer.build_model(cfg)
    assert not plain.student_reads_teacher_features
    with EventStorage(305):
        assert all("teacher_mask_feats" not in x for x in plain.student_inputs(batch))


def test_pseudo_mask_evaluation_on_another_datasets_classes_is_refused():
    """A realphoto run once kept the shapes preset's pseudo-mask evaluation set (6 classes) for a 1-class
    photo training: SIM's prototypes were indexed out of range mid-training. Refused when built."""
    from wsis_d2.config import build_config
    from wsis_d2.evaluation.pseudo_masks import PseudoMaskQualityHook
    from wsis_d2.model_zoo import get_config_file

    cfg = build_config(get_config_file("SIM/MV2_pennfudan.yaml"), [
        "WSIS.PSEUDO_MASK_EVAL.PERIOD", "100", "WSIS.PSEUDO_MASK_EVAL.DATASET", "shapes_full"])
    with pytest.raises(ValueError, match=r"shapes_full has the classes \[.*\], the training set pennfudan_train_box "
                                         r"\['person'\]"):
        PseudoMaskQualityHook(cfg)
    cfg.WSIS.PSEUDO_MASK_EVAL.DATASET = "pennfudan_train"
    assert PseudoMaskQualityHook(cfg).dataset_name == "pennfudan_train"

"""Every config key wsis-d2 adds to detectron2's, with its default.

Defaults follow the papers and their reference configs (each method's paper is cited at its
node); the shapes configs in ``configs/`` override what a tiny CPU run needs.
"""
from detectron2.config import CfgNode as CN


def add_wsis_config(cfg: CN) -> CN:
    """Add wsis-d2's keys to a detectron2 config in place (idempotent) and return it."""
    if hasattr(cfg, "WSIS"):
        return cfg
    _C = cfg

    # ---------------------------------------------------------------- WSIS
    _C.WSIS = CN()
    # Where the generated "shapes" data lives; "" = $DETECTRON2_DATASETS/shapes
    # (detectron2's convention, default ./datasets/shapes).
    _C.WSIS.SHAPES_ROOT = ""
    # Number of val images drawn with predictions after each evaluation
    # (written to OUTPUT_DIR/visualizations); 0 disables the pictures.
    _C.WSIS.VIS_NUM_IMAGES = 4
    # Score threshold for the drawn predictions.
    _C.WSIS.VIS_SCORE_THRESH = 0.3
    # Every VIS_PERIOD training iterations (0 = never), a CondInst-based model's training masks
    # (image | GT box | predicted mask of a few instances) go to TensorBoard as "training_masks".
    _C.WSIS.VIS_PERIOD = 500
    # A training image that cannot be read (truncated, corrupt, another size than its JSON entry):
    # False stops training with one line naming it; True logs it and trains on another image
    # (what `train --skip-bad` sets).
    _C.WSIS.SKIP_BAD_IMAGES = False
    # Benchmark-only: every PERIOD iterations (0 = never), the mean IoU of a
    # teacher-student model's kept pseudo masks against the GT masks of the first
    # NUM_IMAGES images of DATASET (a view of the training images with masks,
    # which training itself never reads); logged as pseudo_mask/miou and /kept.
    _C.WSIS.PSEUDO_MASK_EVAL = CN()
    _C.WSIS.PSEUDO_MASK_EVAL.PERIOD = 0
    _C.WSIS.PSEUDO_MASK_EVAL.DATASET = ""
    _C.WSIS.PSEUDO_MASK_EVAL.NUM_IMAGES = 32

    # ---------------------------------------------------------------- input
    # Labelled points kept per object (the first K of its points; they were drawn
    # uniformly at random, so these are a uniform sample of K: an annotation
    # budget of K points); 0 keeps them all. PointSup's reference uses 10.
    _C.INPUT.POINTS_PER_INSTANCE = 0

    # ---------------------------------------------------------------- backbone
    # FCOS needs P3-P7: P6/P7 are stride-2 convs on P5 (FCOS paper, Sec. 3.1).
    _C.MODEL.FPN.TOP_LEVELS = 2

    # ---------------------------------------------------------------- MobileNetV2 backbone (issue 31)
    _C.MODEL.MOBILENET = CN()
    # Norm of every BatchNorm in the MobileNetV2 trunk: "FrozenBN" (ImageNet statistics and affine
    # kept fixed, detectron2's convention for small per-GPU batches), "BN", "SyncBN". FrozenBN and
    # MODEL.BACKBONE.FREEZE_AT 2 are the defaults until measured on the realphoto benchmark.
    _C.MODEL.MOBILENET.NORM = "FrozenBN"
    # ---------------------------------------------------------------- end of MobileNetV2 backbone

    # ---------------------------------------------------------------- FCOS
    _C.MODEL.FCOS = CN()
    _C.MODEL.FCOS.NUM_CLASSES = 80
    _C.MODEL.FCOS.IN_FEATURES = ["p3", "p4", "p5", "p6", "p7"]
    _C.MODEL.FCOS.FPN_STRIDES = [8, 16, 32, 64, 128]
    # Bias init of the classification logits: sigmoid(bias) = PRIOR_PROB.
    _C.MODEL.FCOS.PRIOR_PROB = 0.01
    # Candidates need a score above this before NMS.
    _C.MODEL.FCOS.INFERENCE_TH = 0.05
    _C.MODEL.FCOS.NMS_TH = 0.6
    _C.MODEL.FCOS.PRE_NMS_TOPK = 1000
    _C.MODEL.FCOS.POST_NMS_TOPK = 100
    # Threshold cls x ctrness (True, as CondInst) instead of cls alone.
    _C.MODEL.FCOS.THRESH_WITH_CTR = True
    _C.MODEL.FCOS.LOSS_ALPHA = 0.25
    _C.MODEL.FCOS.LOSS_GAMMA = 2.0
    # Boundaries between the FPN levels' object-size ranges (max regression
    # distance, in input pixels); one fewer than IN_FEATURES.
    _C.MODEL.FCOS.SIZES_OF_INTEREST = [64, 128, 256, 512]
    # Only locations within POS_RADIUS strides of a box centre are positives.
    _C.MODEL.FCOS.CENTER_SAMPLE = True
    _C.MODEL.FCOS.POS_RADIUS = 1.5
    _C.MODEL.FCOS.NUM_CLS_CONVS = 4
    _C.MODEL.FCOS.NUM_BOX_CONVS = 4
    _C.MODEL.FCOS.NORM = "GN"
    # Learnable per-level scale on the box regression.
    _C.MODEL.FCOS.USE_SCALE = True

    # ---------------------------------------------------------------- CondInst
    _C.MODEL.CONDINST = CN()
    # Pad batched images to a multiple of this; P6/P7 come from stride-2 convs
    # so P5's stride (32) is enough (detectron2's FPN would ask 128).
    _C.MODEL.CONDINST.SIZE_DIVISIBILITY = 32
    # Stride of the predicted mask logits (the paper used 2, AdelaiDet 4).
    _C.MODEL.CONDINST.MASK_OUT_STRIDE = 4
    # At most this many positive locations per batch get a mask loss
    # (random subset); -1 = all.
    _C.MODEL.CONDINST.MAX_PROPOSALS = 500
    # If > 0: instead keep this many positives per image, split evenly across
    # its GT boxes and ranked by cls x ctrness (BoxInst uses 64).
    _C.MODEL.CONDINST.TOPK_PROPOSALS_PER_IM = -1
    # Probability above which a pixel belongs to the predicted mask.
    _C.MODEL.CONDINST.MASK_THRESHOLD = 0.5
    _C.MODEL.CONDINST.MASK_HEAD = CN()
    _C.MODEL.CONDINST.MASK_HEAD.CHANNELS = 8
    _C.MODEL.CONDINST.MASK_HEAD.NUM_LAYERS = 3
    # Drop the two relative-coordinate input channels of the dynamic head.
    _C.MODEL.CONDINST.MASK_HEAD.DISABLE_REL_COORDS = False
    _C.MODEL.CONDINST.MASK_BRANCH = CN()
    _C.MODEL.CONDINST.MASK_BRANCH.IN_FEATURES = ["p3", "p4", "p5"]
    _C.MODEL.CONDINST.MASK_BRANCH.CHANNELS = 128
    _C.MODEL.CONDINST.MASK_BRANCH.NUM_CONVS = 4
    _C.MODEL.CONDINST.MASK_BRANCH.NORM = "BN"
    _C.MODEL.CONDINST.MASK_BRANCH.OUT_CHANNELS = 8
    # The mask losses applied to the dynamic head's logits, by name in
    # MASK_LOSS_REGISTRY (class names, like detectron2's registries); each
    # reads only the labels it needs.
    _C.MODEL.CONDINST.MASK_LOSSES = ["DiceMaskLoss"]
    # True: the controller reads the FCOS box tower's features detached, so the mask losses train
    # the controller and the mask branch but never the box tower (which also regresses the boxes
    # and the centerness). False (the papers): they share it.
    _C.MODEL.CONDINST.DETACH_CONTROLLER_INPUT = False

    # ---------------------------------------------------------------- mixed supervision
    # True: per-object supervision. Each GT object may carry a mask, a box alone, or a box and points,
    # and each configured mask loss trains only the objects that have its labels (masks: DiceMaskLoss;
    # points: PointLoss; box losses: the objects without a mask; teacher pseudo-mask losses: all, a
    # real mask replacing the pseudo mask). The training data may then have masks or points on only
    # some annotations; the losses must cover every kind it holds (checked before training). False: one
    # kind of label for the whole training set (a set with masks or points on only some annotations is
    # refused). CondInst-family models and Mask R-CNN with MixedMaskRCNNHead.
    _C.MODEL.MIXED_SUPERVISION = False
    # Under mixed supervision, a training image holding at least one drawn mask is sampled this many
    # times as often as one without (detectron2's RepeatFactorTrainingSampler; wsis_d2.data.sampling):
    # with masks on few objects most batches hold none. 1 = every image equally often.
    _C.DATALOADER.MASKED_IMAGE_REPEAT = 1.0

    # ---------------------------------------------------------------- BoxInst
    # Box-supervised losses (Tian et al., CVPR 2021), read by the losses themselves (ProjectionLoss,
    # PairwiseColorLoss and the terms that share its colour graph) in every model that uses them.
    _C.MODEL.BOXINST = CN()
    # Weight of ProjectionLoss (1 in BoxInst; BoxLevelSet uses 3).
    _C.MODEL.BOXINST.PROJECTION_WEIGHT = 1.0
    # Bottom rows of each original image left out of the colour graph of the colour losses
    # (the reference drops 10; scaled with the resize).
    _C.MODEL.BOXINST.BOTTOM_PIXELS_REMOVED = 10
    _C.MODEL.BOXINST.PAIRWISE = CN()
    # Neighbours: a SIZE x SIZE pattern with DILATION (8 edges per pixel).
    _C.MODEL.BOXINST.PAIRWISE.SIZE = 3
    _C.MODEL.BOXINST.PAIRWISE.DILATION = 2
    # Edges count only where the LAB colour similarity is at least this.
    _C.MODEL.BOXINST.PAIRWISE.COLOR_THRESH = 0.3
    # The pairwise weight ramps up linearly over this many iterations.
    _C.MODEL.BOXINST.PAIRWISE.WARMUP_ITERS = 10000
    _C.MODEL.BOXINST.PAIRWISE.WEIGHT = 1.0

    # Losses of BoxSupervisedMaskRCNNHead (detectron2's Mask R-CNN trained from
    # boxes), computed in each RoI's frame; they may read boxes only.
    _C.MODEL.ROI_MASK_HEAD.MASK_LOSSES = ["ProjectionLoss", "PairwiseColorLoss"]

    # ---------------------------------------------------------------- PointSup
    # PointLoss (Cheng et al., CVPR 2022): BCE of the mask logits at the labelled points.
    _C.MODEL.POINT_SUP = CN()
    _C.MODEL.POINT_SUP.WEIGHT = 1.0

    # ---------------------------------------------------------------- teacher-student
    # The EMA teacher of a teacher-student model (BoxTeacher, SIM; mean teacher: Tarvainen & Valpola,
    # NeurIPS 2017) and how its predictions claim GT boxes (BoxTeacher, Cheng et al., CVPR 2023, Sec. 3.2).
    _C.MODEL.TEACHER = CN()
    # EMA momentum of the teacher (min(MOMENTUM, 1 - 1/(iter+1)) early on); BoxTeacher's reference
    # uses .999, SIM's .9999 (its Base config sets it).
    _C.MODEL.TEACHER.MOMENTUM = 0.999
    # A teacher prediction claims a GT box when their IoU is at least this.
    _C.MODEL.TEACHER.IOU_THRESH = 0.5
    # Pixels above this probability make a prediction's mask-aware score (and the binary target of
    # BoxTeacher's PseudoMaskLoss).
    _C.MODEL.TEACHER.MASK_THRESH = 0.5
    # Evaluate/predict with the teacher (True, as the references) or the student.
    _C.MODEL.TEACHER.USE_FOR_INFERENCE = True

    # ---------------------------------------------------------------- BoxTeacher
    # Teacher-student training from boxes (Cheng et al., CVPR 2023); its teacher is MODEL.TEACHER.
    _C.MODEL.BOX_TEACHER = CN()
    # Weight of PseudoMaskLoss and its linear warm-up (iterations).
    _C.MODEL.BOX_TEACHER.MASK_WEIGHT = 0.5
    _C.MODEL.BOX_TEACHER.WARMUP_ITERS = 10000
    # The pseudo-mask losses (and their warm-up) start at this iteration; before it the student
    # learns from the box losses alone and the teacher is not run (the reference: 0).
    _C.MODEL.BOX_TEACHER.START_ITER = 0
    # PseudoAffinityLoss: weight, and the smoothed pseudo mask's affinity an edge needs.
    _C.MODEL.BOX_TEACHER.AFFINITY_WEIGHT = 0.1
    _C.MODEL.BOX_TEACHER.AFFINITY_THRESH = 0.5
    # Strong photometric augmentation of the student's view (ColorJitter .4/.4/.4/.1 p .8,
    # grayscale p .2); the teacher sees the plain image.
    _C.MODEL.BOX_TEACHER.STRONG_AUG = True

    # ---------------------------------------------------------------- SIM
    # Semantic-aware pseudo masks from class-wise prototypes + online copy-paste
    # (Li et al., CVPR 2023); defaults of the reference's Base-sim.yaml.
    _C.MODEL.SIM = CN()
    # Its EMA teacher, and how the teacher's predictions claim GT boxes: MODEL.TEACHER.
    # Teacher mask pixels above this feed the prototypes and the copy-paste bank.
    _C.MODEL.SIM.CONFIDENT_THRESH = 0.7
    # Prototypes per class (of MODEL.FCOS.NUM_CLASSES, dimension = mask-branch channels),
    # their EMA momentum, Sinkhorn (entropy weight, iterations), hard Gumbel-softmax temperature.
    _C.MODEL.SIM.NUM_PROTOTYPES = 10
    _C.MODEL.SIM.PROTOTYPE_MOMENTUM = 0.999
    _C.MODEL.SIM.SINKHORN_EPSILON = 0.05
    _C.MODEL.SIM.SINKHORN_ITERS = 3
    _C.MODEL.SIM.GUMBEL_TAU = 0.5
    # Pseudo labels (and copy-paste) from this iteration on; before it, BoxInst's losses only.
    _C.MODEL.SIM.START_ITER = 10000
    # M = (1 - w) teacher mask + w semantic map; foreground threshold (the value at rank
    # n_pos) clamped to this range; background below BG_THRESH; the rest ignored.
    _C.MODEL.SIM.SEMANTIC_WEIGHT = 0.5
    _C.MODEL.SIM.FG_THRESH_RANGE = (0.7, 0.8)
    _C.MODEL.SIM.BG_THRESH = 0.4
    # SemanticPseudoMaskLoss: focal loss weight, dice weight on pasted objects, linear ramp-up.
    _C.MODEL.SIM.LOSS_WEIGHT = 0.3
    _C.MODEL.SIM.PASTE_DICE_WEIGHT = 1.0
    _C.MODEL.SIM.RAMP_ITERS = 270000
    # FOCAL_ALPHA < 0: no class weighting (fvcore's sigmoid_focal_loss)
    _C.MODEL.SIM.FOCAL_ALPHA = 0.25
    _C.MODEL.SIM.FOCAL_GAMMA = 2.0
    # TeacherFeaturePairwiseLoss: edges whose colour x teacher-feature similarity is at least this.
    _C.MODEL.SIM.PAIRWISE_THRESH = 0.1
    # Online copy-paste: probability per image, bank of the last BANK_SIZE images, at most
    # MAX_OBJECTS pasted (half of a bank image's), sampled by score ** SCORE_POWER; pasted
    # objects need MIN_AREA visible pixels; own objects whose box is covered at least
    # MAX_OCCLUSION are dropped.
    _C.MODEL.SIM.COPY_PASTE = CN()
    _C.MODEL.SIM.COPY_PASTE.PROB = 0.5
    _C.MODEL.SIM.COPY_PASTE.BANK_SIZE = 50
    _C.MODEL.SIM.COPY_PASTE.MAX_OBJECTS = 3
    _C.MODEL.SIM.COPY_PASTE.SCORE_POWER = 3.0
    _C.MODEL.SIM.COPY_PASTE.MIN_AREA = 16
    _C.MODEL.SIM.COPY_PASTE.MAX_OCCLUSION = 0.5

    # ---------------------------------------------------------------- BoxLevelSet
    # LevelSetLoss (Li et al., ECCV 2022): Chan-Vese energy inside the box.
    _C.MODEL.BOXLEVELSET = CN()
    # Weight of the energy on the normalised image.
    _C.MODEL.BOXLEVELSET.IMAGE_WEIGHT = 0.05
    # Weight of the energy on the (guided-filtered) mask-branch features; 0 disables.
    _C.MODEL.BOXLEVELSET.DEEP_WEIGHT = 5.0
    # Weight of the contour length (total variation) term.
    _C.MODEL.BOXLEVELSET.LENGTH_WEIGHT = 1e-5
    # Guided filter (stands in for the reference's CUDA tree filter).
    _C.MODEL.BOXLEVELSET.FILTER_RADIUS = 2
    _C.MODEL.BOXLEVELSET.FILTER_EPS = 1e-2
    return cfg

"""detectron2's ``DefaultTrainer`` with wsis-d2's data mapper, evaluator and prediction pictures.

Models with an EMA teacher get :class:`EMAUpdateHook` (and, when asked,
:class:`~wsis_d2.evaluation.pseudo_masks.PseudoMaskQualityHook`); every run gets
:class:`~wsis_d2.engine.collapse_watch.MaskCollapseWatch`. Everything else (optimizer, LR schedule, checkpoints, ``--resume``, loss /
time / ETA logging, TensorBoard, periodic evaluation) is DefaultTrainer's own.
"""
import logging
import os
import re
import weakref

from detectron2.data import (DatasetFromList, MetadataCatalog, build_detection_test_loader,
                             build_detection_train_loader, get_detection_dataset_dicts)
from detectron2.engine import DefaultTrainer, TrainerBase
from detectron2.utils import comm

from ..config import ConfigError
from ..data.checks import AnnotationError
from ..data.config_checks import check_datasets_fit_model, check_training_supervision
from ..data.mapper import WSISDatasetMapper
from ..data.sampling import build_masked_image_sampler
from ..evaluation import build_coco_evaluator
from ..evaluation.pseudo_masks import PseudoMaskQualityHook
from ..modeling.checkpoint import WSISCheckpointer
from ..modeling.losses.per_object import configured_mask_losses, kinds_trained
from ..modeling.teacher import EMAUpdateHook
from .collapse_watch import MaskCollapseWatch
from .loss_check import FileNameRecordingLoader, NonFiniteLossError, check_losses_of
from .training_masks import TrainingMaskPictureHook, recorders
from .visualize import save_prediction_pictures

logger = logging.getLogger(__name__)


def error_line(error: Exception) -> str:
    """The message of ``error``; of one re-raised from a DataLoader worker (whose message is the
    worker's whole traceback), only the original message."""
    text = str(error).strip()
    if "Original Traceback" in text:
        text = re.sub(r"^[\w.]+: ", "", text.splitlines()[-1])
    return text


class _OneLineTrainingErrors(logging.Filter):
    """detectron2's training loop logs any exception with its traceback before raising it again; a
    :class:`ConfigError` / :class:`AnnotationError` (an unreadable image met in training) is logged as
    its one line, which is also what the command prints (so is a :class:`NonFiniteLossError`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (ConfigError, AnnotationError, NonFiniteLossError)):
            record.msg, record.args, record.exc_info, record.exc_text = f"Stopped: {error_line(error)}", (), None, None
        return True


_TRAIN_LOOP_LOGGER = logging.getLogger("detectron2.engine.train_loop")
if not any(isinstance(f, _OneLineTrainingErrors) for f in _TRAIN_LOOP_LOGGER.filters):
    _TRAIN_LOOP_LOGGER.addFilter(_OneLineTrainingErrors())


def training_dataset_dicts(cfg) -> list:
    """detectron2's training dicts of ``cfg.DATASETS.TRAIN`` (as its train loader reads them), with a
    :class:`ConfigError` instead of its assertion when no image is left to train from."""
    names = list(cfg.DATASETS.TRAIN)
    if not names:
        raise ConfigError("DATASETS.TRAIN is empty; name the dataset(s) to train on")
    try:
        return get_detection_dataset_dicts(
            names, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
            min_keypoints=cfg.MODEL.ROI_KEYPOINT_HEAD.MIN_KEYPOINTS_PER_IMAGE if cfg.MODEL.KEYPOINT_ON else 0,
            proposal_files=cfg.DATASETS.PROPOSAL_FILES_TRAIN if cfg.MODEL.LOAD_PROPOSALS else None)
    except AssertionError as e:  # "Dataset 'x' is empty!" / "No valid data found in x."
        files = [MetadataCatalog.get(n).get("json_file", n) for n in names]
        raise ConfigError(f"DATASETS.TRAIN {', '.join(names)} ({', '.join(files)}): no image with an annotation "
                          f"to train from ({e}); its 'annotations' list is empty or holds only iscrowd objects") from None


class Trainer(DefaultTrainer):
    """Stops at a NaN or infinite loss naming the iteration, the loss and the batch's files
    (:mod:`~wsis_d2.engine.loss_check`); CondInst-based models put pictures of their training masks into
    TensorBoard every ``WSIS.VIS_PERIOD`` iterations (:mod:`~wsis_d2.engine.training_masks`)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        check_losses_of(self._trainer)

    def build_hooks(self):
        """DefaultTrainer's hooks; models with an EMA teacher also update it after each step,
        before the checkpointer saves it. (Called inside DefaultTrainer's constructor, right after
        it made its checkpointer: the teacher-aware one takes its place before any hook uses it.)"""
        self.checkpointer = WSISCheckpointer(self.model, self.cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        hooks = super().build_hooks()
        model = getattr(self.model, "module", self.model)
        if hasattr(model, "update_teacher"):
            hooks.insert(1, EMAUpdateHook())
            if getattr(model, "start_iter", 0) >= self.cfg.SOLVER.MAX_ITER:  # nothing else in the log would say so
                logger.warning(f"{type(model).__name__} starts its pseudo labels at iteration {model.start_iter} "
                               f"(START_ITER), not before SOLVER.MAX_ITER {self.cfg.SOLVER.MAX_ITER}: this run "
                               "trains with the box losses only")
        if self.cfg.WSIS.PSEUDO_MASK_EVAL.PERIOD > 0:
            if not hasattr(model, "pseudo_label"):  # every process stops, not just the main one
                raise ValueError(f"WSIS.PSEUDO_MASK_EVAL.PERIOD is set, but {type(model).__name__} makes no "
                                 "pseudo masks (only teacher-student models such as BoxTeacher and SIM do)")
            if comm.is_main_process():
                # after the teacher's update, before the writer that flushes this step's scalars
                hooks.insert(len(hooks) - 1, PseudoMaskQualityHook(self.cfg))
        if comm.is_main_process():  # the losses it reads are in the main process's storage
            hooks.insert(len(hooks) - 1, MaskCollapseWatch.from_config(self.cfg))  # before the writer
        if self.cfg.WSIS.VIS_PERIOD > 0 and comm.is_main_process() and recorders(model):
            # before the writer, which saves the picture to TensorBoard with this step's scalars
            hooks.insert(len(hooks) - 1, TrainingMaskPictureHook(self.cfg.WSIS.VIS_PERIOD))
        return hooks

    def state_dict(self):
        """DefaultTrainer's; the inner trainer's state (the optimizer's) is saved under ``_trainer`` as
        detectron2 after v0.6 does (v0.6 saves none, and resumes with a fresh optimizer)."""
        ret = super().state_dict()
        ret.setdefault("_trainer", self._trainer.state_dict())
        return ret

    def load_state_dict(self, state_dict):
        """A checkpoint with or without ``_trainer``: detectron2 after v0.6 requires it (``KeyError:
        '_trainer'`` on a checkpoint written under v0.6), v0.6 ignores it."""
        TrainerBase.load_state_dict(self, state_dict)
        if "_trainer" in state_dict:
            self._trainer.load_state_dict(state_dict["_trainer"])
        else:
            logger.warning("The checkpoint holds no optimizer state (written under detectron2 v0.6): "
                           "the optimizer's momentum starts afresh")

    @classmethod
    def build_train_loader(cls, cfg):
        """detectron2's loader with :class:`WSISDatasetMapper`; then, with the training sets loaded,
        their classes are checked against the model's and the test sets' (before training starts), and
        their labels against the mask losses (:func:`check_training_supervision`).

        Raises:
            ConfigError: the training sets hold no image with an annotation to train from, or labels
                the mask losses cannot train from.
        """
        dataset = training_dataset_dicts(cfg)
        mask_losses = configured_mask_losses(cfg)
        check_training_supervision(cfg, dataset, cfg.DATASETS.TRAIN, mask_losses,
                                   {name: kinds_trained(labels) for name, labels in mask_losses.items()})
        mapper = WSISDatasetMapper(cfg, is_train=True)
        if mapper.skip_bad_images:  # serialized like detectron2's own copy, not a list per worker
            mapper.fallback_dataset = DatasetFromList(dataset, copy=False)
        loader = build_detection_train_loader(cfg, mapper=mapper, dataset=dataset,
                                              sampler=build_masked_image_sampler(cfg, dataset))
        check_datasets_fit_model(cfg, cfg.DATASETS.TRAIN, cfg.DATASETS.TEST)
        return FileNameRecordingLoader(loader)  # a non-finite loss names the batch's files

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        return build_detection_test_loader(cfg, dataset_name, mapper=WSISDatasetMapper(cfg, is_train=False))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_coco_evaluator(cfg, dataset_name, output_folder)

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """Evaluate on ``DATASETS.TEST``, then draw a few predictions into OUTPUT_DIR/visualizations."""
        results = super().test(cfg, model, evaluators)
        if comm.is_main_process() and cfg.WSIS.VIS_NUM_IMAGES > 0:
            for name in cfg.DATASETS.TEST:
                paths = save_prediction_pictures(cfg, model, name, os.path.join(cfg.OUTPUT_DIR, "visualizations"))
                if paths:
                    logger.info(f"Saved {len(paths)} prediction pictures of {name}, e.g. {paths[0]}")
        return results

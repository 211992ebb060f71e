"""detectron2's checkpointer, aware of teacher-student models, with atomic saves and a resume that
falls back past an unreadable checkpoint.

A checkpoint of a teacher-student model holds ``student.*`` and ``teacher.model.*``.
Weights for the student alone (ImageNet backbones, a BoxInst checkpoint) hold
neither prefix: matched by suffix they would fit both copies, so they are loaded
into the student and the teacher starts as its copy.

A checkpoint (and ``last_checkpoint``) is written to a temporary file renamed over the target, so
a kill during a save leaves the previous files intact. A file that cannot be read anyway (a disk
filled up, a copy cut short) makes ``--resume`` warn and take the newest readable checkpoint.
"""
import logging
import os
import zipfile
from typing import List, Optional

import torch
from detectron2.checkpoint import DetectionCheckpointer

from ..config import ConfigError
from ..utils.paths import write_atomically

logger = logging.getLogger(__name__)


def weights_file_problem(weights: str) -> Optional[str]:
    """:func:`checkpoint_problem` of a local ``.pth`` / ``.pt`` weights path (other files and URLs: None)."""
    if "://" in weights or not weights.endswith((".pth", ".pt")) or not os.path.isfile(weights):
        return None
    return checkpoint_problem(weights)


def checkpoint_problem(path: str) -> Optional[str]:
    """Why the checkpoint file ``path`` cannot be loaded (missing, cut short, corrupt), or None.

    ``torch.save`` writes a zip archive whose directory sits at its end and whose entries carry CRCs, so
    a file cut short is no zip and a corrupt one fails ``testzip``; an older non-zip file is test-loaded.
    """
    if not os.path.isfile(path):
        return f"{path}: no such file"
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            return None if bad is None else f"{path}: its entry {bad} is corrupt"
        torch.load(path, map_location="cpu", weights_only=False)
        return None
    except Exception as e:  # torch.load's errors of a broken file vary: RuntimeError, EOFError, pickle's
        return f"{path}: cannot be read as a checkpoint ({type(e).__name__}: {e})"


def unloaded_weight_names(incompatible) -> List[str]:
    """Names of the model's weights that a load (``_load_model``'s result) left at their initial values:
    those the checkpoint lacks and those whose shape differs. detectron2 only logs them, so a checkpoint
    of another model would otherwise predict with a partly random one."""
    if incompatible is None:
        return []
    # fvcore drops a shape-mismatched weight before loading, so it is listed as missing too
    return list(dict.fromkeys(list(incompatible.missing_keys) + [name for name, *_ in incompatible.incorrect_shapes]))


def unloaded_weights_error(checkpoint: str, unloaded: List[str], model, config_file: str) -> ConfigError:
    """The refusal of a checkpoint that leaves ``unloaded`` weights of ``config_file``'s ``model`` unloaded."""
    return ConfigError(f"{checkpoint}: lacks (or holds another shape of) {len(unloaded)} of the "
                       f"{len(model.state_dict())} weights of {config_file}'s model (e.g. {unloaded[:3]}); "
                       "is it a checkpoint of that config?")


class WSISCheckpointer(DetectionCheckpointer):
    """After a load, ``unloaded_weights`` holds :func:`unloaded_weight_names` of it."""

    unloaded_weights: List[str] = []

    def save(self, name: str, **kwargs) -> None:
        """fvcore's ``save`` (same contents), written atomically."""
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info(f"Saving checkpoint to {save_file}")
        write_atomically(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        path = os.path.join(self.save_dir, "last_checkpoint")
        write_atomically(path, lambda f: f.write(last_filename_basename.encode()))

    def resume_or_load(self, path: str, *, resume: bool = True):
        """fvcore's ``resume_or_load``; when resuming, a last checkpoint that cannot be read is reported
        and the newest readable one of ``save_dir`` is loaded instead.

        Raises:
            ConfigError: no checkpoint of ``save_dir`` can be read.
        """
        if not (resume and self.has_checkpoint()):
            return super().resume_or_load(path, resume=resume)
        last = self.get_checkpoint_file()
        others = sorted((f for f in self.get_all_checkpoint_files() if os.path.basename(f) != os.path.basename(last)),
                        key=os.path.getmtime, reverse=True)
        errors = []
        for candidate in [last] + others:
            if not os.path.basename(candidate):
                errors.append(f"{os.path.join(self.save_dir, 'last_checkpoint')} is empty")
                continue
            problem = checkpoint_problem(candidate)
            if problem is not None:
                errors.append(problem)
                continue
            loaded = self.load(candidate)
            if errors:
                logger.warning(f"{errors[0]}; resumed from the newest readable checkpoint {candidate} instead")
            return loaded
        raise ConfigError(f"--resume: no checkpoint in {self.save_dir} can be read ({'; '.join(errors)}); "
                          "start without --resume or pass MODEL.WEIGHTS")

    def _load_model(self, checkpoint):
        model = getattr(self.model, "module", self.model)
        student, teacher = getattr(model, "student", None), getattr(model, "teacher", None)
        if student is None or teacher is None or any(k.startswith("teacher.") for k in checkpoint["model"]):
            incompatible = super()._load_model(checkpoint)
        else:
            incompatible = DetectionCheckpointer(student)._load_model(checkpoint)
            teacher.copy_from(student)
        self.unloaded_weights = unloaded_weight_names(incompatible)
        return incompatible

"""Set up a run: its config checked, frozen and logged, and the data it names made where needed."""
import os

from detectron2.engine import default_setup
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..autolabel.pseudo_views import SHAPES_PSEUDO_BACKENDS, ensure_pseudo_view, register_shapes_pseudo
from ..config import ConfigError, build_config
from ..data.register import register_shapes, shapes_root
from ..data.shapes import ensure_shapes
from ..modeling.checkpoint import weights_file_problem


def check_weights(cfg, eval_only: bool, resume: bool) -> None:
    """Raise :class:`ConfigError` when the run would start from weights it cannot have.

    ``--resume`` with a checkpoint in ``OUTPUT_DIR`` loads that checkpoint; otherwise
    ``MODEL.WEIGHTS`` is loaded: a local path must exist, and a URL is downloaded now (or found in
    detectron2's cache). ``--eval-only`` without either would score a randomly initialised model, so it
    is refused.
    """
    if resume and os.path.isfile(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint")):
        return
    weights = cfg.MODEL.WEIGHTS
    # the R-50 configs name ImageNet backbone weights: evaluating them would score an untrained head
    if eval_only and (not weights or "ImageNetPretrained" in weights):
        raise ConfigError("--eval-only needs trained weights: add MODEL.WEIGHTS path/to/model_final.pth "
                          f"(or --resume with a checkpoint in OUTPUT_DIR {cfg.OUTPUT_DIR}); "
                          f"MODEL.WEIGHTS is {weights!r}")
    if weights and "://" not in weights and not os.path.isfile(weights):
        raise ConfigError(f"MODEL.WEIGHTS: {weights}: no such file")
    problem = weights_file_problem(weights)  # cut short or corrupt: one line now, not torch's traceback later
    if problem is not None:
        raise ConfigError(f"MODEL.WEIGHTS: {problem}")
    if "://" in weights:
        _fetch_weights(weights)


def _fetch_weights(url: str) -> None:
    # detectron2 downloads (or finds in its cache) a URL only after the training data has loaded, minutes
    # into a COCO run, and a machine without internet then ends in a long urllib traceback
    from detectron2.utils.file_io import PathManager

    try:
        PathManager.get_local_path(url)
    except OSError as e:  # urllib's URLError is an OSError
        raise ConfigError(f"MODEL.WEIGHTS: {url} cannot be downloaded ({e}); fetch it on a machine with "
                          "internet and pass MODEL.WEIGHTS path/to/the/file") from e


def setup(args):
    """Config of a ``train_net.py`` run: merged, frozen, logged; the shapes data generated if needed."""
    cfg = build_config(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="wsis_d2", abbrev_name="wsis")
    prepare_datasets(cfg)
    return cfg


def prepare_datasets(cfg) -> None:
    """Generate the shapes data (and the pseudo-mask views a config names) if its datasets need it;
    called before evaluators read the JSON. A ``WSIS.SHAPES_ROOT`` other than the default registers the
    shapes names at that folder.

    In a multi-process run the main process writes it while the others wait.
    """
    root = shapes_root(cfg)
    if root != shapes_root():
        register_shapes(root)
        register_shapes_pseudo(root)
    names = list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST)
    if any(n.startswith("shapes_") for n in names):
        if comm.is_main_process():
            ensure_shapes(root)
            for backend in SHAPES_PSEUDO_BACKENDS:
                if f"shapes_pseudo_{backend}" in names:
                    ensure_pseudo_view(root, backend)
        comm.synchronize()

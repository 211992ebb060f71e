"""The train / evaluate entry used by ``projects/train_net.py`` and ``wsis-d2 train``."""
import contextlib
import json
import os
import sys

from detectron2.engine import default_argument_parser
from detectron2.utils import comm

from ..config import ConfigError, build_config
from ..config.ranges import check_run_config
from ..data.checks import AnnotationError
from ..modeling.checkpoint import WSISCheckpointer, unloaded_weights_error
from .launch import launch
from .run_lock import training_lock
from .setup import check_weights, setup
from .loss_check import NonFiniteLossError
from .trainer import Trainer, error_line


def run(args):
    """Train (optionally resuming) or, with ``--eval-only``, evaluate ``MODEL.WEIGHTS``; returns the
    final COCO results.

    Evaluation writes ``OUTPUT_DIR/inference/metrics.json`` (the COCO metrics) and
    prediction pictures in ``OUTPUT_DIR/visualizations``.
    """
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        checkpointer = WSISCheckpointer(model, save_dir=cfg.OUTPUT_DIR)
        checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=args.resume)
        if checkpointer.unloaded_weights:  # evaluating it would score a partly random model
            resumed = args.resume and checkpointer.has_checkpoint()
            loaded = checkpointer.get_checkpoint_file() if resumed else cfg.MODEL.WEIGHTS
            raise unloaded_weights_error(loaded, checkpointer.unloaded_weights, model, args.config_file)
        results = Trainer.test(cfg, model)
        if comm.is_main_process():
            out = os.path.join(cfg.OUTPUT_DIR, "inference", "metrics.json")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "w") as f:
                json.dump(results, f, indent=1)
        return results
    # main() checked the config and took the lock before starting the processes; a direct call
    # (pipelines) does both here
    check_run_config(cfg, comm.get_world_size())
    with training_lock(cfg.OUTPUT_DIR) if comm.get_world_size() == 1 else contextlib.nullcontext():
        trainer = Trainer(cfg)
        trainer.resume_or_load(resume=args.resume)
        trainer.train()
    # DefaultTrainer keeps its final evaluation here (it returns it only with TEST.EXPECTED_RESULTS)
    return getattr(trainer, "_last_eval_results", None)


_EXAMPLES = """
Examples:
    {prog} --config-file configs/CondInst/R18_shapes.yaml
    {prog} --config-file CFG.yaml --eval-only MODEL.WEIGHTS output/.../model_final.pth
    {prog} --config-file CFG.yaml --resume                # continue from OUTPUT_DIR's last checkpoint
    {prog} --config-file CFG.yaml --num-gpus 2            # 2 processes (gloo without CUDA)
    {prog} --config-file CFG.yaml SOLVER.BASE_LR 0.005    # KEY VALUE overrides after the flags
"""


def main(argv=None, prog=None):
    """Parse detectron2's train_net flags and launch :func:`run` (N CPU processes with gloo when
    ``--num-gpus N`` is given on a machine without CUDA). ``prog`` names the command in ``--help``."""
    prog = prog or os.path.basename(sys.argv[0])
    parser = default_argument_parser(epilog=_EXAMPLES.format(prog=prog))
    parser.prog = prog
    parser.add_argument("--skip-bad", action="store_true",
                        help="log training images that cannot be read and train on the others "
                             "(WSIS.SKIP_BAD_IMAGES True); default: stop with one line naming the image")
    args = parser.parse_args(argv)
    if args.skip_bad:
        args.opts = list(args.opts) + ["WSIS.SKIP_BAD_IMAGES", "True"]
    print("Command Line Args:", args)
    # checked once here, before any process starts, so a mistake is one line and not a traceback per process
    try:
        cfg = build_config(args.config_file, args.opts)
        check_weights(cfg, args.eval_only, args.resume)
        check_run_config(cfg, args.num_gpus * args.num_machines, training=not args.eval_only)
        # one training per OUTPUT_DIR, held by this process while the workers run
        lock = contextlib.nullcontext() if args.eval_only else training_lock(cfg.OUTPUT_DIR)
        with lock:
            launch(run, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                   dist_url=args.dist_url, args=(args,))
    except (ConfigError, AnnotationError, NonFiniteLossError) as e:  # found once the data or weights load (here when one process)
        raise SystemExit(f"error: {error_line(e)}")

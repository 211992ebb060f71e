"""``wsis-d2 pointwssis``: the PointWSSIS workflow from a semi view to a trained student."""
import argparse
import hashlib
import logging
import os

from detectron2.utils.logger import setup_logger

from ..config import ConfigError
from ..data.checks import AnnotationError
from ..data.register import register_wsis_coco_instances, shapes_root
from ..data.shapes import ensure_shapes
from ..model_zoo import get_config_file
from ..utils.args import add_config_overrides, config_overrides, load_json_arg, positive_int
from .pointwssis import run_pipeline


def pointwssis_main(argv=None):
    parser = argparse.ArgumentParser(
        prog="wsis-d2 pointwssis",
        description="PointWSSIS end to end: teacher on the fully-labelled images, MaskRefineNet, point-guided "
                    "pseudo masks (OUTPUT_DIR/pseudo/pseudo_labels.json), student. A rerun resumes after the last "
                    "finished step.")
    parser.add_argument("--semi-json", help="a semi view (wsis-d2 views --views semi_<p>); default: shapes "
                                            "train_semi_<percent>.json")
    parser.add_argument("--percent", type=float, default=10, help="shapes split when --semi-json is not given")
    parser.add_argument("--image-root", help="image folder of --semi-json (default: the shapes root)")
    parser.add_argument("--val-json", help="with --semi-json: COCO JSON with masks to evaluate on (registered as "
                                           "pointwssis_val_<hash of its path>; or name a registered set with "
                                           "DATASETS.TEST)")
    parser.add_argument("--val-image-root", help="image folder of --val-json (default: --image-root)")
    parser.add_argument("--config-file", default=None, help="teacher/student config (default CondInst/R18_shapes)")
    parser.add_argument("--output-dir", default=None)
    parser.add_argument("--refiner-iters", type=positive_int, default=1500)
    parser.add_argument("--crop-size", type=positive_int, default=64)
    add_config_overrides(parser)
    args = parser.parse_args(argv)
    args.opts = config_overrides(parser, args.opts)
    setup_logger(name="wsis_d2", abbrev_name="wsis")
    logging.getLogger("wsis_d2").setLevel(logging.INFO)
    if args.semi_json is None:
        if args.val_json:
            parser.error("--val-json goes with --semi-json; the shapes splits evaluate on shapes val")
        root = shapes_root()
        files = ensure_shapes(root)
        key = f"semi_{args.percent:g}"
        if key not in files:
            parser.error(f"the shapes data has no {key} view; choose from {sorted(k for k in files if 'semi' in k)}")
        args.semi_json, args.image_root = files[key], args.image_root or root
    elif not args.image_root:
        parser.error("--image-root is required with --semi-json")
    elif args.val_json:
        if "DATASETS.TEST" in args.opts:
            parser.error("--val-json and DATASETS.TEST both name the evaluation set: give one")
        load_json_arg(args.val_json, parser)  # a missing or broken file stops here, before any training
        # named after the file, so that the run's recorded inputs (and a resume's check of them) include it
        val_name = "pointwssis_val_" + hashlib.sha1(os.path.abspath(args.val_json).encode()).hexdigest()[:8]
        register_wsis_coco_instances(val_name, {}, args.val_json, args.val_image_root or args.image_root,
                                     replace=True)
        args.opts += ["DATASETS.TEST", f"('{val_name}',)"]
    elif "DATASETS.TEST" not in args.opts:
        parser.error("with --semi-json, name the evaluation set: --val-json VAL.json (COCO with masks), or "
                     "DATASETS.TEST \"('my_val',)\" for a dataset registered in Python")
    if "MODEL.FCOS.NUM_CLASSES" not in args.opts:
        semi = load_json_arg(args.semi_json, parser)
        categories = semi.get("categories", []) if isinstance(semi, dict) else []
        args.opts += ["MODEL.FCOS.NUM_CLASSES", str(len(categories))]

    config = args.config_file or get_config_file("CondInst/R18_shapes.yaml")
    out = args.output_dir or f"output/PointWSSIS/{os.path.splitext(os.path.basename(args.semi_json))[0]}"
    try:
        results = run_pipeline(args.semi_json, args.image_root, config, out, args.opts, args.refiner_iters,
                               args.crop_size)
    except (AnnotationError, ConfigError) as e:
        raise SystemExit(f"error: {e}")
    print(f"student: {results}")

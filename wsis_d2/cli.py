"""``wsis-d2`` console entry point.

    wsis-d2 train --config-file configs/CondInst/R18_shapes.yaml [detectron2 train_net flags]
    wsis-d2 shapes [--root DIR] [--num-train N --num-val N --seed S]
    wsis-d2 configs
    wsis-d2 autolabel --input BOXES.json --image-root DIR --backend box|grabcut|model [--output OUT.json]
    wsis-d2 convert --format instance-png --images DIR --masks DIR --output OUT.json [--category NAME]
    wsis-d2 convert --format labelme --input DIR --output OUT.json
    wsis-d2 pointwssis --semi-json SEMI.json --image-root DIR --val-json VAL.json [--config-file C --output-dir O] [KEY VALUE ...]
    wsis-d2 report --results FILE.json ... [--output-dir DIR] [--variants] [--baseline METHOD [--exclude-class C ...] [--seeds S ...]]
    wsis-d2 views --input COCO.json --views box,point,semi_10 [--output-dir DIR --num-points 10 --seed 0]
"""
import argparse
import os
import sys


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _load_json(path, parser):
    """The parsed JSON file at ``path``; a missing, unreadable or non-JSON file ends the command with its name."""
    import json

    if not os.path.isfile(path):
        parser.error(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SystemExit(f"error: {path}: not valid JSON ({e})")


def _train(argv):
    from .engine import main

    main(argv, prog="wsis-d2 train")


def _shapes(argv):
    from .data.register import shapes_root
    from .data.shapes import ensure_shapes

    parser = argparse.ArgumentParser(prog="wsis-d2 shapes", description="Generate the embedded shapes dataset.")
    parser.add_argument("--root", default=None, help="output folder (default $DETECTRON2_DATASETS/shapes)")
    parser.add_argument("--num-train", type=_positive_int, help="default 400")
    parser.add_argument("--num-val", type=_positive_int, help="default 100")
    parser.add_argument("--seed", type=int, help="default 0")
    args = parser.parse_args(argv)
    # only the settings given are compared with existing data (and passed on to a new one)
    asked = {k: v for k, v in vars(args).items() if k != "root" and v is not None}
    try:
        files = ensure_shapes(args.root or shapes_root(), **asked)
    except FileExistsError as e:
        raise SystemExit(f"error: {e}")
    for view, path in files.items():
        print(f"{view:>8}: {path}")


def _configs(argv):
    from .model_zoo import get_config_file, list_configs

    for name in list_configs():
        print(f"{name:<28} {get_config_file(name)}")


def _views(argv):
    import json
    from pathlib import Path

    from .data.checks import AnnotationError, check_coco_instances
    from .data.views import make_view, parse_view

    parser = argparse.ArgumentParser(
        prog="wsis-d2 views",
        description="Make weak-supervision views of a COCO instance JSON with masks: 'box' (masks "
                    "stripped), 'point' (boxes + N PointSup points per object labelled from the masks, "
                    "masks stripped), 'semi_<p>' (p % of the images keep masks, the rest boxes + one "
                    "centre point per object), 'full'. Writes <output-dir>/<input stem>_<view>.json; "
                    "never overwrites the input, nor an existing output unless --overwrite.")
    parser.add_argument("--input", required=True, help="COCO instance JSON with 'segmentation' on every annotation")
    parser.add_argument("--views", default="box,point", help="comma-separated views (default: box,point)")
    parser.add_argument("--output-dir", default=None, help="default: the input's folder")
    parser.add_argument("--num-points", type=_positive_int, default=10, help="points per object in the point view")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = parser.parse_args(argv)

    src = Path(args.input)
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    for view in views:
        try:
            parse_view(view)
        except ValueError as e:
            parser.error(f"--views {view}: {e}")
    coco = _load_json(src, parser)
    out_dir = Path(args.output_dir) if args.output_dir else src.parent
    targets = {view: out_dir / f"{src.stem}_{view}.json" for view in views}
    for view, path in targets.items():
        if path.resolve() == src.resolve():
            raise SystemExit(f"{path}: would overwrite the input; choose another --output-dir")
        if path.exists() and not args.overwrite:
            raise SystemExit(f"{path} exists; pass --overwrite to replace it")
    try:
        check_coco_instances(coco, str(src), image_root=None)
        missing = [a.get("id") for a in coco["annotations"] if not a.get("segmentation")]
        if missing and any(parse_view(v)[0] != "box" for v in views):
            raise AnnotationError(f"{src}: annotation id {missing[0]} has no field 'segmentation' "
                                  f"({len(missing)} such); point and semi views are drawn from masks")
        out_dir.mkdir(parents=True, exist_ok=True)
        for view, path in targets.items():
            data = make_view(coco, view, num_points=args.num_points, seed=args.seed)
            path.write_text(json.dumps(data))
            print(f"{view:>8}: {path} ({len(data['annotations'])} annotations)")
    except (AnnotationError, ValueError) as e:
        raise SystemExit(f"error: {e}")


def _autolabel(argv):
    import json
    import logging
    import os
    from pathlib import Path

    from detectron2.utils.logger import setup_logger

    from .autolabel import AUTOLABEL_BACKENDS, autolabel
    from .data.checks import AnnotationError
    from .config import ConfigError

    parser = argparse.ArgumentParser(
        prog="wsis-d2 autolabel",
        description="Masks for the boxes (and points) of a COCO JSON: writes a new COCO JSON with RLE masks; "
                    "never overwrites the input, nor an existing output unless --overwrite.")
    parser.add_argument("--input", required=True, help="COCO instance JSON with boxes (optional points)")
    parser.add_argument("--image-root", required=True, help="folder the images' file_name are relative to")
    parser.add_argument("--backend", default="grabcut", choices=sorted(AUTOLABEL_BACKENDS),
                        help="default grabcut")
    parser.add_argument("--output", default=None, help="default: <input stem>_<backend>.json beside the input")
    parser.add_argument("--workers", type=_positive_int, default=os.cpu_count() or 1,
                        help="processes (box, grabcut)")
    parser.add_argument("--skip-bad", action="store_true", help="log bad images/annotations and go on")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--grabcut-iters", type=_positive_int, default=5)
    parser.add_argument("--config-file", help="model backend: the trained model's config")
    parser.add_argument("--weights", help="model backend: its checkpoint")
    parser.add_argument("--fallback", default="grabcut", choices=["box", "grabcut"],
                        help="model backend: for unmatched boxes (default grabcut)")
    parser.add_argument("--match-iou", type=float, default=0.5, help="model backend: box IoU to match")
    args = parser.parse_args(argv)
    setup_logger(name="wsis_d2", abbrev_name="wsis")
    logging.getLogger("wsis_d2").setLevel(logging.INFO)

    src = Path(args.input)
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_{args.backend}.json")
    if not src.is_file():
        parser.error(f"{src}: no such file")
    if out.resolve() == src.resolve():
        parser.error(f"{out}: would overwrite the input; choose another --output")
    if out.is_dir():
        parser.error(f"{out} is a folder; --output names the JSON file to write")
    if out.exists() and not args.overwrite:
        parser.error(f"{out} exists; pass --overwrite to replace it")
    options = {"grabcut": {"iterations": args.grabcut_iters}, "box": {}}.get(args.backend, {})
    if args.backend == "model":
        if not (args.config_file and args.weights):
            parser.error("the model backend needs --config-file and --weights")
        if "://" not in args.weights and not os.path.isfile(args.weights):
            parser.error(f"--weights {args.weights}: no such file")
        options = {"config_file": args.config_file, "weights": args.weights, "fallback": args.fallback,
                   "match_iou": args.match_iou}
    coco = _load_json(src, parser)
    try:
        labelled, stats = autolabel(coco, str(src), args.image_root, args.backend, options, workers=args.workers,
                                    skip_bad=args.skip_bad)
    except (AnnotationError, ConfigError) as e:
        raise SystemExit(f"error: {e}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(labelled))
    iou = stats["mean_iou_vs_input_masks"]
    print(f"{stats['annotations']} masks for {stats['images']} images in {stats['seconds']} s "
          f"({stats['images_per_s']} images/s), {stats['skipped']} skipped"
          + (f", mean IoU vs the input's masks {iou}" if iou is not None else "") + f" -> {out}")


def _report(argv):
    from .report.cli import main

    main(argv)


def _convert(argv):
    import json
    from pathlib import Path

    from .convert import convert_instance_pngs, convert_labelme

    parser = argparse.ArgumentParser(
        prog="wsis-d2 convert",
        description="Convert instance annotations to COCO (RLE masks) with a report of what was skipped and why. "
                    "Then 'wsis-d2 views' makes box / point / semi views of the result.")
    parser.add_argument("--format", required=True, choices=["instance-png", "labelme"])
    parser.add_argument("--images", help="instance-png: image folder (file_name is relative to it)")
    parser.add_argument("--masks", help="instance-png: folder of <stem>[_mask].png instance-id masks")
    parser.add_argument("--category", default="object", help="instance-png: the objects' category name")
    parser.add_argument("--ignore-value", type=int, default=255, help="instance-png: void mask value (-1: none)")
    parser.add_argument("--input", help="labelme: folder of labelme JSON files beside their images")
    parser.add_argument("--output", required=True, help="COCO JSON to write (never overwritten without --overwrite)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.output)
    if out.exists() and not args.overwrite:
        parser.error(f"{out} exists; pass --overwrite to replace it")
    try:
        if args.format == "instance-png":
            if not (args.images and args.masks):
                parser.error("instance-png needs --images and --masks")
            coco, report = convert_instance_pngs(args.images, args.masks, args.category, args.ignore_value)
        else:
            if not args.input:
                parser.error("labelme needs --input")
            coco, report = convert_labelme(args.input)
    except FileNotFoundError as e:
        raise SystemExit(f"error: {e}")
    if not coco["images"]:
        for reason in report.skipped:
            print(f"skipped: {reason}")
        raise SystemExit(f"error: no image was converted from {args.images or args.input}; nothing written")
    coco["info"]["conversion"] = report.as_dict()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(coco))
    for reason in report.skipped:
        print(f"skipped: {reason}")
    print(f"{len(coco['images'])} images, {len(coco['annotations'])} objects, {len(coco['categories'])} categories, "
          f"{len(report.skipped)} skipped -> {out}")


def _pointwssis(argv):
    import hashlib
    import logging

    from detectron2.utils.logger import setup_logger

    from .data.checks import AnnotationError
    from .data.register import register_wsis_coco_instances, shapes_root
    from .data.shapes import ensure_shapes
    from .config import ConfigError
    from .modeling.pointwssis.pipeline import run_pipeline

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
    parser.add_argument("--refiner-iters", type=_positive_int, default=1500)
    parser.add_argument("--crop-size", type=_positive_int, default=64)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides KEY VALUE ...")
    args = parser.parse_args(argv)
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
        _load_json(args.val_json, parser)  # a missing or broken file stops here, before any training
        # named after the file, so that the run's recorded inputs (and a resume's check of them) include it
        val_name = "pointwssis_val_" + hashlib.sha1(os.path.abspath(args.val_json).encode()).hexdigest()[:8]
        register_wsis_coco_instances(val_name, {}, args.val_json, args.val_image_root or args.image_root,
                                     replace=True)
        args.opts += ["DATASETS.TEST", f"('{val_name}',)"]
    elif "DATASETS.TEST" not in args.opts:
        parser.error("with --semi-json, name the evaluation set: --val-json VAL.json (COCO with masks), or "
                     "DATASETS.TEST \"('my_val',)\" for a dataset registered in Python")
    if "MODEL.FCOS.NUM_CLASSES" not in args.opts:
        semi = _load_json(args.semi_json, parser)
        categories = semi.get("categories", []) if isinstance(semi, dict) else []
        args.opts += ["MODEL.FCOS.NUM_CLASSES", str(len(categories))]
    from .model_zoo import get_config_file

    config = args.config_file or get_config_file("CondInst/R18_shapes.yaml")
    out = args.output_dir or f"output/PointWSSIS/{os.path.splitext(os.path.basename(args.semi_json))[0]}"
    try:
        results = run_pipeline(args.semi_json, args.image_root, config, out, args.opts, args.refiner_iters,
                               args.crop_size)
    except (AnnotationError, ConfigError) as e:
        raise SystemExit(f"error: {e}")
    print(f"student: {results}")


COMMANDS = {"train": _train, "shapes": _shapes, "configs": _configs, "views": _views, "autolabel": _autolabel, "report": _report, "convert": _convert, "pointwssis": _pointwssis}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    import wsis_d2  # noqa: F401  (registration)

    COMMANDS[argv[0]](argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())

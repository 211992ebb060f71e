"""``wsis-d2`` console entry point.

    wsis-d2 train --config-file configs/CondInst/R18_shapes.yaml [detectron2 train_net flags]
    wsis-d2 shapes [--root DIR] [--num-train N --num-val N --seed S]
    wsis-d2 configs
    wsis-d2 views --input COCO.json --views box,point,semi_10 [--output-dir DIR --num-points 10 --seed 0]
"""
import argparse
import sys


def _train(argv):
    from .engine import main

    main(argv)


def _shapes(argv):
    from .data.register import shapes_root
    from .data.shapes import ensure_shapes

    parser = argparse.ArgumentParser(prog="wsis-d2 shapes", description="Generate the embedded shapes dataset.")
    parser.add_argument("--root", default=None, help="output folder (default $DETECTRON2_DATASETS/shapes)")
    parser.add_argument("--num-train", type=int, default=400)
    parser.add_argument("--num-val", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    files = ensure_shapes(args.root or shapes_root(), num_train=args.num_train, num_val=args.num_val, seed=args.seed)
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
                    "masks stripped), 'semi_<p>' (p %% of the images keep masks, the rest boxes + one "
                    "centre point per object), 'full'. Writes <output-dir>/<input stem>_<view>.json; "
                    "never overwrites the input, nor an existing output unless --overwrite.")
    parser.add_argument("--input", required=True, help="COCO instance JSON with 'segmentation' on every annotation")
    parser.add_argument("--views", default="box,point", help="comma-separated views (default: box,point)")
    parser.add_argument("--output-dir", default=None, help="default: the input's folder")
    parser.add_argument("--num-points", type=int, default=10, help="points per object in the point view")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    args = parser.parse_args(argv)

    src = Path(args.input)
    views = [v.strip() for v in args.views.split(",") if v.strip()]
    try:
        for view in views:
            parse_view(view)
    except ValueError as e:
        parser.error(str(e))
    if not src.is_file():
        parser.error(f"{src}: no such file")
    try:
        coco = json.loads(src.read_text())
    except json.JSONDecodeError as e:
        raise SystemExit(f"{src}: not valid JSON ({e})")
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


COMMANDS = {"train": _train, "shapes": _shapes, "configs": _configs, "views": _views}


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

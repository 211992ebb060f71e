"""``wsis-d2 shapes`` and ``wsis-d2 views``: the embedded data and the supervision views of a COCO file."""
import argparse
import json
from pathlib import Path

from ..utils.args import load_json_arg, positive_int
from .checks import AnnotationError, check_coco_instances
from .register import shapes_root
from .shapes import ensure_shapes
from .views import make_view, parse_view


def shapes_main(argv=None):
    parser = argparse.ArgumentParser(prog="wsis-d2 shapes", description="Generate the embedded shapes dataset.")
    parser.add_argument("--root", default=None, help="output folder (default $DETECTRON2_DATASETS/shapes)")
    parser.add_argument("--num-train", type=positive_int, help="default 400")
    parser.add_argument("--num-val", type=positive_int, help="default 100")
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


def views_main(argv=None):
    parser = argparse.ArgumentParser(
        prog="wsis-d2 views",
        description="Make weak-supervision views of a COCO instance JSON with masks: 'box' (masks "
                    "stripped), 'point' (boxes + N PointSup points per object labelled from the masks, "
                    "masks stripped), 'semi_<p>' (p % of the images keep masks, the rest boxes + one "
                    "centre point per object), 'mixed_<m>_<p>' (per object: m % keep masks, p % get boxes + N "
                    "points, the rest boxes alone), 'full'. Writes <output-dir>/<input stem>_<view>.json; "
                    "never overwrites the input, nor an existing output unless --overwrite.")
    parser.add_argument("--input", required=True, help="COCO instance JSON with 'segmentation' on every annotation")
    parser.add_argument("--views", default="box,point", help="comma-separated views (default: box,point)")
    parser.add_argument("--output-dir", default=None, help="default: the input's folder")
    parser.add_argument("--num-points", type=positive_int, default=10, help="points per object in the point and mixed views")
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
    coco = load_json_arg(src, parser)
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
                                  f"({len(missing)} such); point, semi and mixed views are drawn from masks")
        out_dir.mkdir(parents=True, exist_ok=True)
        for view, path in targets.items():
            data = make_view(coco, view, num_points=args.num_points, seed=args.seed)
            path.write_text(json.dumps(data))
            print(f"{view:>8}: {path} ({len(data['annotations'])} annotations)")
    except (AnnotationError, ValueError) as e:
        raise SystemExit(f"error: {e}")

"""``wsis-d2 autolabel``: masks for the boxes (and points) of a COCO file."""
import argparse
import json
import logging
import os
from pathlib import Path

from detectron2.utils.logger import setup_logger

from ..config import ConfigError
from ..data.checks import AnnotationError
from ..utils.args import add_config_overrides, config_overrides, load_json_arg, positive_int
from ..utils.paths import same_file
from .backends import AUTOLABEL_BACKENDS
from .labeler import autolabel


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="wsis-d2 autolabel",
        description="Masks for the boxes (and points) of a COCO JSON: writes a new COCO JSON with RLE masks; "
                    "never overwrites the input, nor an existing output unless --overwrite.")
    parser.add_argument("--input", required=True, help="COCO instance JSON with boxes (optional points)")
    parser.add_argument("--image-root", required=True, help="folder the images' file_name are relative to")
    parser.add_argument("--backend", default="grabcut", choices=sorted(AUTOLABEL_BACKENDS),
                        help="default grabcut")
    parser.add_argument("--output", default=None, help="default: <input stem>_<backend>.json beside the input")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                        help="processes (box, grabcut)")
    parser.add_argument("--skip-bad", action="store_true", help="log bad images/annotations and go on")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--grabcut-iters", type=positive_int, default=5)
    parser.add_argument("--config-file", help="model backend: the trained model's config")
    parser.add_argument("--weights", help="model backend: its checkpoint")
    parser.add_argument("--fallback", default="grabcut", choices=["box", "grabcut"],
                        help="model backend: for unmatched boxes (default grabcut)")
    parser.add_argument("--match-iou", type=float, default=0.5, help="model backend: box IoU to match")
    add_config_overrides(parser, "model backend: config overrides KEY VALUE ..., e.g. INPUT.MIN_SIZE_TEST 480")
    args = parser.parse_args(argv)
    args.opts = config_overrides(parser, args.opts)
    setup_logger(name="wsis_d2", abbrev_name="wsis")
    logging.getLogger("wsis_d2").setLevel(logging.INFO)

    src = Path(args.input)
    out = Path(args.output) if args.output else src.with_name(f"{src.stem}_{args.backend}.json")
    if not src.is_file():
        parser.error(f"{src}: no such file")
    if same_file(out, src):  # the same path, a symlink or a hard link to the input
        parser.error(f"{out}: would overwrite the input {src}; choose another --output")
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
                   "match_iou": args.match_iou, "opts": args.opts}
    elif args.opts:
        parser.error(f"config overrides {' '.join(args.opts)} are for the model backend only")
    coco = load_json_arg(src, parser)
    try:
        labelled, stats = autolabel(coco, str(src), args.image_root, args.backend, options, workers=args.workers,
                                    skip_bad=args.skip_bad)
    except (AnnotationError, ConfigError) as e:
        raise SystemExit(f"error: {e}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(labelled))
    iou = stats["mean_iou_vs_input_masks"]
    print(f"{stats['annotations']} masks for {stats['images']} images in {stats['seconds']} s "
          f"({stats['images_per_s']} images/s; per image {stats['seconds_per_image_mean']} s, at most "
          f"{stats['seconds_per_image_max']} s for {stats['slowest_image']}), {stats['skipped']} skipped"
          + (f", mean IoU vs the input's masks {iou}" if iou is not None else "") + f" -> {out}")

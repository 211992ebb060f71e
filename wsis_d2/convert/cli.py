"""``wsis-d2 convert``: instance annotations of other formats to COCO."""
import argparse
import json
import os
from pathlib import Path

from ..utils.paths import files_in, input_named_by
from . import convert_instance_pngs, convert_labelme
from .via import convert_via


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="wsis-d2 convert",
        description="Convert instance annotations to COCO (RLE masks) with a report of what was skipped and why. "
                    "Then 'wsis-d2 views' makes box / point / semi views of the result.")
    parser.add_argument("--format", required=True, choices=["instance-png", "labelme", "via"])
    parser.add_argument("--images", help="instance-png: image folder (file_name is relative to it); "
                                         "via: the images' folder (default: the JSON file's)")
    parser.add_argument("--masks", help="instance-png: folder of <stem>[_mask].png instance-id masks")
    parser.add_argument("--category", default="object", help="instance-png, via: the objects' category name")
    parser.add_argument("--ignore-value", type=int, default=None,
                        help="instance-png: void mask value, neither object nor background (-1: none; default: "
                             "255 for 8-bit masks as VOC's, none for 16-bit masks whose 255 is an id)")
    parser.add_argument("--binary-components", action="store_true",
                        help="instance-png: a binary 0/255 mask gives one object per connected component "
                             "(default: such a mask is reported and its image left out)")
    parser.add_argument("--input", help="labelme: folder of labelme JSON files beside their images; "
                                        "via: the VIA region JSON file")
    parser.add_argument("--category-attribute", default=None,
                        help="via: region attribute holding each object's category (default: --category for all)")
    parser.add_argument("--output", required=True, help="COCO JSON to write (never overwritten without --overwrite)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.output)
    # --overwrite may replace an earlier output, never a file this command reads (nor a hard link to one)
    if args.format == "labelme":
        inputs = files_in(args.input)
    elif args.format == "via":
        inputs = [args.input] + files_in(args.images or os.path.dirname(args.input)) if args.input else []
    else:
        inputs = files_in(args.images, args.masks)
    source = input_named_by(out, inputs)
    if source is not None:
        parser.error(f"--output {out} is the input file {source}; choose an --output outside the input folders")
    if out.is_dir():
        parser.error(f"{out} is a folder; --output names the JSON file to write")
    if out.exists() and not args.overwrite:
        parser.error(f"{out} exists; pass --overwrite to replace it")
    try:
        if args.format == "instance-png":
            if not (args.images and args.masks):
                parser.error("instance-png needs --images and --masks")
            coco, report = convert_instance_pngs(args.images, args.masks, args.category, args.ignore_value,
                                                 args.binary_components)
        elif args.format == "via":
            if not args.input:
                parser.error("via needs --input (the VIA JSON file)")
            try:
                coco, report = convert_via(args.input, args.images, args.category, args.category_attribute)
            except ValueError as e:
                raise SystemExit(f"error: {e}")
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
    for note in report.notes:
        print(f"note: {note}")
    print(f"{len(coco['images'])} images, {len(coco['annotations'])} objects, {len(coco['categories'])} categories, "
          f"{len(report.skipped)} skipped -> {out}")

"""``wsis-d2 convert``: instance annotations of other formats to COCO.

Each format is one entry of :data:`FORMATS`: the converter it runs, the arguments it needs and the
files it reads (which ``--output`` may never name).
"""
import argparse
import json
import os
from pathlib import Path
from typing import Callable, NamedTuple, Tuple

from ..utils.paths import files_in, input_named_by
from .common import ConversionReport
from .cvat import convert_cvat_xml, fix_cvat_coco
from .instance_png import convert_instance_pngs
from .labelme import convert_labelme
from .via import convert_via
from .yolo import convert_yolo, default_image_dir


class Format(NamedTuple):
    convert: Callable[[argparse.Namespace], Tuple[dict, ConversionReport]]
    needs: Tuple[str, ...]  # the arguments it cannot run without
    reads: Callable[[argparse.Namespace], list]  # the files it reads


def _beside(path: str, *names: str) -> list:
    """Files in the folder of ``path`` and in its subfolders ``names``."""
    folder = os.path.dirname(os.path.abspath(path))
    return files_in(folder, *(os.path.join(folder, n) for n in names))


def _yolo_reads(args) -> list:
    images = args.images or default_image_dir(Path(args.input).resolve())
    return files_in(args.input, images) + ([args.names] if args.names else [])


_YOLO = Format(lambda a: convert_yolo(a.input, a.images, a.names), ("input",), _yolo_reads)

FORMATS = {
    "instance-png": Format(lambda a: convert_instance_pngs(a.images, a.masks, a.category, a.ignore_value,
                                                           a.binary_components),
                           ("images", "masks"), lambda a: files_in(a.images, a.masks)),
    "labelme": Format(lambda a: convert_labelme(a.input), ("input",), lambda a: files_in(a.input)),
    "via": Format(lambda a: convert_via(a.input, a.images, a.category, a.category_attribute), ("input",),
                  lambda a: [a.input] + files_in(a.images or os.path.dirname(a.input))),
    "yolo": _YOLO,
    "yolo-seg": _YOLO,
    "cvat": Format(lambda a: convert_cvat_xml(a.input, a.images), ("input",),
                   lambda a: [a.input] + files_in(a.images) + _beside(a.input, "images")),
    "coco-cvat": Format(lambda a: fix_cvat_coco(a.input, a.images, a.keep_crowd), ("input",),
                        lambda a: [a.input] + files_in(a.images) + _beside(a.input, "../images")),
}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="wsis-d2 convert",
        description="Convert instance annotations to COCO (RLE masks; box-only objects where only boxes were "
                    "drawn; clicked points as PointSup points) with a report of what was skipped and why. "
                    "Then 'wsis-d2 views' makes box / point / semi views of the result.")
    parser.add_argument("--format", required=True, choices=list(FORMATS))
    parser.add_argument("--images", help="instance-png: image folder (file_name is relative to it); "
                                         "via, cvat, coco-cvat, yolo: the images' folder (default: beside the "
                                         "input, see --help of each format in README)")
    parser.add_argument("--masks", help="instance-png: folder of <stem>[_mask].png instance-id masks")
    parser.add_argument("--category", default="object", help="instance-png, via: the objects' category name")
    parser.add_argument("--ignore-value", type=int, default=None,
                        help="instance-png: void mask value, neither object nor background (-1: none; default: "
                             "255 for 8-bit masks as VOC's, none for 16-bit masks whose 255 is an id)")
    parser.add_argument("--binary-components", action="store_true",
                        help="instance-png: a binary 0/255 mask gives one object per connected component "
                             "(default: such a mask is reported and its image left out)")
    parser.add_argument("--input", help="labelme: folder of labelme JSON files beside their images; "
                                        "via: the VIA region JSON file; yolo, yolo-seg: folder of YOLO label "
                                        "txt files; cvat: CVAT for images 1.1 annotations.xml; coco-cvat: CVAT's "
                                        "COCO 1.0 instances JSON")
    parser.add_argument("--names", help="yolo: data.yaml (names: list or dict) or classes.txt (default: found "
                                        "beside the labels or in their parent folders)")
    parser.add_argument("--keep-crowd", action="store_true",
                        help="coco-cvat: keep iscrowd masks crowd regions (default: objects, as CVAT marks "
                             "every brush mask iscrowd)")
    parser.add_argument("--category-attribute", default=None,
                        help="via: region attribute holding each object's category (default: --category for all)")
    parser.add_argument("--output", required=True, help="COCO JSON to write (never overwritten without --overwrite)")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    fmt = FORMATS[args.format]
    missing = [f"--{name}" for name in fmt.needs if not getattr(args, name)]
    if missing:
        parser.error(f"{args.format} needs {' and '.join(missing)}")
    out = Path(args.output)
    # --overwrite may replace an earlier output, never a file this command reads (nor a hard link to one)
    source = input_named_by(out, fmt.reads(args))
    if source is not None:
        parser.error(f"--output {out} is the input file {source}; choose an --output outside the input folders")
    if out.is_dir():
        parser.error(f"{out} is a folder; --output names the JSON file to write")
    if out.exists() and not args.overwrite:
        parser.error(f"{out} exists; pass --overwrite to replace it")
    try:
        coco, report = fmt.convert(args)
    except (FileNotFoundError, ValueError) as e:  # AnnotationError is a ValueError
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

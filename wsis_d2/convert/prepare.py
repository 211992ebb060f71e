"""``wsis-d2 prepare pennfudan|balloon``: a downloaded real dataset made ready to train on by name.

From the extracted folder (nothing is downloaded) it writes the prepared folder that
:mod:`wsis_d2.data.real` registers (default ``$DETECTRON2_DATASETS/<name>``): the images under
``train/`` and ``val/`` (hard links where possible, else copies), ``annotations/train.json`` and
``val.json`` (boxes + masks, RLE) and the training views ``train_{box,point,semi_<p>}.json``.

- Penn-Fudan (``PennFudanPed/`` with ``PNGImages/`` and ``PedMasks/``): instance-id PNGs converted
  with :func:`convert_instance_pngs`, then a fixed seeded split (default 50 val images, seed 0: the
  same split on every machine);
- balloon (``balloon/`` with ``train/`` and ``val/``, each with ``via_region_data.json``): VIA polygons
  converted with :func:`convert_via`; its own train/val split is kept.
"""
import argparse
import json
import os
import re
import shutil
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from ..data.checks import AnnotationError, check_coco_instances
from ..data.real import REAL_DATASETS, REAL_VIEWS, SPLITS, real_dataset_files, real_dataset_root
from ..data.views import full_view, make_view
from .common import ConversionReport
from .instance_png import convert_instance_pngs
from .via import convert_via

PENNFUDAN_VAL_SIZE = 50
VIA_FILE = "via_region_data.json"
NUM_POINTS = 10
# made from train.json on first use (mixed views: data.register; pseudo masks: autolabel.pseudo_views)
DERIVED_FILE = re.compile(r"train_(mixed_\d+_\d+|pseudo_[a-z]+)\.json")


class PrepareError(ValueError):
    """A source folder or output that cannot be prepared; the message (one line) says what to pass."""


def _wrong_folder(dataset: str, root: Path, missing: str) -> PrepareError:
    info = REAL_DATASETS[dataset]
    return PrepareError(f"{root}: not a {info['short']} folder ({missing}); pass the {info['folder']} folder "
                        f"extracted from {info['download']}")


def _find_source(dataset: str, root: str, required) -> Path:
    """``root`` or its child named like the dataset's extracted folder, whichever holds ``required``."""
    root = Path(root)
    if not root.is_dir():
        raise _wrong_folder(dataset, root, "no such folder")
    for candidate in (root, root / REAL_DATASETS[dataset]["folder"]):
        if all((candidate / r).exists() for r in required):
            return candidate
    missing = ", ".join(r for r in required if not (root / r).exists())
    raise _wrong_folder(dataset, root, f"no {missing} in it")


def split_images(coco: dict, val_size: int, seed: int) -> Tuple[dict, dict]:
    """(train, val) COCO dicts: ``val_size`` images drawn with ``seed`` from the images sorted by file name."""
    images = sorted(coco["images"], key=lambda im: im["file_name"])
    if not 0 < val_size < len(images):
        raise PrepareError(f"--val-size {val_size} must be between 1 and {len(images) - 1} ({len(images)} images)")
    order = np.random.default_rng(seed).permutation(len(images))
    val_ids = {images[i]["id"] for i in order[:val_size]}
    return (_subset(coco, [im for im in images if im["id"] not in val_ids]),
            _subset(coco, [im for im in images if im["id"] in val_ids]))


def _subset(coco: dict, images) -> dict:
    ids = {im["id"] for im in images}
    return dict(coco, info=dict(coco.get("info", {})), images=list(images),
                annotations=[a for a in coco["annotations"] if a["image_id"] in ids])


def _place_images(coco: dict, src_dir: Path, dst_dir: Path) -> None:
    for im in coco["images"]:
        src, dst = src_dir / im["file_name"], dst_dir / im["file_name"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            dst.unlink()
        try:
            os.link(src, dst)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(src, dst)


def _check_output(dataset: str, sources, out: Path, overwrite: bool) -> Dict[str, str]:
    files = real_dataset_files(str(out))
    for src in sources:
        src, o = src.resolve(), out.resolve()
        if src == o or o in src.parents or src in o.parents:
            raise PrepareError(f"--output {out} overlaps the source folder {src}; choose another --output "
                               f"(default {real_dataset_root(dataset)})")
    existing = [f for f in files.values() if os.path.exists(f)]
    if existing and not overwrite:
        raise PrepareError(f"{existing[0]} exists ({dataset} is prepared there already); pass --overwrite to "
                           "replace it")
    return files


def write_prepared(dataset: str, splits: Dict[str, Tuple[dict, Path]], out: Path, seed: int = 0,
                   semi_percents=None) -> Dict[str, dict]:
    """Write the prepared folder ``out`` of ``dataset`` from ``splits`` (split -> (COCO dict, folder its
    ``file_name`` are relative to)); returns registered-name suffix -> the COCO dict written."""
    files = real_dataset_files(str(out))
    written = {}
    for split in SPLITS:
        coco, src_dir = splits[split]
        coco = full_view(coco)
        coco["info"].update(dataset=dataset, split=split)
        if split == "train":  # the views made later from it (data.register.derived_view_file) draw alike
            coco["info"].update(view_seed=seed, view_num_points=NUM_POINTS)
        image_dir = out / split
        if image_dir.exists():
            shutil.rmtree(image_dir)
        _place_images(coco, src_dir, image_dir)
        written[split] = coco
    train = written["train"]
    for view in REAL_VIEWS:
        written[f"train_{view}"] = make_view(train, view, num_points=NUM_POINTS, seed=seed)
    (out / "annotations").mkdir(parents=True, exist_ok=True)
    # files made on first use from an earlier train.json (mixed views, pseudo masks): stale now
    for path in (out / "annotations").glob("train_*.json"):
        if DERIVED_FILE.fullmatch(path.name):
            path.unlink()
    for suffix, coco in written.items():
        Path(files[suffix]).write_text(json.dumps(coco))
    for split in SPLITS:  # the checks training runs at load time, once now
        check_coco_instances(written[split], files[split], str(out / split))
    return written


def prepare_pennfudan(root: str, output: Optional[str] = None, val_size: int = PENNFUDAN_VAL_SIZE, seed: int = 0,
                      overwrite: bool = False) -> Tuple[Dict[str, dict], ConversionReport, Path]:
    """Prepare Penn-Fudan from its extracted ``PennFudanPed`` folder; returns (written dicts, report, output)."""
    src = _find_source("pennfudan", root, ("PNGImages", "PedMasks"))
    out = Path(output or real_dataset_root("pennfudan"))
    _check_output("pennfudan", [src], out, overwrite)
    coco, report = convert_instance_pngs(str(src / "PNGImages"), str(src / "PedMasks"), "person")
    if not coco["images"]:
        raise _wrong_folder("pennfudan", src, "no image of PNGImages has a mask in PedMasks")
    train, val = split_images(coco, val_size, seed)
    for part in (train, val):
        part["info"]["split_rule"] = f"{val_size} val images drawn with seed {seed} from the sorted file names"
    written = write_prepared("pennfudan", {"train": (train, src / "PNGImages"), "val": (val, src / "PNGImages")},
                             out, seed)
    return written, report, out


def prepare_balloon(root: str, output: Optional[str] = None, seed: int = 0,
                    overwrite: bool = False) -> Tuple[Dict[str, dict], ConversionReport, Path]:
    """Prepare balloon from its extracted ``balloon`` folder (``train/`` and ``val/`` with VIA files)."""
    src = _find_source("balloon", root, tuple(f"{split}/{VIA_FILE}" for split in SPLITS))
    out = Path(output or real_dataset_root("balloon"))
    _check_output("balloon", [src], out, overwrite)
    report = ConversionReport()
    splits = {}
    for split in SPLITS:
        coco, split_report = convert_via(str(src / split / VIA_FILE), category="balloon")
        report.skipped.extend(split_report.skipped)
        if not coco["images"]:
            raise _wrong_folder("balloon", src, f"no image of {split}/{VIA_FILE} was found")
        splits[split] = (coco, src / split)
    return write_prepared("balloon", splits, out, seed), report, out


def prepare_main(argv=None):
    parser = argparse.ArgumentParser(
        prog="wsis-d2 prepare",
        description="Prepare a downloaded real dataset (nothing is downloaded): COCO files with masks, the "
                    "box / point / semi training views and the images, in the folder the names "
                    "<dataset>_train, <dataset>_train_<view>, <dataset>_val are registered at. "
                    "Penn-Fudan: " + REAL_DATASETS["pennfudan"]["download"] + "; balloon: "
                    + REAL_DATASETS["balloon"]["download"] + ".")
    parser.add_argument("dataset", choices=sorted(REAL_DATASETS))
    parser.add_argument("--root", required=True,
                        help="the extracted folder (PennFudanPed/ or balloon/, or the folder holding it)")
    parser.add_argument("--output", default=None, help="prepared folder (default $DETECTRON2_DATASETS/<dataset>; "
                                                       "another one: register it with "
                                                       "wsis_d2.data.real.register_real_dataset)")
    parser.add_argument("--val-size", type=int, default=PENNFUDAN_VAL_SIZE, help="pennfudan: val images (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="the pennfudan split's and the views' seed (default 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier preparation in --output")
    args = parser.parse_args(argv)
    try:
        if args.dataset == "pennfudan":
            written, report, out = prepare_pennfudan(args.root, args.output, args.val_size, args.seed, args.overwrite)
        else:
            written, report, out = prepare_balloon(args.root, args.output, args.seed, args.overwrite)
    except (PrepareError, AnnotationError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}")
    for reason in report.skipped:
        print(f"skipped: {reason}")
    for suffix, coco in written.items():
        print(f"{args.dataset}_{suffix:<14} {len(coco['images']):>4} images {len(coco['annotations']):>5} objects")
    print(f"-> {out}")

"""``wsis-d2`` console entry point.

    wsis-d2 train --config-file configs/CondInst/R18_shapes.yaml [detectron2 train_net flags]
    wsis-d2 shapes [--root DIR] [--num-train N --num-val N --seed S]
    wsis-d2 configs
    wsis-d2 autolabel --input BOXES.json --image-root DIR --backend box|grabcut|model [--output OUT.json]
    wsis-d2 convert --format instance-png --images DIR --masks DIR --output OUT.json [--category NAME]
    wsis-d2 convert --format labelme --input DIR --output OUT.json
    wsis-d2 convert --format via --input VIA.json --output OUT.json [--images DIR --category NAME]
    wsis-d2 prepare pennfudan|balloon --root EXTRACTED_DIR [--output DIR]
    wsis-d2 pointwssis --semi-json SEMI.json --image-root DIR --val-json VAL.json [--config-file C --output-dir O] [KEY VALUE ...]
    wsis-d2 report [--results FILE.json ...] [--output-dir DIR] [--baseline METHOD [--exclude-class C ...] [--seeds S ...]]
    wsis-d2 views --input COCO.json --views box,point,semi_10 [--output-dir DIR --num-points 10 --seed 0]
"""
import argparse
import sys
from pathlib import Path

from .autolabel.cli import main as autolabel_main
from .convert.cli import main as convert_main
from .convert.prepare import prepare_main
from .data.cli import shapes_main, views_main
from .engine import main as train_main
from .model_zoo import print_configs
from .pipelines.cli import pointwssis_main
from .report import load_rows, write_paired_report, write_report


def _train(argv):
    train_main(argv, prog="wsis-d2 train")


def _report(argv):
    parser = argparse.ArgumentParser(prog="wsis-d2 report",
                                     description="Mask AP against annotation seconds per object: a table and a PNG; "
                                                 "with --baseline, seeded settings against a baseline seed by seed.")
    parser.add_argument("--results", nargs="*", default=None,
                        help="benchmark result JSON files, oldest first (default: all of benchmarks/results/)")
    parser.add_argument("--output-dir", default="output/report")
    parser.add_argument("--preset", default="cpu",
                        help="benchmark preset to report (cpu | cpu_2x | gpu: benchmarks/run.py's PRESETS)")
    parser.add_argument("--baseline", default=None,
                        help="also compare every seeded setting with this method seed by seed "
                             "(paired_vs_<method>.md), e.g. boxinst")
    parser.add_argument("--exclude-class", nargs="+", default=(),
                        help="with --baseline: also compare the mean AP of the other classes")
    parser.add_argument("--seeds", type=int, nargs="+", default=(),
                        help="with --baseline: pair only these seeds (e.g. those run after a comparison was chosen)")
    args = parser.parse_args(argv)
    if args.exclude_class and not args.baseline:
        parser.error("--exclude-class compares with a baseline: pass --baseline METHOD too")
    if args.seeds and not args.baseline:
        parser.error("--seeds selects the seeds paired with a baseline: pass --baseline METHOD too")
    files = args.results or sorted(str(p) for p in Path("benchmarks/results").glob("????-??-??.json"))
    if not files:
        parser.error("no result files: pass --results or run from the repository root")
    try:
        rows = load_rows(files, args.preset)
        if not rows:
            raise ValueError(f"no rows of preset {args.preset!r} in {files}")
        # the paired table first: a bad --baseline stops the report before anything is written
        paired = (write_paired_report(load_rows(files, args.preset, by_setting=True), args.baseline, args.output_dir,
                                      args.exclude_class, args.seeds) if args.baseline else None)
        paths = write_report(rows, args.output_dir)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    print(f"{len(paths['points'])} rows -> {paths['table']}, {paths['plot']}"
          + (f", {paths['curves']}" if paths["curves"] else "")
          + (f", {paired['table']} ({len(paired['rows'])} settings)" if paired else ""))


# subcommand -> its main(argv); each parses its own arguments beside the code it runs
COMMANDS = {
    "train": _train,
    "shapes": shapes_main,
    "configs": print_configs,
    "views": views_main,
    "autolabel": autolabel_main,
    "convert": convert_main,
    "prepare": prepare_main,
    "report": _report,
    "pointwssis": pointwssis_main,
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    COMMANDS[argv[0]](argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())

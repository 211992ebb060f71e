"""``wsis-d2`` console entry point.

    wsis-d2 train --config-file configs/CondInst/R18_shapes.yaml [detectron2 train_net flags]
    wsis-d2 shapes [--root DIR] [--num-train N --num-val N --seed S]
    wsis-d2 configs
    wsis-d2 autolabel --input BOXES.json --image-root DIR --backend box|grabcut|model [--output OUT.json]
    wsis-d2 convert --format instance-png --images DIR --masks DIR --output OUT.json [--category NAME]
    wsis-d2 convert --format labelme --input DIR --output OUT.json
    wsis-d2 convert --format via --input VIA.json --output OUT.json [--images DIR --category NAME]
    wsis-d2 convert --format yolo|yolo-seg --input LABELS_DIR --output OUT.json [--images DIR --names data.yaml]
    wsis-d2 convert --format cvat --input annotations.xml --output OUT.json [--images DIR]
    wsis-d2 convert --format coco-cvat --input instances_default.json --output OUT.json [--images DIR --keep-crowd]
    wsis-d2 prepare pennfudan|balloon --root EXTRACTED_DIR [--output DIR]
    wsis-d2 predict --config-file C --weights W --input IMG|DIR|'GLOB'|VIDEO [--output DIR --confidence 0.5] [KEY VALUE ...]
    wsis-d2 export --config-file C --weights W --format torchscript|onnx --output DIR [--sample-image IMG] [KEY VALUE ...]
    wsis-d2 pointwssis --semi-json SEMI.json --image-root DIR --val-json VAL.json [--config-file C --output-dir O] [KEY VALUE ...]
    wsis-d2 report --results FILE.json ... [--output-dir DIR] [--variants] [--baseline METHOD [--exclude-class C ...] [--seeds S ...]]
    wsis-d2 views --input COCO.json --views box,point,semi_10,mixed_10_0 [--output-dir DIR --num-points 10 --seed 0]
"""
import sys

from .autolabel.cli import main as autolabel_main
from .convert.cli import main as convert_main
from .convert.prepare import prepare_main
from .data.cli import shapes_main, views_main
from .engine import main as train_main
from .engine.predict_cli import main as predict_main
from .export.cli import main as export_main
from .model_zoo import print_configs
from .pipelines.cli import pointwssis_main
from .report.cli import main as report_main


def _train(argv):
    train_main(argv, prog="wsis-d2 train")


# subcommand -> its main(argv); each parses its own arguments beside the code it runs
COMMANDS = {
    "train": _train,
    "shapes": shapes_main,
    "configs": print_configs,
    "views": views_main,
    "autolabel": autolabel_main,
    "convert": convert_main,
    "prepare": prepare_main,
    "report": report_main,
    "export": export_main,
    "pointwssis": pointwssis_main,
    "predict": predict_main,
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

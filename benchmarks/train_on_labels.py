"""Train on an autolabel output (a second round): register the COCO file, then run wsis-d2's train main.

    python benchmarks/train_on_labels.py pennfudan_train_pseudo_bls2 labels.json $DETECTRON2_DATASETS/pennfudan/train \
        --config-file configs/CondInst/MV2_pennfudan.yaml DATASETS.TRAIN '("pennfudan_train_pseudo_bls2",)' \
        OUTPUT_DIR /work/runs/condinst_on_bls2 SEED 1

Arguments: the name to register, the COCO file (e.g. from ``wsis-d2 autolabel --backend model``), its image
folder, then ``projects/train_net.py``'s. The category is ``person`` (Penn-Fudan).
"""
import sys

import wsis_d2  # noqa: F401  (registers models and datasets)
from wsis_d2.data import register_wsis_coco_instances
from wsis_d2.engine import main

if __name__ == "__main__":
    name, json_file, image_root = sys.argv[1:4]
    register_wsis_coco_instances(name, {"thing_classes": ["person"]}, json_file, image_root)
    sys.argv = [sys.argv[0]] + sys.argv[4:]
    main()

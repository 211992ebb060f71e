#!/usr/bin/env python
"""Train or evaluate any wsis-d2 / detectron2 model, detectron2-style.

    python projects/train_net.py --config-file configs/CondInst/R18_shapes.yaml
    python projects/train_net.py --config-file configs/CondInst/R18_shapes.yaml --eval-only MODEL.WEIGHTS output/CondInst/R18_shapes/model_final.pth
    python projects/train_net.py --config-file ... --resume        # continue from the last checkpoint
    python projects/train_net.py --config-file ... --num-gpus 2    # 2 processes (gloo on CPU)
"""
import wsis_d2  # noqa: F401  (registers models and datasets)
from wsis_d2.engine import main

if __name__ == "__main__":
    main()

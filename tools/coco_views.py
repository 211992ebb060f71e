#!/usr/bin/env python
"""Make box / point / semi views of your own COCO instance JSON (same as ``wsis-d2 views``).

    python tools/coco_views.py --input instances_train.json --views box,point --num-points 10
"""
import sys

from wsis_d2.cli import main

if __name__ == "__main__":
    sys.exit(main(["views"] + sys.argv[1:]))

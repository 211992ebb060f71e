"""wsis-d2: weakly-supervised instance segmentation for detectron2.

Importing this package registers its meta-architectures, backbones and
datasets into detectron2's registries.
"""
__version__ = "0.1.0"

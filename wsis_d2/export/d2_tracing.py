"""detectron2's :class:`~detectron2.export.TracingAdapter`, importable under detectron2 v0.6 too.

v0.6's ``detectron2/export/__init__.py`` imports its Caffe2 exporter first, which needs the ``caffe2``
package that torch no longer ships, so ``from detectron2.export import TracingAdapter`` fails there
(detectron2 main makes Caffe2 optional). Its ``flatten`` module itself needs no Caffe2: without it, the
``detectron2.export`` package is registered as a bare package over its folder (its ``__init__`` not run)
and ``detectron2.export.flatten`` imported from there.
"""
import importlib
import os
import sys
import types

import detectron2


def _tracing_adapter():
    try:
        from detectron2.export import TracingAdapter
        return TracingAdapter
    except ImportError as e:
        if "caffe2" not in str(e):
            raise
    package = types.ModuleType("detectron2.export")
    package.__path__ = [os.path.join(os.path.dirname(detectron2.__file__), "export")]
    sys.modules["detectron2.export"] = package
    return importlib.import_module("detectron2.export.flatten").TracingAdapter


TracingAdapter = _tracing_adapter()

__all__ = ["TracingAdapter"]

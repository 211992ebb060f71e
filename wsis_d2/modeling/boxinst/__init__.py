from .boxinst import BoxInst

__all__ = ["BoxInst"]

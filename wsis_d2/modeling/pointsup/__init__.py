from .pointsup import PointSupCondInst, PointSupMaskRCNNHead

__all__ = ["PointSupCondInst", "PointSupMaskRCNNHead"]

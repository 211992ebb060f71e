from .boxlevelset import BoxLevelSet
from .guided_filter import guided_filter
from .levelset_loss import LevelSetLoss, levelset_energy

__all__ = ["BoxLevelSet", "LevelSetLoss", "guided_filter", "levelset_energy"]

"""Multi-step workflows built from the engine's runs (PointWSSIS: teacher, refiner, pseudo labels, student)."""
from .pointwssis import run_pipeline

__all__ = ["run_pipeline"]

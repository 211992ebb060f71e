"""Reports on benchmark result files (``benchmarks/results/<date>.json``, read by explicit path).

- :mod:`.rows`: the result row that ``benchmarks/run.py`` writes and every report reads;
- :mod:`.label_cost`: mask AP against annotation seconds per object, a table and a plot (one point
  per method), and the teacher-student rows' pseudo-mask curves;
- :mod:`.paired`: seeded settings against a baseline method, seed by seed;
- :mod:`.cli`: ``wsis-d2 report``.
"""
from .label_cost import method_points, pareto_front, seconds_per_object, supervision, write_report
from .paired import paired_seed_differences, write_paired_report
from .rows import load_rows

__all__ = ["load_rows", "method_points", "paired_seed_differences", "pareto_front", "seconds_per_object",
           "supervision", "write_paired_report", "write_report"]

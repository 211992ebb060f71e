"""The benchmark result row: its fields, how one is made, checked, read, keyed and fingerprinted.

``benchmarks/run.py`` writes rows with :func:`new_row` into ``benchmarks/results/<date>.json`` (a
JSON list of rows) and a Markdown table of :data:`TABLE_FIELDS`; ``wsis-d2 report`` reads them with
:func:`read_rows`. Both key a row the same way: a run by :func:`row_key`, a resolved config by
:func:`setting`.
"""
import hashlib
import json
import statistics
from pathlib import Path
from typing import Iterable, List, Optional

import yaml
from detectron2.config import get_cfg

from ..config import add_wsis_config

# Every field of a row, in the order of the .md table where it is one of TABLE_FIELDS.
FIELDS = {
    "method": "the benchmark variant that ran (benchmarks/variants/<method>.yaml)",
    "seed": "detectron2's SEED of the run (None: unseeded)",
    "config": "the shipped config and the variant's overrides, as passed to the trainer",
    "train_set": "the training set; its name ends with the supervision view (shapes_box, ..._point, ...)",
    "eval_set": "the evaluation set",
    "preset": "the schedule and device preset (benchmarks/presets.yaml)",
    "iters": "SOLVER.MAX_ITER",
    "device": "where it ran",
    "segm_AP": "final mask AP",
    "bbox_AP": "final box AP",
    "ratio_to_full": "segm AP over the fully-supervised twin's of the same detector and preset",
    "twin_date": "the results file the full twin's row came from (the same, else the newest earlier one)",
    "gt_mask_iou": "mean over GT objects of the best mask IoU of any prediction scored >= 0.3 (0 when none), "
                   "class-agnostic: mask quality and recall apart from classification",
    "gt_hole_fill": "over GT objects whose masks have holes (shapes: rings), the share of hole pixels their "
                    "best-IoU prediction calls object (a filled ring is 1)",
    "pseudo_mask_miou": "teacher-student rows: the last mean IoU of their kept pseudo masks vs hidden GT; "
                        "PointWSSIS rows: the pipeline's pseudo masks of the point-labelled objects vs hidden GT",
    "s_per_iter": "median seconds per training iteration after the first 20",
    "peak_rss_mb": "peak resident memory of the training process (not its data-loader workers)",
    "train_eval_minutes": "wall-clock minutes of training and evaluation",
    "commit": "the code the run started with",
    # JSON only
    "segm_AP50": "final mask AP at IoU 0.5",
    "segm_AP75": "final mask AP at IoU 0.75",
    "segm_AP_per_class": "final mask AP per class, {name: AP}",
    "pseudo_mask_curve": "teacher-student rows: [iteration, mIoU, share of GT boxes kept] over training",
    "config_fingerprint": "config_fingerprint() of the resolved config the run wrote",
}
TABLE_FIELDS = list(FIELDS)[:list(FIELDS).index("commit") + 1]
# what every reader needs: a row lacking one is not a benchmark row
REQUIRED_FIELDS = ("method", "train_set", "segm_AP", "preset")


def new_row(**values) -> dict:
    """A row with every field of :data:`FIELDS` (None where not given); an unknown field is an error."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ValueError(f"not fields of a benchmark row: {unknown}; the fields: {list(FIELDS)}")
    return {name: values.get(name) for name in FIELDS}


def check_row(row, source: str) -> dict:
    """``row``, when it is a dict holding :data:`REQUIRED_FIELDS`; else a ValueError naming ``source``."""
    if not isinstance(row, dict):
        raise ValueError(f"{source}: not benchmark results (a JSON list of rows, as benchmarks/run.py writes)")
    missing = [k for k in REQUIRED_FIELDS if k not in row]
    if missing:
        raise ValueError(f"{source}: row {row.get('method')!r} lacks field(s) {missing}")
    return row


def read_rows(path) -> List[dict]:
    """The rows of one results file, each checked; a file that is not one is named in a ValueError."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read benchmark results ({e})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: not benchmark results (a JSON list of rows, as benchmarks/run.py writes)")
    return [check_row(row, str(path)) for row in data]


def row_key(row: dict) -> tuple:
    """What one run is: a rerun with the same key replaces the row (seeded repeats and datasets stay apart)."""
    return row["method"], row["preset"], row.get("seed"), row.get("eval_set")


def setting(row: dict) -> str:
    """The resolved config a row ran (its ``config_fingerprint``; rows written before fingerprints: the
    method name), so that the seeds of one setting run under two names pool."""
    return row.get("config_fingerprint") or row["method"]


def spread(values: Iterable[float], digits: int = 2) -> dict:
    """Mean, sample standard deviation (0 for one value), lowest and highest of ``values``; mean and
    std rounded to ``digits``."""
    values = list(values)
    return {"mean": round(statistics.mean(values), digits),
            "std": round(statistics.stdev(values), digits) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}


def markdown_table(header: List[str], body: Iterable[Iterable]) -> List[str]:
    """The lines of a Markdown table; cells are written with ``str``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in cells) + " |" for cells in body]


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def config_fingerprint(config: dict) -> str:
    """A short hash of the settings of a run's resolved config (the ``config.yaml`` it wrote, as a dict)
    that differ from wsis-d2's defaults, without OUTPUT_DIR and SEED: repeats of one setting share it,
    and a key added to the defaults later does not change it. The defaults are today's: should a default
    value change, runs on either side of the change that kept their own default look alike."""
    defaults = _flatten(yaml.safe_load(add_wsis_config(get_cfg()).dump()))
    missing = object()
    changed = {k: v for k, v in _flatten(config).items()
               if k not in ("OUTPUT_DIR", "SEED") and defaults.get(k, missing) != v}
    return hashlib.sha1(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:10]


def segm_ap_breakdown(evaluation: dict) -> dict:
    """The final evaluation's segm AP50 / AP75 and AP per class ({name: AP}), rounded (JSON rows only)."""
    prefix = "segm/AP-"
    return {"segm_AP50": round(evaluation.get("segm/AP50", float("nan")), 2),
            "segm_AP75": round(evaluation.get("segm/AP75", float("nan")), 2),
            "segm_AP_per_class": {k[len(prefix):]: round(v, 2) for k, v in sorted(evaluation.items())
                                  if k.startswith(prefix)}}


def config_file(row: dict) -> Optional[str]:
    """The shipped config a row trained (``configs/.../X.yaml`` in its ``config``), None when it names none."""
    for word in (row.get("config") or "").replace("(", " ").replace(")", " ").split():
        if word.startswith("configs/") and word.endswith(".yaml"):
            return word
    return None


def load_rows(files: Iterable[str], preset: str = None, by_setting: bool = False, eval_set: str = None) -> List[dict]:
    """Rows of benchmark result files (only ``preset``'s and ``eval_set``'s when given); a (method,
    preset, seed, eval set) seen again later (a later file, or further down one file) replaces the
    earlier row (seeded repeats stay apart). With ``by_setting`` a row is keyed by its resolved config
    (:func:`setting`) instead of its method name, so that the seeds of a setting run under two names (a
    variant that later became the preset) pool, the later run of a seed winning. The rows come in the
    order of their runs."""
    rows = {}
    for path in files:
        for row in read_rows(path):
            if (preset is None or row["preset"] == preset) and (eval_set is None or row.get("eval_set") == eval_set):
                method, row_preset, seed, row_eval_set = row_key(row)
                key = (setting(row) if by_setting else method, row_preset, seed, row_eval_set)
                rows.pop(key, None)  # re-inserted: the dict's order stays the order of the runs
                rows[key] = row
    return list(rows.values())

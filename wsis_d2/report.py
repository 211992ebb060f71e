"""Label-cost report: mask AP (and ratio to full supervision) against annotation seconds per object.

Annotation costs per object, from the papers cited with each:

- full mask: 79.2 s (COCO's polygon masks; Bearman et al., ECCV 2016, as cited by PointSup);
- box: 7 s (extreme clicking; Papadopoulos et al., ICCV 2017);
- box + K points: 7 s + 0.8 s per point, so that box + 10 points = 15 s (PointSup,
  Cheng et al., CVPR 2022: about 5x cheaper than masks);
- semi_<p> (PointWSSIS-style views here: p % of images fully labelled, the rest box +
  one point): the per-object mix of the above.

Pseudo-label views (made from boxes by a program) cost what their boxes cost.

Teacher-student rows that measured their pseudo masks over training (``pseudo_mask_curve``)
also get a plot of that curve. With a baseline method, seeded settings are compared with it seed by
seed (:func:`paired_seed_differences`): whether a method is "above" another on a noisy benchmark is
a question for the paired differences, not for two means.
"""
import json
import re
from pathlib import Path
from typing import Iterable, List

import numpy as np

MASK_SECONDS = 79.2
BOX_SECONDS = 7.0
POINT_SECONDS = 0.8


FULLY_LABELLED = ("coco_2017_train",)
# the supervision view a dataset name ends with (shapes_box, coco_2017_train_point, ...)
VIEW_SUFFIX = re.compile(r"(?:^|_)(full|box|point|pseudo_[a-z]+|semi_[\d.]+(?:_masks_only)?)$")


def seconds_per_object(row: dict) -> float:
    """Estimated annotation seconds per object of the labels a benchmark row trained on.

    The view is the end of the training set's name (detectron2's ``coco_2017_train`` is full).
    """
    match = VIEW_SUFFIX.search(row["train_set"])
    if match is None and row["train_set"] not in FULLY_LABELLED:
        raise ValueError(f"row {row.get('method')!r}: no annotation cost known for train_set {row['train_set']!r}")
    view = match.group(1) if match else "full"
    if view == "full":
        return MASK_SECONDS
    if view == "box" or view.startswith("pseudo_"):
        return BOX_SECONDS
    if view == "point":
        match = re.search(r"INPUT\.POINTS_PER_INSTANCE (\d+)", row.get("config", ""))
        points = int(match.group(1)) if match and int(match.group(1)) > 0 else 10
        return BOX_SECONDS + POINT_SECONDS * points
    if view.startswith("semi_"):
        # the p % fully labelled images' masks, and (unless only those are used) one point + box per
        # object of the rest
        masks_only = view.endswith("_masks_only")
        share = float(view[len("semi_"):].replace("_masks_only", "")) / 100.0
        return share * MASK_SECONDS + (0.0 if masks_only else (1 - share) * (BOX_SECONDS + POINT_SECONDS))
    raise ValueError(f"row {row.get('method')!r}: no annotation cost known for train_set {row['train_set']!r}")


def load_rows(files: Iterable[str], preset: str = None, by_setting: bool = False) -> List[dict]:
    """Rows of benchmark result files (only ``preset``'s when given); a (method, preset, seed) seen
    again later (a later file, or further down one file) replaces the earlier row (seeded repeats stay
    apart). With ``by_setting`` a row is keyed by its resolved config (``config_fingerprint``, the
    method name for rows without one) instead of its method name, so that the seeds of a setting run
    under two names (a variant that later became the preset) pool, the later run of a seed winning."""
    rows = {}
    for path in files:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: cannot read benchmark results ({e})") from None
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise ValueError(f"{path}: not benchmark results (a JSON list of rows, as benchmarks/run.py writes)")
        for row in data:
            missing = [k for k in ("method", "train_set", "segm_AP", "preset") if k not in row]
            if missing:
                raise ValueError(f"{path}: row {row.get('method')!r} lacks field(s) {missing}")
            if preset is None or row["preset"] == preset:
                setting = (row.get("config_fingerprint") or row["method"]) if by_setting else row["method"]
                key = (setting, row["preset"], row.get("seed"))
                rows.pop(key, None)  # re-inserted: the dict's order stays the order of the runs
                rows[key] = row
    return list(rows.values())


def _paired_stats(values: dict, baseline: dict, seeds: List[int]) -> dict:
    """Means, mean paired difference, its sample std, two-sided 95 % Student-t interval, wins, verdict
    (from the interval as printed; equal differences at every seed have no spread to judge by)."""
    from scipy import stats

    diffs = np.array([values[s] - baseline[s] for s in seeds])
    mean, std = float(diffs.mean()), float(diffs.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(seeds) - 1) * std / np.sqrt(len(seeds)))
    low, high = round(mean - half, 2), round(mean + half, 2)
    if round(std, 2) == 0:
        verdict = "no spread to judge by (std 0)"
    else:
        verdict = "above" if low > 0 else "below" if high < 0 else "not shown either way"
    return {"mean": round(float(np.mean([values[s] for s in seeds])), 2),
            "baseline_mean": round(float(np.mean([baseline[s] for s in seeds])), 2),
            "mean_difference": round(mean, 2), "difference_std": round(std, 2),
            "ci95": (low, high), "wins": int((diffs > 0).sum()), "verdict": verdict}


def _classes_but(row: dict, other: dict, excluded: set):
    """Mean segm AP of ``row`` over its classes (``segm_AP_per_class``) not in ``excluded``, ignoring
    classes without AP (NaN: no GT in the eval set), as COCO's segm AP averages its classes: the AP it
    would have without them. None when ``row`` or the row it is paired with (``other``) lacks per-class AP."""
    per_class, other_classes = row.get("segm_AP_per_class"), other.get("segm_AP_per_class")
    if not per_class or not other_classes:
        return None
    if set(per_class) != set(other_classes):
        raise ValueError(f"rows {row['method']!r} and {other['method']!r} (seed {row['seed']}) were evaluated on "
                         f"different classes: {sorted(per_class)} vs {sorted(other_classes)}")
    unknown = excluded - set(per_class)
    if unknown:
        raise ValueError(f"row {row['method']!r} has no class {sorted(unknown)}; its classes: {sorted(per_class)}")
    kept = [ap for name, ap in per_class.items() if name not in excluded and not np.isnan(ap)]
    if not kept:
        raise ValueError(f"row {row['method']!r}: excluding {sorted(excluded)} leaves no class with an AP")
    return float(np.mean(kept))


def paired_seed_differences(rows: List[dict], baseline: str, exclude_classes: Iterable[str] = ()) -> List[dict]:
    """Segm AP of each seeded setting minus ``baseline``'s (a method name) at the seeds both ran.

    ``rows``: :func:`load_rows` ``(by_setting=True)`` of one preset. A setting is a
    ``config_fingerprint`` (its name: the method names it ran under, newest first). Per setting with
    at least two seeds in common with the baseline: the seeds, both means, the mean paired difference,
    its sample standard deviation, the two-sided 95 % Student-t interval of the mean difference, and
    how many seeds it wins. Seed-to-seed spread on these benchmarks is several AP, so a setting is
    only shown above (or below) the baseline when that interval excludes 0 (``verdict``). With
    ``exclude_classes``, ``without_classes`` holds the same for the mean AP of the other classes
    (None where a row lacks ``segm_AP_per_class``): whether a difference comes from a few classes.
    """
    exclude_classes = set(exclude_classes)
    presets = {r["preset"] for r in rows}
    if len(presets) > 1:
        raise ValueError(f"rows of presets {sorted(presets)}: pair seeds within one (load_rows(..., preset=...))")
    seeded = [r for r in rows if r.get("seed") is not None]
    settings = {}
    for row in seeded:
        settings.setdefault(row.get("config_fingerprint") or row["method"], []).append(row)
    base_keys = {key for key, group in settings.items() if any(r["method"] == baseline for r in group)}
    if not base_keys:
        raise ValueError(f"no seeded rows of the baseline method {baseline!r}")
    if len(base_keys) > 1:
        raise ValueError(f"baseline {baseline!r} ran under {len(base_keys)} configs {sorted(base_keys)}: "
                         "pass result files of one of them")
    base_rows = {r["seed"]: r for r in settings.pop(base_keys.pop())}
    table = []
    for group in settings.values():
        by_seed = {r["seed"]: r for r in group}
        seeds = sorted(set(by_seed) & set(base_rows))
        if len(seeds) < 2:
            continue
        names = list(dict.fromkeys(r["method"] for r in reversed(group)))
        entry = {"setting": " = ".join(names), "config_fingerprint": group[0].get("config_fingerprint"),
                 "seeds": seeds, **_paired_stats({s: by_seed[s]["segm_AP"] for s in seeds},
                                                 {s: base_rows[s]["segm_AP"] for s in seeds}, seeds)}
        if exclude_classes:
            values = {s: _classes_but(by_seed[s], base_rows[s], exclude_classes) for s in seeds}
            base = {s: _classes_but(base_rows[s], by_seed[s], exclude_classes) for s in seeds}
            complete = None not in values.values() and None not in base.values()
            entry["without_classes"] = _paired_stats(values, base, seeds) if complete else None
        table.append(entry)
    return table


def _name(row: dict, with_preset: bool) -> str:
    name = row["method"] if row.get("seed") is None else f"{row['method']} (seed {row['seed']})"
    return f"{name} ({row['preset']})" if with_preset else name


def plot_pseudo_mask_curves(rows: List[dict], path: Path, with_preset: bool = False) -> bool:
    """Mean IoU of the kept pseudo masks vs hidden GT, and the share of GT boxes they cover, over
    training iterations, one line per row with a ``pseudo_mask_curve``; False when no row has one."""
    import matplotlib.pyplot as plt

    curves = [(r, r["pseudo_mask_curve"]) for r in rows if r.get("pseudo_mask_curve")]
    if not curves:
        return False
    # the legend goes below both plots, three columns wide: over a plot it hid the curves at 20+ rows
    legend_columns = 3
    legend_height = 0.2 * -(-len(curves) // legend_columns) + 0.3  # inches
    fig, axes = plt.subplots(1, 2, figsize=(12, 5 + legend_height))
    for i, (row, curve) in enumerate(curves):
        iterations = [c[0] for c in curve]
        # matplotlib's colour cycle repeats after 10 lines: a new line style per cycle keeps each legible
        style = ("-", "--", ":", "-.")[i // 10 % 4]
        for ax, column in ((axes[0], 1), (axes[1], 2)):
            ax.plot(iterations, [c[column] for c in curve], marker=".", linestyle=style,
                    label=_name(row, with_preset))
    for ax, label in ((axes[0], "mean IoU of kept pseudo masks vs hidden GT"), (axes[1], "share of GT boxes kept")):
        ax.set_xlabel("training iteration")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=legend_columns, fontsize=8)
    fig.suptitle("wsis-d2: teacher pseudo-mask quality over training")
    fig.tight_layout(rect=(0, legend_height / (5 + legend_height), 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_report(rows: List[dict], out_dir: str) -> dict:
    """Write ``label_cost.md``, ``label_cost.png`` and, when rows carry pseudo-mask curves,
    ``pseudo_mask_curves.png`` into ``out_dir``; return their paths (``curves`` None without)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = sorted(({**r, "seconds": seconds_per_object(r)} for r in rows), key=lambda r: (r["seconds"], r["method"]))
    lines = ["| method | preset | trained on | s/object | segm AP | ratio to full |", "|---|---|---|---|---|---|"]
    lines += [f"| {_name(r, False)} | {r['preset']} | {r['train_set']} | {r['seconds']:.1f} | {r['segm_AP']} | "
              f"{r.get('ratio_to_full')} |" for r in table]
    several_presets = len({r["preset"] for r in table}) > 1
    md = out / "label_cost.md"
    md.write_text("\n".join(lines) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    for ax, key, label in ((axes[0], "segm_AP", "mask AP"), (axes[1], "ratio_to_full", "ratio to full supervision")):
        points = [(r["seconds"], r[key], _name(r, several_presets)) for r in table if r.get(key) is not None]
        ax.scatter([p[0] for p in points], [p[1] for p in points])
        for x, y, name in points:
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("annotation seconds per object (log)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    fig.suptitle("wsis-d2: mask quality against label cost")
    fig.tight_layout()
    png = out / "label_cost.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    curves = out / "pseudo_mask_curves.png"
    has_curves = plot_pseudo_mask_curves(table, curves, several_presets)
    return {"table": str(md), "plot": str(png), "curves": str(curves) if has_curves else None, "points": [(r["method"], r["seconds"], r["segm_AP"]) for r in table]}


def write_paired_report(rows: List[dict], baseline: str, out_dir: str, exclude_classes: Iterable[str] = (),
                        seeds: Iterable[int] = ()) -> dict:
    """Write ``paired_vs_<baseline>.md`` (:func:`paired_seed_differences` of ``rows``) into ``out_dir``;
    return its path and the table.

    ``seeds``, when given, keeps only those seeds' rows: e.g. the seeds run after a comparison was
    chosen, to confirm it on data that did not suggest it. The table's first line names them.
    """
    exclude_classes = sorted(set(exclude_classes))
    seeds = sorted(set(seeds))
    if seeds:
        rows = [r for r in rows if r.get("seed") in seeds]
    table = paired_seed_differences(rows, baseline, exclude_classes)

    def cells(t: dict, paired_seeds: List[int]) -> str:
        return (f"{','.join(map(str, paired_seeds))} | {t['mean']} | {t['baseline_mean']} | "
                f"{t['mean_difference']:+.2f} | {t['difference_std']} | {t['ci95'][0]:+.2f} .. {t['ci95'][1]:+.2f} | "
                f"{t['wins']}/{len(paired_seeds)} | "
                f"{t['verdict']} |")

    header = (f"| setting | config | seeds | mean | {baseline} mean | difference | std | 95 % interval | wins "
              "| verdict |")
    lines = [f"Segm AP minus {baseline}'s at the same seeds (mean paired difference, sample std, two-sided 95 % "
             "Student-t interval; above / below only when the interval excludes 0)"
             + (f"; only seeds {', '.join(map(str, seeds))}." if seeds else "."), "", header,
             "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {t['setting']} | {t['config_fingerprint'] or '—'} | {cells(t, t['seeds'])}" for t in table]
    if exclude_classes:
        lines += ["", f"The same on the mean AP of the classes other than {', '.join(exclude_classes)}:", "", header,
                  "|---|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {t['setting']} | {t['config_fingerprint'] or '—'} | {cells(t['without_classes'], t['seeds'])}"
                  for t in table if t["without_classes"]]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"paired_vs_{baseline}.md"
    path.write_text("\n".join(lines) + "\n")
    return {"table": str(path), "rows": table}

"""Seeded settings against a baseline method, seed by seed (``wsis-d2 report --baseline``).

Whether a method is "above" another on a noisy benchmark is a question for the paired differences at
the seeds both ran, not for two means.
"""
from pathlib import Path
from typing import Iterable, List

import numpy as np
from scipy import stats

from .rows import setting

def _paired_stats(values: dict, baseline: dict, seeds: List[int]) -> dict:
    """Means, mean paired difference, its sample std, two-sided 95 % Student-t interval, wins, verdict
    (from the interval as printed; equal differences at every seed have no spread to judge by)."""
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
    eval_sets = {r.get("eval_set") for r in rows}
    if len(eval_sets) > 1:
        raise ValueError(f"rows of eval sets {sorted(map(str, eval_sets))}: pair seeds within one "
                         "(load_rows(..., eval_set=...), wsis-d2 report --eval-set)")
    seeded = [r for r in rows if r.get("seed") is not None]
    settings = {}
    for row in seeded:
        settings.setdefault(setting(row), []).append(row)
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

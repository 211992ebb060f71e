"""Label-cost report: mask AP (and ratio to full supervision) against annotation seconds per object.

Annotation costs per object:

- full mask: 79.2 s (COCO's polygon masks; Bearman et al., ECCV 2016, as cited by PointSup);
- box: 7 s (extreme clicking; Papadopoulos et al., ICCV 2017);
- box + K points: 7 s + 0.8 s per point, so that box + 10 points = 15 s (PointSup,
  Cheng et al., CVPR 2022: about 5x cheaper than masks);
- semi_<p> (PointWSSIS-style views here: p % of images fully labelled, the rest box +
  one point): the per-object mix of the above;
- mixed_<m>_<p> (per-object mixed supervision: m % of the objects with masks, p % with a box
  + K points, the rest boxes): m % x mask + p % x (box + K points) + the rest x box.

Pseudo-label views (made from boxes by a program) cost what their boxes cost.

The table lists every row. The plot draws one point per method (:func:`method_points`): the mean
over its seeds of its newest setting, with bars from the lowest to the highest seed, coloured by
the kind of supervision, with the Pareto front (nothing cheaper scores as high) joined; variants
of a method only when asked; the mixed views' points (one line with points, one without) joined
by a solid line of their colour. Teacher-student rows that measured their pseudo masks over training
(``pseudo_mask_curve``) also get a plot of that curve.
"""
import math
import re
import statistics
from pathlib import Path
from typing import List, Optional, Tuple

from ..data.real import REAL_DATASETS
from .rows import config_file, markdown_table, setting, spread

MASK_SECONDS = 79.2
BOX_SECONDS = 7.0
POINT_SECONDS = 0.8

# training sets that hold every object's mask without a view suffix: detectron2's COCO and the
# prepared photo datasets (``pennfudan_train``, ``balloon_train``)
FULLY_LABELLED = ("coco_2017_train",) + tuple(f"{name}_train" for name in REAL_DATASETS)
# the supervision view a dataset name ends with (shapes_box, coco_2017_train_point, ...)
VIEW_SUFFIX = re.compile(r"(?:^|_)(full|box|point|pseudo_[a-z]+|semi_[\d.]+(?:_masks_only)?|mixed_[\d.]+_[\d.]+)$")
# kind of supervision: the plot's legend and colour
KINDS = {
    "full": ("full masks", "#222222"),
    "semi": ("masks of p % of the images + box and point", "#9467bd"),
    "semi_masks_only": ("masks of p % of the images alone", "#e377c2"),
    "point": ("box + points", "#2ca02c"),
    "box": ("boxes", "#1f77b4"),
    "pseudo": ("pseudo masks made from boxes", "#ff7f0e"),
    "mixed": ("masks of m % of the objects + boxes", "#d62728"),
    "mixed_points": ("masks of m % of the objects + boxes and points", "#8c564b"),
}
# kinds whose points are joined by a line of their own (a curve over the share of masks)
CURVE_KINDS = ("mixed", "mixed_points")


def supervision(row: dict) -> Tuple[str, float]:
    """(kind of supervision, one of :data:`KINDS`; estimated annotation seconds per object) of the
    labels a benchmark row trained on.

    The view is the end of the training set's name (``coco_2017_train``, ``pennfudan_train``: full).
    """
    match = VIEW_SUFFIX.search(row["train_set"])
    if match is None and row["train_set"] not in FULLY_LABELLED:
        raise ValueError(f"row {row.get('method')!r}: no annotation cost known for train_set {row['train_set']!r}")
    view = match.group(1) if match else "full"
    if view == "full":
        return "full", MASK_SECONDS
    if view == "box":
        return "box", BOX_SECONDS
    if view.startswith("pseudo_"):
        return "pseudo", BOX_SECONDS
    if view == "point" or view.startswith("mixed_"):
        match = re.search(r"INPUT\.POINTS_PER_INSTANCE (\d+)", row.get("config") or "")
        points = int(match.group(1)) if match and int(match.group(1)) > 0 else 10
        if view == "point":
            return "point", BOX_SECONDS + POINT_SECONDS * points
        masks, with_points = (float(v) / 100.0 for v in view[len("mixed_"):].split("_"))
        seconds = masks * MASK_SECONDS + with_points * (BOX_SECONDS + POINT_SECONDS * points) + \
            (1 - masks - with_points) * BOX_SECONDS
        return ("mixed_points" if with_points > 0 else "mixed"), seconds
    # semi_<p>: the p % fully labelled images' masks, and (unless only those are used) one point + box
    # per object of the rest
    masks_only = view.endswith("_masks_only")
    share = float(view[len("semi_"):].replace("_masks_only", "")) / 100.0
    if masks_only:
        return "semi_masks_only", share * MASK_SECONDS
    return "semi", share * MASK_SECONDS + (1 - share) * (BOX_SECONDS + POINT_SECONDS)


def seconds_per_object(row: dict) -> float:
    """Estimated annotation seconds per object of the labels a benchmark row trained on."""
    return supervision(row)[1]


def _variant_of(method: str, config: Optional[str], methods: dict) -> Optional[str]:
    """The method ``method`` is a variant of: the shortest other name M among ``methods`` ({name:
    config file}) such that ``method`` is ``M_<something>`` and trained M's config file."""
    parents = [m for m, c in methods.items() if method.startswith(m + "_") and c == config]
    return min(parents, key=len) if parents else None


def method_points(rows: List[dict], variants: bool = False) -> List[dict]:
    """One point per method and preset of ``rows`` (in the order of their runs, as
    :func:`~wsis_d2.report.rows.load_rows` gives them).

    A method name's point is its newest setting (resolved config; rows of its older settings are left
    out): the setting's rows by seed, the later run of a seed counting (an unseeded run counts as one
    more), pooled across the names it ran under, and named by its newest row. Per point: the seeds,
    :func:`~wsis_d2.report.rows.spread` of segm AP and of the ratio to full supervision (None where no
    row has one), the kind of supervision and its seconds per object. A method named ``M_<something>``
    that trained M's config file is a variant of M (``variant_of``) and is only returned with
    ``variants``. Sorted by preset, cost, then name.
    """
    settings = {}
    for order, row in enumerate(rows):
        by_seed = settings.setdefault((row["preset"], setting(row)), {})
        by_seed.pop(row.get("seed"), None)
        by_seed[row.get("seed")] = (order, row)
    newest = {}  # (preset, name) -> (order of the setting's newest row, the setting's rows)
    for by_seed in settings.values():
        order, last = max(by_seed.values(), key=lambda item: item[0])
        key = (last["preset"], last["method"])
        if key not in newest or newest[key][0] < order:
            newest[key] = (order, [row for _, row in sorted(by_seed.values(), key=lambda item: item[0])])
    configs = {key: config_file(group[-1]) for key, (_, group) in newest.items()}
    points = []
    for (preset, method), (_, group) in newest.items():
        same_preset = {m: c for (p, m), c in configs.items() if p == preset}
        parent = _variant_of(method, configs[(preset, method)], same_preset)
        if parent is not None and not variants:
            continue
        kind, seconds = supervision(group[-1])
        ratios = [r["ratio_to_full"] for r in group if r.get("ratio_to_full") is not None]
        points.append({"method": method, "preset": preset, "variant_of": parent, "kind": kind, "seconds": seconds,
                       "seeds": sorted((r.get("seed") for r in group), key=lambda s: (s is None, s or 0)),
                       "segm_AP": spread(r["segm_AP"] for r in group),
                       "ratio_to_full": spread(ratios, digits=3) if ratios else None})
    return sorted(points, key=lambda p: (p["preset"], p["seconds"], p["method"]))


def pareto_front(points: List[dict], key: str = "segm_AP") -> List[dict]:
    """The points of :func:`method_points` that no cheaper (or equally cheap) point matches on the mean
    of ``key``, by cost; points without ``key`` are left out."""
    front, best = [], None
    for point in sorted((p for p in points if p.get(key)), key=lambda p: (p["seconds"], -p[key]["mean"])):
        if best is None or point[key]["mean"] > best:
            front.append(point)
            best = point[key]["mean"]
    return front


def fronts(points: List[dict], key: str = "segm_AP") -> dict:
    """{preset: :func:`pareto_front` of that preset's points}."""
    return {preset: pareto_front([p for p in points if p["preset"] == preset], key)
            for preset in sorted({p["preset"] for p in points})}


def _overlap(a, b) -> float:
    """Overlap area of two (x0, y0, x1, y1) boxes."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def _distance(box, point) -> float:
    """Distance from a point to a (x0, y0, x1, y1) box (0 inside)."""
    return math.hypot(max(box[0] - point[0], 0.0, point[0] - box[2]), max(box[1] - point[1], 0.0, point[1] - box[3]))


# label offsets tried around a point, in pixels: right, left, above, below, then the diagonals, nearest first
_DIRECTIONS = ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, 1), (1, -1), (-1, -1))
_RADII = (6, 14, 24, 36, 50, 66, 84, 104, 126)


def _place_labels(ax, items: List[Tuple[float, float, float, float, str, str, float]]) -> None:
    """Label each point ``(x, y, y_low, y_high, text, colour, font size)`` of ``ax`` where its text
    overlaps no other label, marker or bar, stays inside the axes and lies nearer its own marker than
    any other: the first such offset of :data:`_DIRECTIONS` x :data:`_RADII` (the least overlapping one
    when none is free), with a thin leader line when not next to its marker."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    to_pixels = ax.transData.transform
    frame = ax.get_window_extent(renderer)
    obstacles, markers = [], []
    for x, y, low, high, *_ in items:
        px, py = to_pixels((x, y))
        _, p_low = to_pixels((x, low))
        _, p_high = to_pixels((x, high))
        markers.append((px, py))
        obstacles.append((px - 5, py - 5, px + 5, py + 5))
        obstacles.append((px - 3, p_low, px + 3, p_high))
    for (x, y, _, _, text, colour, fontsize), (px, py) in zip(items, markers):
        probe = ax.text(0, 0, text, fontsize=fontsize)
        extent = probe.get_window_extent(renderer)
        probe.remove()
        width, height = extent.width + 2, extent.height + 2
        best = None
        for radius in _RADII:
            for dx, dy in _DIRECTIONS:
                ox, oy = dx * radius, dy * radius
                x0 = px + ox - (width if dx < 0 else width / 2 if dx == 0 else 0)
                y0 = py + oy - (height if dy < 0 else height / 2 if dy == 0 else 0)
                box = (x0, y0, x0 + width, y0 + height)
                outside = (box[0] < frame.x0 or box[2] > frame.x1 or box[1] < frame.y0 or box[3] > frame.y1)
                own = _distance(box, (px, py))
                nearer = any(_distance(box, m) < own for m in markers if m != (px, py))
                cost = sum(_overlap(box, o) for o in obstacles) + (1e9 if outside else 0.0) + (200.0 if nearer else 0.0)
                if best is None or cost < best[0]:
                    best = (cost, ox, oy, dx, dy, box)
            if best[0] == 0:
                break
        _, ox, oy, dx, dy, box = best
        obstacles.append(box)
        ax.annotate(text, (x, y), xytext=(ox, oy), textcoords="offset pixels", fontsize=fontsize, color=colour,
                    ha="right" if dx < 0 else "center" if dx == 0 else "left",
                    va="top" if dy < 0 else "center" if dy == 0 else "bottom",
                    arrowprops=(dict(arrowstyle="-", color="0.45", lw=0.6, shrinkA=0, shrinkB=3)
                                if max(abs(ox), abs(oy)) > 6 else None))


def _point_name(point: dict, with_preset: bool) -> str:
    runs = len(point["seeds"])
    name = point["method"] + ("" if runs < 2 else f", {runs} seeds" if None not in point["seeds"] else f", {runs} runs")
    return f"{name} ({point['preset']})" if with_preset else name


def _dodge(points: List[dict], key: str, gap: float, step: float = 1.06) -> List[float]:
    """x of each point: its seconds, unless a point of about the same cost (within 2 %) already
    stands there with a marker or bar (its lowest to highest value of ``key``, ``gap`` added each
    side) overlapping this one's: then the nearest free slot beside it, ``step`` apart on the log axis,
    so that each marker and bar stays visible (points placed in order of their mean)."""
    xs = [p["seconds"] for p in points]
    order = sorted(range(len(points)), key=lambda i: points[i]["seconds"])
    groups = []
    for i in order:
        if groups and points[i]["seconds"] <= points[groups[-1][-1]]["seconds"] * 1.02:
            groups[-1].append(i)
        else:
            groups.append([i])
    for group in groups:
        centre = math.exp(statistics.mean(math.log(points[i]["seconds"]) for i in group))
        taken = []  # (slot, low, high)
        for i in sorted(group, key=lambda i: (points[i][key]["mean"], points[i]["method"])):
            low, high = points[i][key]["min"] - gap, points[i][key]["max"] + gap
            slot = next(slot for slot in (k // 2 if k % 2 == 0 else -(k // 2 + 1) for k in range(2 * len(group) + 1))
                        if all(s != slot or high < t_low or low > t_high for s, t_low, t_high in taken))
            taken.append((slot, low, high))
            xs[i] = centre * step ** slot if len(group) > 1 else points[i]["seconds"]
    return xs


def plot_label_cost(points: List[dict], path: Path) -> None:
    """Mask AP and ratio to full supervision against annotation seconds per object: one marker per
    point of :func:`method_points` at its mean, bars from its lowest to its highest seed, coloured by
    kind of supervision (variants hollow), points of one cost side by side, the Pareto front joined,
    labels placed apart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    with_preset = len({p["preset"] for p in points}) > 1
    fig, axes = plt.subplots(1, 2, figsize=(15, 6.5))
    seconds = [p["seconds"] for p in points]
    panels = []
    for ax, key, label in ((axes[0], "segm_AP", "mask AP"), (axes[1], "ratio_to_full", "ratio to full supervision")):
        drawn = [p for p in points if p.get(key)]
        top = max((p[key]["max"] for p in drawn), default=1.0) * 1.12
        xs = _dodge(drawn, key, gap=0.015 * top)
        for x, p in zip(xs, drawn):
            colour, stats = KINDS[p["kind"]][1], p[key]
            ax.errorbar(x, stats["mean"], yerr=[[max(stats["mean"] - stats["min"], 0)],
                                                [max(stats["max"] - stats["mean"], 0)]],
                        fmt="o", color=colour, markersize=6 if p["variant_of"] is None else 5,
                        markerfacecolor=colour if p["variant_of"] is None else "white", capsize=3, lw=1.2, zorder=3)
        on_front = set()
        for front in fronts(drawn, key).values():
            on_front.update(id(p) for p in front)
            ax.plot([xs[drawn.index(p)] for p in front], [p[key]["mean"] for p in front], "--", color="0.45",
                    lw=1, zorder=2)
        for kind in CURVE_KINDS:
            for preset in sorted({p["preset"] for p in drawn}):
                curve = sorted((i for i, p in enumerate(drawn) if p["kind"] == kind and p["preset"] == preset),
                               key=lambda i: drawn[i]["seconds"])
                if len(curve) > 1:
                    ax.plot([xs[i] for i in curve], [drawn[i][key]["mean"] for i in curve], "-",
                            color=KINDS[kind][1], lw=1.2, zorder=2)
        ax.set_xscale("log")
        if seconds:
            ax.set_xlim(min(seconds) / 1.6, max(seconds) * 1.6)
        ax.set_ylim(0, top)
        ax.set_xlabel("annotation seconds per object (log; points of one cost side by side)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.set_title(f"{label}: mean over seeds, bars from the lowest to the highest", fontsize=10)
        # the labels of the front's points first (the nearest places), then methods before variants, high first
        order = sorted(range(len(drawn)), key=lambda i: (id(drawn[i]) not in on_front,
                                                         drawn[i]["variant_of"] is not None, -drawn[i][key]["mean"]))
        panels.append((ax, [(xs[i], drawn[i][key]["mean"], drawn[i][key]["min"], drawn[i][key]["max"],
                             _point_name(drawn[i], with_preset), KINDS[drawn[i]["kind"]][1],
                             8 if drawn[i]["variant_of"] is None else 7) for i in order]))
    fig.suptitle("wsis-d2: mask quality against label cost, one point per method")
    kinds = [k for k in KINDS if any(p["kind"] == k for p in points)]
    handles = [Line2D([], [], marker="o", ls="", color=KINDS[k][1], label=KINDS[k][0]) for k in kinds]
    handles.append(Line2D([], [], ls="--", color="0.45", label="Pareto front (nothing cheaper scores as high)"))
    if any(p["variant_of"] for p in points):
        handles.append(Line2D([], [], marker="o", ls="", color="0.3", markerfacecolor="white", label="variant"))
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.canvas.draw()  # the final layout: labels are placed in pixels
    for ax, items in panels:
        _place_labels(ax, items)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _name(row: dict, with_preset: bool) -> str:
    name = row["method"] if row.get("seed") is None else f"{row['method']} (seed {row['seed']})"
    return f"{name} ({row['preset']})" if with_preset else name


def plot_pseudo_mask_curves(rows: List[dict], path: Path, with_preset: bool = False) -> bool:
    """Mean IoU of the kept pseudo masks vs hidden GT, and the share of GT boxes they cover, over
    training iterations, one line per row with a ``pseudo_mask_curve``; False when no row has one."""
    import matplotlib

    matplotlib.use("Agg")
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


def _cell(stats: Optional[dict]) -> str:
    if stats is None:
        return "— | — | —"
    return f"{stats['mean']} | {stats['std']} | {stats['min']}-{stats['max']}"


def write_report(rows: List[dict], out_dir: str, variants: bool = False) -> dict:
    """Write ``label_cost.md`` (every row, then one line per point of :func:`method_points`),
    ``label_cost.png`` (:func:`plot_label_cost`; variants with ``variants``) and, when rows carry
    pseudo-mask curves, ``pseudo_mask_curves.png`` into ``out_dir``; return their paths (``curves``
    None without), the rows' ``points`` (method, seconds, segm AP) and the plotted ``methods``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = sorted(({**r, "seconds": seconds_per_object(r)} for r in rows), key=lambda r: (r["seconds"], r["method"]))
    several_presets = len({r["preset"] for r in table}) > 1
    lines = markdown_table(["method", "preset", "trained on", "s/object", "segm AP", "ratio to full"],
                           ([_name(r, False), r["preset"], r["train_set"], f"{r['seconds']:.1f}", r["segm_AP"],
                             r.get("ratio_to_full")] for r in table))
    methods = method_points(rows, variants)
    on_front = {(p["preset"], p["method"]) for members in fronts(methods).values() for p in members}
    lines += ["", "One point per method: its newest setting's runs (seeds), segm AP and ratio to full as mean | "
              "sample std | range; on the Pareto front when nothing cheaper scores as high."
              + (" Variants included." if variants else ""), ""]
    lines += markdown_table(
        ["method", "variant of", "preset", "supervision", "s/object", "runs", "segm AP", "std", "range",
         "ratio to full", "std", "range", "Pareto front"],
        ([p["method"], p["variant_of"] or "—", p["preset"], KINDS[p["kind"]][0], f"{p['seconds']:.1f}",
          ",".join("unseeded" if s is None else str(s) for s in p["seeds"]), _cell(p["segm_AP"]),
          _cell(p["ratio_to_full"]), "yes" if (p["preset"], p["method"]) in on_front else ""] for p in methods))
    md = out / "label_cost.md"
    md.write_text("\n".join(lines) + "\n")
    png = out / "label_cost.png"
    plot_label_cost(methods, png)
    curves = out / "pseudo_mask_curves.png"
    has_curves = plot_pseudo_mask_curves(table, curves, several_presets)
    return {"table": str(md), "plot": str(png), "curves": str(curves) if has_curves else None,
            "points": [(r["method"], r["seconds"], r["segm_AP"]) for r in table], "methods": methods}

#!/usr/bin/env python
"""Train + evaluate benchmark variants on the shapes data under one backbone and schedule.

    python benchmarks/run.py --list                       # every variant and preset, with its note
    python benchmarks/run.py --methods condinst,mask_rcnn # CPU preset
    python benchmarks/run.py --methods boxinst,boxteacher --seeds 1,2,3   # repeats, mean +- std
    python benchmarks/run.py --preset cpu_2x --methods boxinst,boxteacher # the CPU schedule doubled
    python benchmarks/run.py --gpu --methods boxinst                      # the GPU preset
    python benchmarks/run.py --methods boxteacher --seeds 1 --dry-run     # what would run, nothing trains
    python benchmarks/run.py --preset realphoto --dataset pennfudan --methods condinst,boxinst  # real photos

A variant is ``benchmarks/variants/<name>.yaml``: a shipped config (or ``extends:`` another
variant), its overrides and a note; a preset (``benchmarks/presets.yaml``) adds schedule and device
overrides before them. Each run trains in a fresh process; its rows (``wsis_d2.report.rows``) are
merged into ``benchmarks/results/<date>.json`` and ``.md`` (a rerun of a variant replaces its row of
that day, preset and seed). Without ``--seeds`` a run is unseeded (detectron2's ``SEED -1``); with
them each seed is one row and the ``.md`` adds the mean and spread per variant. This is not a test:
it measures.
"""
import argparse
import datetime
import json
import multiprocessing as mp
import os
import platform
import queue as queue_module
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from detectron2.data import DatasetCatalog, MetadataCatalog

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# measure.py beside this file (also when the tests load this one by path); run as a script, the wsis_d2 of
# this checkout (spawned runs inherit the path)
sys.path[:0] = [str(HERE)] + ([str(ROOT)] if __name__ == "__main__" else [])

from measure import gt_mask_scores, pseudo_label_miou, read_metrics  # noqa: E402
from wsis_d2 import model_zoo  # noqa: E402
from wsis_d2.report.rows import (TABLE_FIELDS, config_fingerprint, markdown_table, new_row, read_rows,  # noqa: E402
                                 row_key, segm_ap_breakdown, spread)

RESULTS_DIR = ROOT / "benchmarks" / "results"
VARIANTS_DIR = HERE / "variants"
PRESETS_FILE = HERE / "presets.yaml"
# a variant file's keys: extends (another variant: its config, twin, pipeline and overrides first),
# config (shipped, model_zoo path), full_twin (the fully-supervised variant its ratio_to_full divides by),
# note, overrides ({KEY: value}), pipeline + percent (PointWSSIS: a four-step run), made_by (rows that
# another variant's run gives)
VARIANT_KEYS = {"extends", "config", "full_twin", "note", "overrides", "pipeline", "percent", "made_by"}


def load_variants(folder: Path = VARIANTS_DIR) -> dict:
    """{name: variant} of every ``<name>.yaml`` in ``folder``, each resolved through its ``extends``
    chain (overrides of the base first; a key the variant sets again takes its value). A malformed
    file is a ValueError naming it."""
    raw = {path.stem: (yaml.safe_load(path.read_text()) or {}) for path in sorted(folder.glob("*.yaml"))}
    resolved = {}

    def resolve(name: str, chain: tuple) -> dict:
        if name in resolved:
            return resolved[name]
        if name in chain or name not in raw:
            raise ValueError(f"variant {chain[-1]!r} extends {name!r}: " + (
                "a cycle" if name in chain else f"no {folder / name}.yaml"))
        spec = raw[name]
        unknown = sorted(set(spec) - VARIANT_KEYS)
        if unknown or not spec.get("note"):
            raise ValueError(f"{folder / name}.yaml: " + (f"unknown keys {unknown}; known: {sorted(VARIANT_KEYS)}"
                                                           if unknown else "no note: say what the variant tests"))
        base = resolve(spec["extends"], chain + (name,)) if "extends" in spec else {"overrides": {}}
        variant = {**{k: v for k, v in base.items() if k not in ("note", "made_by")}, **spec,
                   "overrides": {**base["overrides"], **(spec.get("overrides") or {})}}
        if "made_by" not in variant and not ("config" in variant and "full_twin" in variant):
            raise ValueError(f"{folder / name}.yaml: needs config and full_twin (its own or by extends)")
        resolved[name] = variant
        return variant

    for name in raw:
        resolve(name, ())
    for name, variant in resolved.items():
        if "made_by" in variant and resolved.get(variant["made_by"], {}).get("pipeline") is None:
            raise ValueError(f"{folder / name}.yaml: made_by {variant['made_by']!r} is not a pipeline variant")
    return resolved


def load_presets(path: Path = PRESETS_FILE) -> dict:
    """{name: {note, overrides}} of the presets file."""
    return yaml.safe_load(path.read_text())


def photo_variant(name: str, variant: dict, preset: dict, dataset: str) -> dict:
    """``variant`` with its shapes config swapped for the preset's (``config_swap``: e.g.
    ``BoxInst/R18_shapes.yaml`` -> ``BoxInst/MV2_pennfudan.yaml``) on ``dataset``, and the shapes
    datasets its overrides name swapped too: those ``dataset_swap`` names (e.g. the pseudo-mask
    evaluation's ``shapes_full`` -> ``pennfudan_train``), any other ``shapes_<view>`` to
    ``<dataset>_train_<view>`` (``shapes_mixed_10_0`` -> ``pennfudan_train_mixed_10_0``). A variant
    without such a config or a swapped name that is not registered is a ValueError naming it. A
    pipeline variant's data (:func:`pipeline_sets`) is swapped the same way."""
    swap = preset.get("config_swap")
    if not swap:
        return variant
    config = variant["config"].replace(swap["from"], swap["to"].format(dataset=dataset))
    try:
        found = config != variant["config"] and Path(model_zoo.get_config_file(config)).is_file()
    except FileNotFoundError:
        found = False
    if not found:
        raise ValueError(f"variant {name!r}: no config {config} for this preset (from {variant['config']})")
    names = {old: new.format(dataset=dataset) for old, new in (preset.get("dataset_swap") or {}).items()}
    made = set()

    def swapped(value):
        if isinstance(value, (list, tuple)):
            return type(value)(swapped(v) for v in value)
        if not isinstance(value, str) or not value.startswith("shapes_"):
            return value
        # shapes_<view> -> <dataset>_train_<view> unless the preset names it (shapes_full, ...)
        new = names.get(value, f"{dataset}_train_{value[len('shapes_'):]}")
        made.add(new)
        return new

    overrides = {key: swapped(value) for key, value in variant["overrides"].items()}
    sets = {key: swapped(value) for key, value in pipeline_sets(variant).items()}
    unknown = sorted(made - set(DatasetCatalog.list()))
    if unknown:
        raise ValueError(f"variant {name!r}: no registered dataset {', '.join(unknown)} for its shapes view "
                         f"on {dataset}")
    return {**variant, "config": config, "overrides": overrides, **sets}


def pipeline_sets(variant: dict) -> dict:
    """A pipeline variant's data: ``semi_set`` (the p % with masks, the rest points) and ``full_set``
    (every mask: the pseudo labels' reference), ``shapes_semi_<p>`` and ``shapes_full`` unless
    :func:`photo_variant` swapped them; ``{}`` for other variants."""
    if not variant.get("pipeline"):
        return {}
    return {"semi_set": variant.get("semi_set", f"shapes_semi_{variant['percent']}"),
            "full_set": variant.get("full_set", "shapes_full")}


def as_opts(overrides: dict) -> list:
    """``{KEY: value}`` as detectron2's ``KEY VALUE ...`` command-line list (values as ``str`` writes them)."""
    return [item for key, value in overrides.items() for item in (key, str(value))]


def variant_config(variant: dict, opts: list):
    """The variant's shipped config with ``opts`` merged in: a missing config or an unknown key fails here."""
    cfg = model_zoo.get_config(variant["config"])
    for key, value in zip(opts[::2], opts[1::2]):
        cfg.merge_from_list([key, value])
    return cfg


def _device_name(preset: str) -> str:
    if preset == "gpu":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cuda (unavailable)"
    return f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()})"


def _commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _train_and_eval(config_file: str, opts: list, queue) -> None:
    """Runs in a fresh spawned process: train + final evaluation, then report peak memory."""
    import wsis_d2  # noqa: F401
    from wsis_d2.engine import default_argument_parser, run

    args = default_argument_parser().parse_args(["--config-file", config_file] + opts)
    run(args)
    queue.put({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})


def _run_pointwssis(semi_json: str, image_root: str, config_file: str, out_dir: str, opts: list, queue) -> None:
    """Runs in a fresh spawned process: the four PointWSSIS steps, then report peak memory."""
    import wsis_d2  # noqa: F401
    from wsis_d2.pipelines import run_pipeline

    run_pipeline(semi_json, image_root, config_file, out_dir, opts)
    queue.put({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0})


def _spawn(target, args: tuple, what: str, log_dir: Path) -> dict:
    """Run ``target(*args, queue)`` in a spawned process; its report (peak memory)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=args + (queue,))
    proc.start()
    report = None
    try:
        while report is None and (proc.is_alive() or not queue.empty()):
            try:
                report = queue.get(timeout=5)
            except queue_module.Empty:
                pass
        proc.join()
    finally:  # stopped (Ctrl-C, or SIGTERM: main turns it into SystemExit): stop the training too
        if proc.is_alive():
            proc.terminate()
            proc.join()
    if proc.exitcode != 0 or report is None:
        raise RuntimeError(f"{what} failed (exit code {proc.exitcode}); see {log_dir}/log.txt")
    return report


def _row(method: str, config: str, cfg, train_set: str, out_dir: Path, preset: str, report: dict, minutes: float,
         commit: str, seed: int = None) -> dict:
    """One results row from a finished training's output folder."""
    s_per_iter, evaluation, curve = read_metrics(out_dir / "metrics.json")
    eval_set = cfg.DATASETS.TEST[0]
    results_json = out_dir / "inference" / eval_set / "coco_instances_results.json"
    mask_iou, hole_fill = gt_mask_scores(results_json, MetadataCatalog.get(eval_set).json_file)
    return new_row(
        method=method, seed=seed, config=config, train_set=train_set, eval_set=eval_set, preset=preset,
        iters=cfg.SOLVER.MAX_ITER, device=_device_name(preset),
        segm_AP=round(evaluation.get("segm/AP", float("nan")), 2),
        bbox_AP=round(evaluation.get("bbox/AP", float("nan")), 2), **segm_ap_breakdown(evaluation),
        gt_mask_iou=round(mask_iou, 3), gt_hole_fill=None if hole_fill is None else round(hole_fill, 3),
        pseudo_mask_miou=curve[-1][1] if curve else None, pseudo_mask_curve=curve or None,
        s_per_iter=round(s_per_iter, 3), peak_rss_mb=round(report["peak_rss_mb"], 1),
        train_eval_minutes=round(minutes, 2), commit=commit,
        # from the config.yaml the run wrote: setup may change the cfg built here (e.g. MODEL.DEVICE)
        config_fingerprint=config_fingerprint(yaml.safe_load((out_dir / "config.yaml").read_text())))


def _fresh(out_dir: Path) -> None:
    if out_dir.exists():
        # detectron2 appends to metrics.json: a rerun must not mix with the last one
        shutil.rmtree(out_dir)


def _run_name(method: str, seed: int = None) -> str:
    return method if seed is None else f"{method}_seed{seed}"


def _seed_opts(seed: int = None) -> list:
    return [] if seed is None else ["SEED", str(seed)]


def run_opts(variant: dict, preset_opts: list, out_dir: Path, seed: int, extra_opts: list) -> list:
    """What one run merges into the variant's config, in order: the preset's overrides, the variant's,
    the output folder (not for pipelines, which name their steps' folders), the seed, the command line's."""
    output = [] if variant.get("pipeline") else ["OUTPUT_DIR", str(out_dir)]
    return preset_opts + as_opts(variant["overrides"]) + output + _seed_opts(seed) + extra_opts


def run_pointwssis(method: str, variant: dict, preset: str, opts: list, out_dir: Path, seed: int = None) -> list:
    """The PointWSSIS pipeline on the variant's semi view (:func:`pipeline_sets`): rows of its teacher
    (the p % alone) and its student."""
    percent = variant["percent"]
    sets = pipeline_sets(variant)
    DatasetCatalog.get(sets["semi_set"])  # checks it (and makes the shapes data on first use)
    semi, full = MetadataCatalog.get(sets["semi_set"]), MetadataCatalog.get(sets["full_set"])
    semi_json, root = semi.json_file, semi.image_root
    cfg = variant_config(variant, opts)
    commit = _commit()
    start = time.time()
    config_file = model_zoo.get_config_file(variant["config"])
    report = _spawn(_run_pointwssis, (semi_json, root, config_file, str(out_dir), opts), method, out_dir / "<step>")
    minutes = (time.time() - start) / 60.0
    teacher_minutes = (os.path.getmtime(out_dir / "teacher" / "DONE.json") - start) / 60.0
    command = f"wsis-d2 pointwssis on {sets['semi_set']} (configs/{variant['config']})"
    teacher = _row(f"pointwssis_teacher_p{percent}", command + ", step 1", cfg, f"{sets['semi_set']}_masks_only",
                   out_dir / "teacher", preset, report, teacher_minutes, commit, seed)
    teacher["peak_rss_mb"] = None  # measured for the whole pipeline only
    student = _row(method, command + " + pseudo labels", cfg, sets["semi_set"], out_dir / "student", preset,
                   report, minutes, commit, seed)
    student["pseudo_mask_miou"] = round(pseudo_label_miou(out_dir / "pseudo" / "pseudo_labels.json", full.json_file,
                                                          semi_json), 3)
    return [teacher, student]


def run_method(method: str, variant: dict, preset: str, preset_opts: list, out_root: Path, extra_opts: list,
               seed: int = None) -> list:
    """Train + evaluate one variant (with detectron2's ``SEED`` = ``seed`` when given); its rows
    (pipelines give more than one)."""
    out_dir = out_root / _run_name(method, seed)
    _fresh(out_dir)
    opts = run_opts(variant, preset_opts, out_dir, seed, extra_opts)
    if variant.get("pipeline") == "pointwssis":
        return run_pointwssis(method, variant, preset, opts, out_dir, seed)
    cfg = variant_config(variant, opts)
    commit = _commit()  # the code this run starts with (the tree may move on while it trains)
    start = time.time()
    report = _spawn(_train_and_eval, (model_zoo.get_config_file(variant["config"]), opts), method, out_dir)
    minutes = (time.time() - start) / 60.0
    config = " ".join([f"configs/{variant['config']}"] + as_opts(variant["overrides"]))
    return [_row(method, config, cfg, cfg.DATASETS.TRAIN[0], out_dir, preset, report, minutes, commit, seed)]


def fill_ratios(rows: list, date: str, variants: dict) -> None:
    """ratio_to_full = segm AP / segm AP of the variant's full twin in the same preset and eval set, at
    the same seed where one ran (else any seed): the twin's row of the same results file, else of the
    newest earlier file that has one."""
    earlier = sorted((p for p in RESULTS_DIR.glob("????-??-??.json") if p.stem < date), reverse=True)
    sources = [(date, rows)] + [(p.stem, read_rows(p)) for p in earlier]
    for r in rows:
        twin_method = variants.get(r["method"], {}).get("full_twin")

        def is_twin(t, seed):
            return ((t["method"], t["preset"], t.get("eval_set")) == (twin_method, r["preset"], r.get("eval_set"))
                    and (seed is None or t.get("seed") == seed) and (t["segm_AP"] or 0) > 0)

        for seed in (r.get("seed"), None):
            found = next(((d, t) for d, source_rows in sources for t in source_rows if is_twin(t, seed)), None)
            if found:
                r["twin_date"], twin = found
                r["ratio_to_full"] = round(r["segm_AP"] / twin["segm_AP"], 3)
                break


def seed_summary(rows: list) -> list:
    """Per (method, preset, resolved config: ``config_fingerprint``) with two or more seeded rows,
    whatever commits ran them (a commit that changes the code but not the config is pooled: compare
    ``commits`` with ``git log``): the number of seeds, mean and sample standard deviation of segm /
    bbox AP, and the lowest and highest segm AP."""
    groups = {}
    for r in rows:
        if r.get("seed") is not None:
            # rows from before config fingerprints are pooled by commit: the shipped file may have changed
            setting = r.get("config_fingerprint") or f"commit {r['commit']}"
            groups.setdefault((r["method"], r["preset"], setting), []).append(r)
    summary = []
    for (method, preset, _), group in groups.items():
        if len(group) < 2:
            continue
        segm, bbox = spread(r["segm_AP"] for r in group), spread(r["bbox_AP"] for r in group)
        summary.append({"method": method, "preset": preset, "commits": ", ".join(sorted({r["commit"] for r in group})),
                        "seeds": sorted(r["seed"] for r in group),
                        "segm_AP_mean": segm["mean"], "segm_AP_std": segm["std"],
                        "segm_AP_min": segm["min"], "segm_AP_max": segm["max"],
                        "bbox_AP_mean": bbox["mean"], "bbox_AP_std": bbox["std"]})
    return summary


def write_results(rows: list, date: str, variants: dict = None) -> Path:
    """Merge ``rows`` into ``<date>.json`` (a row with the key of an older one replaces it) and write
    its ``.md``: every row's :data:`TABLE_FIELDS`, then :func:`seed_summary`."""
    variants = load_variants() if variants is None else variants
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS_DIR / f"{date}.json"
    old = read_rows(json_path) if json_path.exists() else []
    latest = {row_key(r): r for r in rows}  # a (method, preset, seed) twice in one batch: the last counts
    merged = [r for r in old if row_key(r) not in latest] + list(latest.values())
    fill_ratios(merged, date, variants)
    json_path.write_text(json.dumps(merged, indent=1) + "\n")
    lines = [f"# wsis-d2 benchmark, {date}", ""]
    lines += markdown_table(TABLE_FIELDS, ([r.get(k) for k in TABLE_FIELDS] for r in merged))
    summary = seed_summary(merged)
    if summary:
        lines += ["", "## Repeats with different seeds (mean, sample std, range)", ""]
        lines += markdown_table(list(summary[0]), (s.values() for s in summary))
    (RESULTS_DIR / f"{date}.md").write_text("\n".join(lines) + "\n")
    return json_path


def _list(variants: dict, presets: dict) -> None:
    for name, variant in variants.items():
        pipeline = f", {variant['pipeline']} pipeline" if variant.get("pipeline") else ""
        what = (f"rows of {variant['made_by']}'s run" if "made_by" in variant else
                f"configs/{variant['config']}{pipeline}")
        print(f"{name}: {what}; {' '.join(as_opts(variant['overrides'])) or 'no overrides'}\n    {variant['note']}")
    for name, preset in presets.items():
        print(f"preset {name}: {' '.join(as_opts(preset['overrides'])) or 'no overrides'}\n    {preset['note']}")


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # unwinds through _spawn, which stops its training process


def main(argv=None):
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    variants, presets = load_variants(), load_presets()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default=",".join(variants),
                        help="comma-separated variants (benchmarks/variants/*.yaml; default: all), see --list")
    parser.add_argument("--list", action="store_true", help="print every variant and preset with its note, then stop")
    parser.add_argument("--dry-run", action="store_true",
                        help="resolve and print each run's config and overrides, train nothing")
    parser.add_argument("--gpu", action="store_true", help="use the GPU preset (the same as --preset gpu)")
    parser.add_argument("--preset", choices=list(presets), default="cpu", help="schedule and device overrides")
    parser.add_argument("--dataset", help="the preset's dataset (presets with datasets: e.g. realphoto)")
    parser.add_argument("--seeds", default="",
                        help="comma-separated SEED values: one run per variant and seed (default: one unseeded run)")
    parser.add_argument("--output", default=str(ROOT / "output" / "benchmarks"), help="training output root")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="extra config overrides KEY VALUE ...")
    args = parser.parse_args(argv)
    if args.list:
        _list(variants, presets)
        return
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in variants]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(variants)}")
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()] or [None]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    if args.gpu and args.preset not in ("cpu", "gpu"):
        parser.error(f"--gpu is --preset gpu; it cannot be combined with --preset {args.preset}")
    preset = "gpu" if args.gpu else args.preset
    preset_opts = as_opts(presets[preset]["overrides"])
    datasets = presets[preset].get("datasets", [])
    if datasets and args.dataset not in datasets:
        parser.error(f"--preset {preset} needs --dataset, one of {datasets}")
    if args.dataset and not datasets:
        parser.error(f"--preset {preset} runs on shapes: no --dataset")
    # rows made by another variant's run (PointWSSIS's teacher) come from running that variant
    methods = list(dict.fromkeys(variants[m].get("made_by", m) for m in methods))
    try:
        variants = {**variants, **{m: photo_variant(m, variants[m], presets[preset], args.dataset) for m in methods}}
    except ValueError as e:
        parser.error(str(e))
    date = datetime.date.today().isoformat()
    out_root = Path(args.output) / "-".join([date, preset] + ([args.dataset] if args.dataset else []))
    # seed-major: an interrupted series still holds every variant at the seeds it finished
    for seed in seeds:
        for method in methods:
            name = _run_name(method, seed)
            if args.dry_run:
                opts = run_opts(variants[method], preset_opts, out_root / name, seed, args.opts)
                try:
                    variant_config(variants[method], opts)
                except (AssertionError, KeyError, ValueError) as e:  # yacs asserts on an unknown key
                    parser.error(f"{name}: {e}")
                data = "".join(f" {key} {value}" for key, value in pipeline_sets(variants[method]).items())
                print(f"[benchmark] {name} ({preset} preset): configs/{variants[method]['config']}{data} "
                      f"{' '.join(opts)}")
                continue
            print(f"[benchmark] {name} ({preset} preset) ...", flush=True)
            rows = run_method(method, variants[method], preset, preset_opts, out_root, args.opts, seed)
            path = write_results(rows, date, variants)
            for row in rows:
                print(f"[benchmark] {_run_name(row['method'], seed)}: segm AP {row['segm_AP']}, "
                      f"bbox AP {row['bbox_AP']}, {row['s_per_iter']} s/iter, {row['train_eval_minutes']} min "
                      f"-> {path}", flush=True)


if __name__ == "__main__":
    main()

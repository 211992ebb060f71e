"""The benchmark harness (no training): its variants and presets resolve, seeded rows are kept apart
and summarised, and what it measures on a finished run."""
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from wsis_d2.report.rows import config_fingerprint, new_row, segm_ap_breakdown

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def harness(tmp_path, monkeypatch):
    module = _load("run")
    monkeypatch.setattr(module, "RESULTS_DIR", tmp_path)
    return module


def _row(method, seed, segm, bbox=40.0, commit="abc1234", fingerprint=None):
    return new_row(method=method, preset="cpu", seed=seed, commit=commit, config_fingerprint=fingerprint,
                   segm_AP=segm, bbox_AP=bbox, train_set="shapes_box")


def test_seeded_rows_are_kept_apart_and_a_rerun_replaces_its_seed_only(harness, tmp_path):
    harness.write_results([_row("condinst", None, 30.0)], "2026-01-01")
    harness.write_results([_row("boxinst", 1, 10.0), _row("boxinst", 2, 20.0)], "2026-01-01")
    harness.write_results([_row("boxinst", 2, 21.0), _row("boxinst", 2, 26.0)], "2026-01-01")
    rows = json.loads((tmp_path / "2026-01-01.json").read_text())
    assert sorted((r["method"], r["seed"], r["segm_AP"]) for r in rows if r["method"] == "boxinst") == [
        ("boxinst", 1, 10.0), ("boxinst", 2, 26.0)]
    assert [r["ratio_to_full"] for r in rows if r["method"] == "boxinst"] == [round(10 / 30, 3), round(26 / 30, 3)]
    md = (tmp_path / "2026-01-01.md").read_text()
    assert "| boxinst | cpu | abc1234 | [1, 2] | 18.0 | 11.31 | 10.0 | 26.0 |" in md


def test_a_seeded_row_divides_by_its_twin_at_the_same_seed_where_one_ran(harness, tmp_path):
    harness.write_results([_row("condinst", 1, 40.0)], "2026-01-01")
    harness.write_results([_row("condinst", 2, 20.0), _row("boxinst", 1, 30.0), _row("boxinst", 2, 10.0),
                           _row("boxinst", 3, 8.0)], "2026-01-02")
    rows = {r["seed"]: r for r in json.loads((tmp_path / "2026-01-02.json").read_text()) if r["method"] == "boxinst"}
    # seed 1's twin is in the earlier file, seed 2's in this one; seed 3 has none: the newest twin row
    assert (rows[1]["ratio_to_full"], rows[1]["twin_date"]) == (0.75, "2026-01-01")
    assert (rows[2]["ratio_to_full"], rows[2]["twin_date"]) == (0.5, "2026-01-02")
    assert (rows[3]["ratio_to_full"], rows[3]["twin_date"]) == (0.4, "2026-01-02")


def test_seed_summary_pools_by_resolved_config(harness):
    rows = [_row("a", 1, 10.0), _row("a", 2, 14.0, bbox=44.0), _row("b", 1, 5.0), _row("c", None, 1.0),
            _row("d", 1, 3.0, commit="x", fingerprint="f1"), _row("d", 2, 4.0, commit="y", fingerprint="f1"),
            _row("e", 1, 3.0, fingerprint="f1"), _row("e", 2, 4.0, fingerprint="f2"),
            _row("g", 1, 3.0, commit="x"), _row("g", 2, 4.0, commit="y")]
    # b: one seed; c: unseeded; e: two configs; g: no fingerprints, two commits: one seed per group
    a, d = harness.seed_summary(rows)
    assert a["method"] == "a" and a["seeds"] == [1, 2] and a["commits"] == "abc1234"
    assert (a["segm_AP_mean"], a["segm_AP_std"]) == (12.0, pytest.approx(2.83, abs=0.01))
    assert (a["bbox_AP_mean"], a["bbox_AP_std"]) == (42.0, pytest.approx(2.83, abs=0.01))
    assert d["seeds"] == [1, 2] and d["commits"] == "x, y" and d["segm_AP_mean"] == 3.5


def test_config_fingerprint_is_the_settings_changed_from_the_defaults():
    import yaml
    from detectron2.config import get_cfg

    from wsis_d2.config import add_wsis_config

    cfg = add_wsis_config(get_cfg())
    cfg.MODEL.META_ARCHITECTURE, cfg.SEED, cfg.OUTPUT_DIR = "BoxInst", 1, "a"
    base = yaml.safe_load(cfg.dump())
    cfg.SEED, cfg.OUTPUT_DIR = 2, "b"
    repeat = yaml.safe_load(cfg.dump())
    older = yaml.safe_load(cfg.dump())
    del older["MODEL"]["BOX_TEACHER"]["START_ITER"]  # written before that key (default 0) existed
    cfg.MODEL.BOX_TEACHER.START_ITER = 500
    changed = yaml.safe_load(cfg.dump())
    assert config_fingerprint(base) == config_fingerprint(repeat) == config_fingerprint(older)
    assert config_fingerprint(base) != config_fingerprint(changed)


def test_segm_ap_breakdown_from_the_evaluation():
    evaluation = {"segm/AP": 30.0, "segm/AP50": 50.123, "segm/AP75": 25.456, "segm/AP-ring": 12.345,
                  "segm/AP-disc": 55.0, "bbox/AP-ring": 40.0, "bbox/AP75": 1.0}
    assert segm_ap_breakdown(evaluation) == {
        "segm_AP50": 50.12, "segm_AP75": 25.46, "segm_AP_per_class": {"disc": 55.0, "ring": 12.35}}


def test_seeds_must_be_integers(harness):
    with pytest.raises(SystemExit):
        harness.main(["--methods", "boxinst", "--seeds", "1,two"])


def test_gt_mask_scores_hand_case(tmp_path):
    import numpy as np

    from wsis_d2.data.rle import encode_mask

    ring = np.zeros((20, 20), bool)
    ring[2:12, 2:12] = True
    ring[5:9, 5:9] = False  # a 4 x 4 hole
    disc = np.zeros((20, 20), bool)
    disc[14:18, 14:18] = True
    measure = _load("measure")
    assert measure.mask_holes(ring).sum() == 16 and not measure.mask_holes(disc).any()
    gt = {"images": [{"id": 1, "height": 20, "width": 20}, {"id": 2, "height": 20, "width": 20}],
          "annotations": [{"id": 1, "image_id": 1, "segmentation": encode_mask(ring)},
                          {"id": 2, "image_id": 1, "segmentation": encode_mask(disc)},
                          {"id": 3, "image_id": 2, "segmentation": encode_mask(disc)}]}
    filled = ring.copy()
    filled[5:7, 5:9] = True  # half of the hole called object
    predictions = [{"image_id": 1, "score": 0.9, "segmentation": encode_mask(filled)},
                   {"image_id": 1, "score": 0.9, "segmentation": encode_mask(disc)},
                   {"image_id": 2, "score": 0.2, "segmentation": encode_mask(disc)}]  # below 0.3: unseen
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(predictions))
    mean_iou, hole_fill = measure.gt_mask_scores(tmp_path / "pred.json", str(tmp_path / "gt.json"))
    assert mean_iou == pytest.approx((84 / 92 + 1.0 + 0.0) / 3)
    assert hole_fill == pytest.approx(0.5)
    gt["annotations"] = gt["annotations"][1:]  # no object with a hole
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    assert measure.gt_mask_scores(tmp_path / "pred.json", str(tmp_path / "gt.json"))[1] is None


def test_every_shipped_variant_resolves_on_every_preset(harness):
    """Each variant file names a shipped config and override keys that config has, with the values it
    ends up holding; its full twin and (for rows another run makes) that run's variant exist."""
    variants, presets = harness.load_variants(), harness.load_presets()
    assert {"condinst", "mask_rcnn", "boxinst", "boxteacher", "sim", "pointsup_condinst_3pts", "pointwssis_p10",
            "pointwssis_teacher_p10", "boxteacher_no_affinity"} <= set(variants)
    assert set(presets) == {"cpu", "cpu_2x", "gpu", "realphoto"}
    for name, variant in variants.items():
        assert variant["note"].strip(), name
        assert variants[variant["full_twin"]]["config"], name
        if "made_by" in variant:
            assert variants[variant["made_by"]]["pipeline"] == "pointwssis", name
            continue
        for preset in presets.values():
            opts = harness.run_opts(variant, harness.as_opts(preset["overrides"]), Path("out"), 1,
                                    ["SOLVER.CHECKPOINT_PERIOD", "7"])  # a key no variant sets
            cfg = harness.variant_config(variant, opts)  # a missing config or an unknown key raises
            for key, value in variant["overrides"].items():
                node = cfg
                for part in key.split("."):
                    node = node[part]
                # a YAML list becomes the config's own sequence type (DATASETS.TRAIN: [name] a tuple)
                expected = type(node)(value) if isinstance(value, list) and isinstance(node, tuple) else value
                assert node == expected, (name, key)
            assert cfg.SEED == 1 and cfg.SOLVER.CHECKPOINT_PERIOD == 7  # the command line's extra opts win
        # what wsis-d2 report counts as a variant of a method: a name that extends it, same config
        root = name
        while "extends" in variants[root]:
            root = variants[root]["extends"]
        assert root == name or (name.startswith(root + "_") and variants[root]["config"] == variant["config"]), name
    assert variants["pointsup_condinst_3pts"]["overrides"] == {"INPUT.POINTS_PER_INSTANCE": 3}
    late = variants["boxteacher_late_start"]["overrides"]
    assert list(late)[:3] == list(variants["boxteacher"]["overrides"])  # the base's overrides first
    assert late["MODEL.BOX_TEACHER.STRONG_AUG"] is True and late["MODEL.BOX_TEACHER.START_ITER"] == 500
    assert harness.as_opts(presets["cpu_2x"]["overrides"]) == [
        "SOLVER.MAX_ITER", "2200", "SOLVER.STEPS", "(1600, 2000)", "SOLVER.CHECKPOINT_PERIOD", "1100"]


def test_a_malformed_variant_is_named(harness, tmp_path):
    (tmp_path / "a.yaml").write_text("config: CondInst/R18_shapes.yaml\nfull_twin: a\nnote: base\n")
    (tmp_path / "b.yaml").write_text("extends: a\nnote: x\noverides: {SEED: 1}\n")
    with pytest.raises(ValueError, match=r"b.yaml: unknown keys \['overides'\]"):
        harness.load_variants(tmp_path)
    (tmp_path / "b.yaml").write_text("extends: c\nnote: x\n")
    (tmp_path / "c.yaml").write_text("extends: b\nnote: x\n")
    with pytest.raises(ValueError, match="a cycle"):
        harness.load_variants(tmp_path)
    (tmp_path / "c.yaml").write_text("extends: a\n")
    with pytest.raises(ValueError, match="c.yaml: no note"):
        harness.load_variants(tmp_path)
    (tmp_path / "c.yaml").unlink()
    (tmp_path / "b.yaml").write_text("extends: missing\nnote: x\n")
    with pytest.raises(ValueError, match="no .*missing.yaml"):
        harness.load_variants(tmp_path)


def test_dry_run_resolves_without_training(harness, capsys):
    harness.main(["--methods", "pointsup_condinst_3pts,pointwssis_teacher_p5", "--seeds", "1", "--preset", "cpu_2x",
                  "--dry-run"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("[benchmark] pointsup_condinst_3pts_seed1 (cpu_2x preset): "
                             "configs/PointSup/CondInst_R18_shapes.yaml SOLVER.MAX_ITER 2200")
    assert "INPUT.POINTS_PER_INSTANCE 3 OUTPUT_DIR" in out[0] and out[0].endswith("SEED 1")
    assert out[1].startswith("[benchmark] pointwssis_p5_seed1 ")  # the teacher's rows come from that run
    with pytest.raises(SystemExit):
        harness.main(["--methods", "boxinst", "--dry-run", "MODEL.NO_SUCH_KEY", "1"])


REAL_PHOTO_METHODS = ["condinst", "mask_rcnn", "boxinst", "boxlevelset", "boxinst_mask_rcnn", "boxteacher", "sim",
                      "pointsup_condinst", "pointsup_mask_rcnn", "pseudo_grabcut_condinst"]


def test_realphoto_preset_swaps_every_method_to_its_photo_config(harness, capsys):
    variants, presets = harness.load_variants(), harness.load_presets()
    for dataset in presets["realphoto"]["datasets"]:
        for method in REAL_PHOTO_METHODS:
            photo = harness.photo_variant(method, variants[method], presets["realphoto"], dataset)
            assert photo["config"] == variants[method]["config"].replace("R18_shapes", f"MV2_{dataset}")
            cfg = harness.variant_config(photo, harness.as_opts(photo["overrides"]))
            assert cfg.DATASETS.TEST == (f"{dataset}_val",) and cfg.INPUT.FORMAT == "RGB", (method, dataset)
    for method in ("mixed_m10", "mixedpts_m10_p10"):  # their shapes views become the dataset's
        photo = harness.photo_variant(method, variants[method], presets["realphoto"], "balloon")
        cfg = harness.variant_config(photo, harness.as_opts(photo["overrides"]))
        view = variants[method]["overrides"]["DATASETS.TRAIN"][0][len("shapes_"):]
        assert cfg.DATASETS.TRAIN == (f"balloon_train_{view}",) and cfg.DATASETS.TRAIN[0] in DatasetCatalog.list()
    sim = harness.photo_variant("sim", variants["sim"], presets["realphoto"], "balloon")
    assert sim["overrides"]["WSIS.PSEUDO_MASK_EVAL.DATASET"] == "balloon_train"  # was shapes_full
    assert harness.photo_variant("boxinst", variants["boxinst"], presets["cpu"], None) is variants["boxinst"]
    assert harness.pipeline_sets(variants["pointwssis_p10"]) == {"semi_set": "shapes_semi_10",
                                                                  "full_set": "shapes_full"}
    pointwssis = harness.photo_variant("pointwssis_p10", variants["pointwssis_p10"], presets["realphoto"], "pennfudan")
    assert pointwssis["config"] == "CondInst/MV2_pennfudan.yaml"  # the pipeline runs on the dataset's semi view
    assert harness.pipeline_sets(pointwssis) == {"semi_set": "pennfudan_train_semi_10", "full_set": "pennfudan_train"}
    assert harness.pipeline_sets(variants["condinst"]) == {}
    with pytest.raises(ValueError, match="no config BoxInst/MV2_nowhere.yaml"):
        harness.photo_variant("boxinst", variants["boxinst"], presets["realphoto"], "nowhere")
    for argv, message in [(["--preset", "realphoto"], "needs --dataset, one of ['pennfudan', 'balloon']"),
                          (["--dataset", "pennfudan"], "runs on shapes: no --dataset")]:
        with pytest.raises(SystemExit):
            harness.main(argv + ["--methods", "boxinst", "--dry-run"])
        assert message in capsys.readouterr().err
    harness.main(["--preset", "realphoto", "--dataset", "balloon", "--methods", "sim", "--seeds", "2", "--dry-run"])
    out = capsys.readouterr().out
    assert "configs/SIM/MV2_balloon.yaml" in out and "2026" in out and "realphoto-balloon/sim_seed2" in out


def test_rows_of_two_datasets_stay_apart_and_divide_by_their_own_twin(harness, tmp_path):
    rows = [new_row(method=m, preset="realphoto", seed=1, segm_AP=ap, bbox_AP=1.0, train_set=f"{d}_train",
                    eval_set=f"{d}_val", commit="c") for m, d, ap in
            [("condinst", "pennfudan", 40.0), ("boxinst", "pennfudan", 30.0),
             ("condinst", "balloon", 60.0), ("boxinst", "balloon", 30.0)]]
    harness.write_results(rows, "2026-01-02")
    written = json.loads((tmp_path / "2026-01-02.json").read_text())
    assert len(written) == 4
    assert {(r["eval_set"], r["ratio_to_full"]) for r in written if r["method"] == "boxinst"} == {
        ("pennfudan_val", 0.75), ("balloon_val", 0.5)}


def test_pointwssis_on_photos_hands_the_pipeline_the_datasets_files(harness, tmp_path, monkeypatch):
    """run_pointwssis gives the pipeline the swapped semi view's file and image folder, not the shapes data."""
    variants, presets = harness.load_variants(), harness.load_presets()
    photo = harness.photo_variant("pointwssis_p10", variants["pointwssis_p10"], presets["realphoto"], "pennfudan")
    semi = MetadataCatalog.get("pennfudan_train_semi_10")
    spawned = {}

    class Spawned(Exception):
        pass

    def fake_spawn(target, args, what, log_dir):
        spawned.update(target=target, args=args)
        raise Spawned

    monkeypatch.setattr(harness.DatasetCatalog, "get", lambda name: spawned.setdefault("checked", name))
    monkeypatch.setattr(harness, "_spawn", fake_spawn)
    opts = harness.run_opts(photo, [], tmp_path / "out", 1, [])
    with pytest.raises(Spawned):
        harness.run_pointwssis("pointwssis_p10", photo, "realphoto", opts, tmp_path / "out", 1)
    assert spawned["checked"] == "pennfudan_train_semi_10"
    semi_json, image_root, config_file = spawned["args"][:3]
    assert (semi_json, image_root) == (semi.json_file, semi.image_root)
    assert semi_json.endswith("train_semi_10.json") and "shapes" not in semi_json
    assert config_file.endswith("CondInst/MV2_pennfudan.yaml")


STOPPED_HARNESS = '''
import os, signal, sys, time
from pathlib import Path


def sleeper(pid_file, queue):
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(600)


if __name__ == "__main__":
    sys.path.insert(0, sys.argv[1])
    import run as harness
    signal.signal(signal.SIGTERM, harness._exit_on_sigterm)  # as harness.main installs it
    harness._spawn(sleeper, (sys.argv[2],), "sleeper", Path("."))
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_stopped_harness_stops_its_training_process(tmp_path):
    """SIGTERM to the harness (kill, pkill) ends the spawned training too, not only the parent."""
    script, pid_file = tmp_path / "stopped.py", tmp_path / "child.pid"
    script.write_text(STOPPED_HARNESS)
    parent = subprocess.Popen([sys.executable, str(script), str(BENCHMARKS), str(pid_file)])
    child = None
    try:
        deadline = time.time() + 120
        while not pid_file.exists() or not pid_file.read_text():
            assert parent.poll() is None and time.time() < deadline, "the child never started"
            time.sleep(0.2)
        child = int(pid_file.read_text())
        assert _alive(child)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 128 + signal.SIGTERM
        deadline = time.time() + 30
        while _alive(child) and time.time() < deadline:
            time.sleep(0.2)
        assert not _alive(child), "the training process outlived its harness"
    finally:  # leave nothing running if the test fails
        for pid in (child, parent.pid):
            if pid is not None and _alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait()

"""Reports on benchmark rows: the label-cost table and plot, and the seed-paired comparison
(``wsis-d2 report --baseline``)."""
import json

import cv2
import pytest

from wsis_d2.report import load_rows, paired_seed_differences, seconds_per_object, write_paired_report, write_report


def _row(method, seed, segm_ap, fingerprint, ring=None):
    """A seeded row; with ``ring`` its per-class AP: ring and square, whose mean is ``segm_ap``."""
    row = {"method": method, "seed": seed, "segm_AP": segm_ap, "config_fingerprint": fingerprint,
           "train_set": "shapes_box", "preset": "cpu"}
    if ring is not None:
        row["segm_AP_per_class"] = {"ring": ring, "square": 2 * segm_ap - ring}
    return row


def test_paired_differences_on_a_hand_case(tmp_path):
    older = [_row("boxinst", 1, 30.0, "base", ring=30.0), _row("boxinst", 2, 28.0, "base", ring=30.0),
             _row("boxinst", 3, 29.0, "base", ring=30.0),
             # a: above overall, and more so without the ring class (square: 32 - 30, 34 - 26, 31 - 28)
             _row("a", 1, 31.0, "fa", ring=30.0), _row("a", 2, 30.0, "fa", ring=26.0),
             _row("a", 3, 30.5, "fa", ring=30.0),
             # a variant that later became a preset: its seeds pool with the preset's, the later run of seed 2 wins
             _row("b_variant", 1, 25.0, "fb"), _row("b_variant", 2, 99.0, "fb"),
             _row("c", 1, 40.0, "fc"),  # one seed in common: no interval, left out
             dict(_row("boxinst", None, 50.0, "base"), seed=None)]  # unseeded rows are not paired
    newer = [_row("b", 2, 26.0, "fb"), _row("b", 3, 27.0, "fb")]
    files = []
    for name, rows in (("2026-01-01.json", older), ("2026-01-02.json", newer)):
        (tmp_path / name).write_text(json.dumps(rows))
        files.append(str(tmp_path / name))
    rows = load_rows(files, by_setting=True)
    table = {t["config_fingerprint"]: t for t in paired_seed_differences(rows, "boxinst", exclude_classes=["ring"])}
    assert set(table) == {"fa", "fb"}
    a = table["fa"]  # differences 1, 2, 1.5: mean 1.5, std 0.5, t(.975, 2) = 4.3027
    assert a["seeds"] == [1, 2, 3] and a["mean_difference"] == 1.5 and a["difference_std"] == 0.5
    assert a["ci95"] == (pytest.approx(1.5 - 1.24, abs=0.01), pytest.approx(1.5 + 1.24, abs=0.01))
    assert a["wins"] == 3 and a["verdict"] == "above" and a["mean"] == 30.5 and a["baseline_mean"] == 29.0
    # without the ring class: square AP differences 2, 8, 3: mean 4.33, std 3.21, interval 4.33 +- 7.98
    square = a["without_classes"]
    assert square["mean_difference"] == pytest.approx(4.33) and square["difference_std"] == pytest.approx(3.21)
    assert square["ci95"] == (pytest.approx(-3.65, abs=0.01), pytest.approx(12.32, abs=0.01))
    assert square["verdict"] == "not shown either way" and square["wins"] == 3
    assert table["fb"]["without_classes"] is None  # its rows carry no per-class AP
    b = table["fb"]  # 25 - 30, 26 - 28, 27 - 29: -5, -2, -2
    assert b["setting"] == "b = b_variant" and b["mean_difference"] == -3.0 and b["wins"] == 0
    assert b["verdict"] == "not shown either way"  # std 1.73: the interval (-7.3, 1.3) holds 0
    # by method name (the label-cost table's keying) the variant's seed 2 stays apart
    assert len(load_rows(files)) == len(older) + len(newer)
    report = write_paired_report(rows, "boxinst", str(tmp_path / "out"), exclude_classes=["ring"])
    text = open(report["table"]).read()
    assert "| a | fa | 1,2,3 | 30.5 | 29.0 | +1.50 | 0.5 | +0.26 .. +2.74 | 3/3 | above |" in text
    assert "other than ring" in text and "| a | fa | 1,2,3 | 32.33 | 28.0 | +4.33 | 3.21 | -3.65 .. +12.32 | 3/3 |" in text


def test_paired_differences_name_what_is_wrong():
    rows = [_row("boxinst", 1, 30.0, "base"), _row("a", 1, 31.0, "fa")]
    with pytest.raises(ValueError, match="no seeded rows of the baseline method 'mask_rcnn'"):
        paired_seed_differences(rows, "mask_rcnn")
    with pytest.raises(ValueError, match="ran under 2 configs"):
        paired_seed_differences(rows + [_row("boxinst", 2, 29.0, "changed")], "boxinst")
    assert paired_seed_differences(rows, "boxinst") == []  # one seed in common: nothing to show
    with pytest.raises(ValueError, match="rows of presets"):
        paired_seed_differences(rows + [dict(_row("boxinst", 1, 30.0, "base"), preset="gpu")], "boxinst")
    two_seeds = [_row("boxinst", s, 30.0, "base", ring=30.0) for s in (1, 2)] + [
        _row("a", s, 30.0 + s, "fa", ring=30.0) for s in (1, 2)]
    with pytest.raises(ValueError, match=r"row 'a' has no class \['rings'\]; its classes: \['ring', 'square'\]"):
        paired_seed_differences(two_seeds, "boxinst", exclude_classes=["rings"])
    other_classes = dict(two_seeds[3], segm_AP_per_class={"ring": 30.0, "disc": 34.0})
    with pytest.raises(ValueError, match="evaluated on different classes"):
        paired_seed_differences(two_seeds[:3] + [other_classes], "boxinst", exclude_classes=["ring"])
    with pytest.raises(ValueError, match="leaves no class"):
        paired_seed_differences([_row("boxinst", s, 30.0, "base", ring=30.0) for s in (1, 2)]
                                + [_row("a", s, 30.0, "fa", ring=30.0) for s in (1, 2)], "boxinst",
                                exclude_classes=["ring", "square"])


def test_classes_without_ap_are_left_out_and_the_newest_run_of_a_seed_names_the_setting(tmp_path):
    base = [_row("boxinst", s, 30.0, "base", ring=30.0) for s in (1, 2, 3)]
    for row in base:  # a class with no GT in the eval set: NaN AP in every row
        row["segm_AP_per_class"]["disc"] = float("nan")
    variant = [_row("x_old", s, 30.0, "fx", ring=30.0) for s in (1, 2, 3)]
    rerun = _row("x", 1, 32.0, "fx", ring=30.0)  # seed 1 again, later in the same file, under the new name
    for row in variant + [rerun]:
        row["segm_AP_per_class"]["disc"] = float("nan")
    results = tmp_path / "2026-01-01.json"
    results.write_text(json.dumps(base + variant + [rerun]))
    (entry,) = paired_seed_differences(load_rows([str(results)], by_setting=True), "boxinst", exclude_classes=["ring"])
    assert entry["setting"] == "x = x_old"  # the newest run's name first
    assert entry["mean_difference"] == pytest.approx(2 / 3, abs=0.01)  # seed 1 is the re-run's 32.0
    assert entry["without_classes"]["mean_difference"] == pytest.approx(4 / 3, abs=0.01)  # square only: 34 vs 30 at seed 1


def test_load_rows_names_a_file_that_is_not_results(tmp_path):
    other = tmp_path / "2026-01-01-weak-loss-costs.json"
    other.write_text(json.dumps({"pairwise": {"seconds": 1.0}}))
    with pytest.raises(ValueError, match="weak-loss-costs.json: not benchmark results"):
        load_rows([str(other)])


def test_report_command_writes_the_paired_table(tmp_path, capsys):
    from wsis_d2.cli import main

    rows = [_row("boxinst", s, 28.0 + s, "base", ring=30.0) for s in (1, 2, 3)]
    rows += [_row("sim", s, 29.0 + s, "fs", ring=28.0) for s in (1, 2, 3)]
    results = tmp_path / "2026-01-01.json"
    results.write_text(json.dumps(rows))
    out = tmp_path / "report"
    assert main(["report", "--results", str(results), "--baseline", "boxinst", "--exclude-class", "ring",
                 "--output-dir", str(out)]) == 0
    assert "paired_vs_boxinst.md (1 settings)" in capsys.readouterr().out
    text = (out / "paired_vs_boxinst.md").read_text()
    # +1 at every seed overall, and square AP (2 AP - ring) 30 + 2s vs 26 + 2s: +4: no spread to judge by
    assert "| sim | fs | 1,2,3 | 31.0 | 30.0 | +1.00 | 0.0 | +1.00 .. +1.00 | 3/3 | no spread to judge by (std 0) |" in text
    assert "| sim | fs | 1,2,3 | 34.0 | 30.0 | +4.00 | 0.0 | +4.00 .. +4.00 | 3/3 | no spread to judge by (std 0) |" in text
    with pytest.raises(SystemExit, match="no seeded rows of the baseline method 'mask_rcnn'"):
        main(["report", "--results", str(results), "--baseline", "mask_rcnn", "--output-dir", str(out)])
    with pytest.raises(SystemExit):  # argparse: --exclude-class needs --baseline, before anything is written
        main(["report", "--results", str(results), "--exclude-class", "ring", "--output-dir", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
    # only seeds 2 and 3: the first line names them, and seed 1's rows are left out
    sim_seed_1 = dict(_row("sim", 1, 40.0, "fs", ring=28.0))
    results.write_text(json.dumps(rows[:3] + [sim_seed_1] + rows[4:]))
    main(["report", "--results", str(results), "--baseline", "boxinst", "--seeds", "2", "3", "--output-dir", str(out)])
    text = (out / "paired_vs_boxinst.md").read_text()
    assert "; only seeds 2, 3." in text.splitlines()[0]
    assert "| sim | fs | 2,3 | 31.5 | 30.5 | +1.00 | 0.0 |" in text
    with pytest.raises(SystemExit):
        main(["report", "--results", str(results), "--seeds", "2", "3", "--output-dir", str(tmp_path / "y")])
    assert not (tmp_path / "y").exists()


def test_label_cost_report(tmp_path):
    rows = [
        {"method": "condinst", "train_set": "shapes_full", "segm_AP": 30.0, "ratio_to_full": 1.0, "preset": "cpu"},
        {"method": "boxinst", "train_set": "shapes_box", "segm_AP": 27.0, "ratio_to_full": 0.9, "preset": "cpu"},
        {"method": "pointsup_condinst_3pts", "train_set": "shapes_point", "segm_AP": 28.0, "ratio_to_full": 0.93,
         "preset": "cpu", "config": "configs/PointSup/CondInst_R18_shapes.yaml INPUT.POINTS_PER_INSTANCE 3"},
        {"method": "pointwssis_p10", "train_set": "shapes_semi_10", "segm_AP": 29.0, "preset": "cpu"},
    ]
    results = tmp_path / "r.json"
    results.write_text(json.dumps(rows))
    paths = write_report(load_rows([str(results)]), str(tmp_path / "report"))
    assert paths["points"] == [("boxinst", 7.0, 27.0), ("pointsup_condinst_3pts", pytest.approx(9.4), 28.0),
                               ("pointwssis_p10", pytest.approx(0.1 * 79.2 + 0.9 * 7.8), 29.0),
                               ("condinst", 79.2, 30.0)]
    png = cv2.imread(paths["plot"])
    assert png is not None and png.shape[0] > 100
    assert "| boxinst | cpu | shapes_box | 7.0 | 27.0 | 0.9 |" in open(paths["table"]).read()
    with pytest.raises(ValueError, match="no annotation cost known"):
        seconds_per_object({"method": "x", "train_set": "shapes_scribble"})
    assert seconds_per_object({"method": "x", "train_set": "coco_2017_train_point"}) == pytest.approx(15.0)
    assert seconds_per_object({"method": "x", "train_set": "coco_2017_train"}) == 79.2
    # the prepared photo datasets (realphoto preset): <dataset>_train is fully labelled
    assert seconds_per_object({"method": "x", "train_set": "pennfudan_train"}) == 79.2
    assert seconds_per_object({"method": "x", "train_set": "balloon_train_box"}) == 7.0
    assert seconds_per_object({"method": "x", "train_set": "pennfudan_train_mixed_10_0"}) == \
        pytest.approx(0.1 * 79.2 + 0.9 * 7)
    with pytest.raises(ValueError, match="no annotation cost known"):
        seconds_per_object({"method": "x", "train_set": "pennfudan_trainval"})
    with pytest.raises(ValueError, match="no annotation cost known"):  # boxes only in detectron2
        seconds_per_object({"method": "x", "train_set": "voc_2012_train"})
    # PointWSSIS's teacher alone: the masks of the 10 % fully-labelled images, nothing else
    assert seconds_per_object({"method": "x", "train_set": "shapes_semi_10_masks_only"}) == pytest.approx(7.92)
    gpu = dict(rows[0], preset="gpu", segm_AP=35.0)
    results.write_text(json.dumps(rows + [gpu]))
    assert len(load_rows([str(results)], preset="gpu")) == 1 and len(load_rows([str(results)])) == 5
    assert paths["curves"] is None  # no row measured pseudo masks
    # seeded repeats stay apart; teacher-student rows' pseudo-mask curves get their own plot
    seeded = [dict(rows[1], method="boxteacher", seed=seed, segm_AP=20.0 + seed,
                   pseudo_mask_curve=[[100, 0.5, 0.4], [200, 0.6 + seed / 100, 0.9]]) for seed in (1, 2)]
    results.write_text(json.dumps(rows + seeded))
    paths = write_report(load_rows([str(results)]), str(tmp_path / "report2"))
    assert "| boxteacher (seed 1) | cpu | shapes_box | 7.0 | 21.0 | 0.9 |" in open(paths["table"]).read()
    assert "| boxteacher (seed 2) | cpu | shapes_box | 7.0 | 22.0 | 0.9 |" in open(paths["table"]).read()
    curves = cv2.imread(paths["curves"])
    assert curves is not None and curves.shape[0] > 100
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"method": "x"}]))
    with pytest.raises(ValueError, match="lacks field"):
        load_rows([str(bad)])


def _cost_row(method, seed, segm_ap, fingerprint, ratio=None, config="configs/BoxTeacher/R18_shapes.yaml",
              train_set="shapes_box"):
    return {"method": method, "seed": seed, "segm_AP": segm_ap, "ratio_to_full": ratio, "config": config,
            "config_fingerprint": fingerprint, "train_set": train_set, "preset": "cpu"}


def test_method_points_one_per_method_mean_and_spread_over_seeds():
    from wsis_d2.report import method_points, pareto_front

    rows = [
        _cost_row("boxteacher", 1, 10.0, "old"), _cost_row("boxteacher", 2, 12.0, "old"),  # an older setting
        _cost_row("boxteacher_plain_view_late_start", 1, 26.0, "t", ratio=0.8),  # became the preset: pools
        _cost_row("boxteacher", 2, 27.0, "t", ratio=0.9), _cost_row("boxteacher", 3, 31.0, "t", ratio=1.0),
        _cost_row("boxteacher", 1, 29.0, "t", ratio=0.7),  # seed 1 again: the later run counts
        _cost_row("boxteacher_late_start", 1, 40.0, "v"),  # the same config, other overrides: a variant
        _cost_row("boxinst_mask_rcnn", 1, 8.0, "m", config="configs/BoxInst/MaskRCNN_R18_shapes.yaml"),
        _cost_row("condinst", None, 31.0, None, ratio=1.0, config="configs/CondInst/R18_shapes.yaml",
                  train_set="shapes_full"),
        _cost_row("pointsup_condinst", None, 30.0, None, config="configs/PointSup/CondInst_R18_shapes.yaml",
                  train_set="shapes_point"),
    ]
    points = {p["method"]: p for p in method_points(rows)}
    assert list(points) == ["boxinst_mask_rcnn", "boxteacher", "pointsup_condinst", "condinst"]  # by cost, name
    teacher = points["boxteacher"]
    # seeds 1-3 of setting t: 29 (the re-run), 27, 31: mean 29, sample std 2, range 27-31
    assert teacher["seeds"] == [1, 2, 3] and teacher["variant_of"] is None and teacher["kind"] == "box"
    assert teacher["segm_AP"] == {"mean": 29.0, "std": 2.0, "min": 27.0, "max": 31.0}
    assert teacher["ratio_to_full"] == {"mean": pytest.approx(0.867, abs=1e-3), "std": 0.153, "min": 0.7, "max": 1.0}
    assert points["condinst"]["segm_AP"] == {"mean": 31.0, "std": 0.0, "min": 31.0, "max": 31.0}
    assert points["condinst"]["seeds"] == [None] and points["condinst"]["seconds"] == 79.2
    assert points["pointsup_condinst"]["ratio_to_full"] is None and points["pointsup_condinst"]["seconds"] == 15.0
    assert points["boxinst_mask_rcnn"]["variant_of"] is None  # another config: a method of its own
    with_variants = {p["method"]: p for p in method_points(rows, variants=True)}
    assert with_variants["boxteacher_late_start"]["variant_of"] == "boxteacher"
    assert with_variants["boxteacher_late_start"]["segm_AP"]["mean"] == 40.0
    # cheapest first: boxteacher (29) beats boxinst_mask_rcnn at one cost; condinst (31) costs more but scores more
    assert [p["method"] for p in pareto_front(list(points.values()))] == ["boxteacher", "pointsup_condinst", "condinst"]
    assert [p["method"] for p in pareto_front(list(points.values()), "ratio_to_full")] == ["boxteacher", "condinst"]


def test_label_cost_plot_and_table_hold_one_point_per_method(tmp_path):
    rows = [_cost_row("boxinst", s, 28.0 + s, "b", ratio=0.9) for s in (1, 2, 3)]
    rows += [_cost_row("boxinst_late", 1, 20.0, "v"), _cost_row("condinst", None, 31.0, None, ratio=1.0,
                                                                 train_set="shapes_full")]
    results = tmp_path / "2026-01-01.json"
    results.write_text(json.dumps(rows))
    paths = write_report(load_rows([str(results)]), str(tmp_path / "report"))
    assert [p["method"] for p in paths["methods"]] == ["boxinst", "condinst"]
    text = open(paths["table"]).read()
    assert "| boxinst | — | cpu | boxes | 7.0 | 1,2,3 | 30.0 | 1.0 | 29.0-31.0 | 0.9 | 0.0 | 0.9-0.9 | yes |" in text
    assert ("| condinst | — | cpu | full masks | 79.2 | unseeded | 31.0 | 0.0 | 31.0-31.0 | 1.0 | 0.0 | 1.0-1.0 | yes |"
            in text)
    assert "| boxinst_late (seed 1) | cpu | shapes_box | 7.0 | 20.0 | None |" in text  # every row still listed
    png = cv2.imread(paths["plot"])
    assert png is not None and png.shape[0] > 100
    paths = write_report(load_rows([str(results)]), str(tmp_path / "variants"), variants=True)
    assert [(p["method"], p["variant_of"]) for p in paths["methods"]] == [
        ("boxinst", None), ("boxinst_late", "boxinst"), ("condinst", None)]
    assert "| boxinst_late | boxinst | cpu | boxes | 7.0 | 1 | 20.0 | 0.0 | 20.0-20.0 | — | — | — |  |" in open(
        paths["table"]).read()


def test_report_command_takes_result_files_by_path(tmp_path, capsys):
    from wsis_d2.report.cli import main

    results = tmp_path / "2026-01-01.json"
    results.write_text(json.dumps([_cost_row("boxinst", s, 28.0 + s, "b") for s in (1, 2)]
                                  + [_cost_row("boxinst_late", 1, 20.0, "v")]))
    with pytest.raises(SystemExit):  # no default folder of results: they are named
        main(["--output-dir", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
    assert main(["--results", str(results), "--variants", "--output-dir", str(tmp_path / "out")]) == 0
    assert "3 rows, 2 points -> " in capsys.readouterr().out


def test_rows_of_two_eval_sets_are_paired_within_one(tmp_path):
    rows = [{"method": m, "preset": "realphoto", "seed": s, "segm_AP": ap + s, "bbox_AP": 1.0, "train_set": "t",
             "eval_set": e, "config_fingerprint": f"{m}-{e}"}
            for e, base in (("pennfudan_val", 10.0), ("balloon_val", 30.0))
            for m, ap in (("boxinst", base), ("sim", base + 2.0)) for s in (1, 2, 3)]
    results = tmp_path / "r.json"
    results.write_text(json.dumps(rows))
    assert len(load_rows([str(results)], "realphoto")) == 12  # the same method and seed on two sets: two rows
    with pytest.raises(ValueError, match="rows of eval sets .*--eval-set"):
        paired_seed_differences(load_rows([str(results)], "realphoto", by_setting=True), "boxinst")
    for eval_set in ("pennfudan_val", "balloon_val"):
        (table,) = paired_seed_differences(load_rows([str(results)], "realphoto", by_setting=True, eval_set=eval_set),
                                           "boxinst")
        assert table["mean_difference"] == 2.0 and table["seeds"] == [1, 2, 3]

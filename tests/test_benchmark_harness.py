"""The benchmark harness's bookkeeping (no training): seeded rows are kept apart and summarised."""
import importlib.util
import json
from pathlib import Path

import pytest

RUN_PY = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


@pytest.fixture
def harness(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("benchmark_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "RESULTS_DIR", tmp_path)
    return module


def _row(method, seed, segm, bbox=40.0, commit="abc1234"):
    return {"method": method, "preset": "cpu", "seed": seed, "commit": commit, "segm_AP": segm, "bbox_AP": bbox}


def test_seeded_rows_are_kept_apart_and_a_rerun_replaces_its_seed_only(harness, tmp_path):
    harness.write_results([_row("condinst", None, 30.0)], "2026-01-01")
    harness.write_results([_row("boxinst", 1, 10.0), _row("boxinst", 2, 20.0)], "2026-01-01")
    harness.write_results([_row("boxinst", 2, 26.0)], "2026-01-01")
    rows = json.loads((tmp_path / "2026-01-01.json").read_text())
    assert sorted((r["method"], r["seed"], r["segm_AP"]) for r in rows if r["method"] == "boxinst") == [
        ("boxinst", 1, 10.0), ("boxinst", 2, 26.0)]
    assert [r["ratio_to_full"] for r in rows if r["method"] == "boxinst"] == [round(10 / 30, 3), round(26 / 30, 3)]
    md = (tmp_path / "2026-01-01.md").read_text()
    assert "| boxinst | cpu | abc1234 | [1, 2] | 18.0 | 11.31 | 10.0 | 26.0 |" in md


def test_seed_summary_needs_two_seeds_of_one_commit(harness):
    rows = [_row("a", 1, 10.0), _row("a", 2, 14.0, bbox=44.0), _row("b", 1, 5.0), _row("c", None, 1.0),
            _row("d", 1, 3.0, commit="x"), _row("d", 2, 4.0, commit="y")]
    (summary,) = harness.seed_summary(rows)
    assert summary["method"] == "a" and summary["seeds"] == [1, 2]
    assert (summary["segm_AP_mean"], summary["segm_AP_std"]) == (12.0, pytest.approx(2.83, abs=0.01))
    assert (summary["bbox_AP_mean"], summary["bbox_AP_std"]) == (42.0, pytest.approx(2.83, abs=0.01))


def test_seeds_must_be_integers(harness):
    with pytest.raises(SystemExit):
        harness.main(["--methods", "boxinst", "--seeds", "1,two"])

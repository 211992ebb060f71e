"""projects/train_net.py as a user runs it: train, resume, --eval-only, 2 CPU processes (gloo)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def train_net(*args, timeout=600):
    cmd = [sys.executable, str(REPO / "projects" / "train_net.py"), *map(str, args)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


def tiny_opts(root, out_dir, iters):
    return ["WSIS.SHAPES_ROOT", root, "OUTPUT_DIR", out_dir, "SOLVER.MAX_ITER", iters, "SOLVER.IMS_PER_BATCH", 2,
            "SOLVER.WARMUP_ITERS", 1, "SOLVER.CHECKPOINT_PERIOD", 2, "DATALOADER.NUM_WORKERS", 0,
            "INPUT.MIN_SIZE_TRAIN", "(128,)", "INPUT.MIN_SIZE_TEST", 128, "WSIS.VIS_NUM_IMAGES", 1]


@pytest.fixture(scope="module")
def trained(tiny_shapes, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    log = train_net("--config-file", REPO / "configs/CondInst/R18_shapes.yaml", *tiny_opts(tiny_shapes["root"], out, 4))
    return out, log


def test_training_logs_checkpoints_evaluates_and_draws(trained):
    out, log = trained
    assert "eta:" in log and "loss_mask" in log  # detectron2's progress line with ETA
    assert (out / "model_0000001.pth").is_file() and (out / "model_final.pth").is_file()
    assert "copypaste: Task: segm" in log
    assert list((out / "visualizations").glob("shapes_val_*.png"))
    config = (out / "config.yaml").read_text()
    assert "CondInst" in config and "DiceMaskLoss" in config


def test_resume_continues_from_the_last_checkpoint(trained, tiny_shapes):
    out, _ = trained
    log = train_net("--config-file", REPO / "configs/CondInst/R18_shapes.yaml", "--resume",
                    *tiny_opts(tiny_shapes["root"], out, 6))
    assert "Starting training from iteration 4" in log


def test_eval_only_writes_metrics(trained, tiny_shapes, tmp_path):
    out, _ = trained
    log = train_net("--config-file", REPO / "configs/CondInst/R18_shapes.yaml", "--eval-only",
                    *tiny_opts(tiny_shapes["root"], tmp_path, 1), "MODEL.WEIGHTS", out / "model_final.pth",
                    # a model of a few iterations may score every detection below the default 0.05, and
                    # COCOEvaluator then reports NaN without its results table
                    "MODEL.FCOS.INFERENCE_TH", 0.0)
    metrics = json.loads((tmp_path / "inference" / "metrics.json").read_text())
    assert {"AP", "AP50", "AP75"} <= set(metrics["segm"]) and "AP" in metrics["bbox"]
    assert "Evaluation results for segm" in log


def test_eval_only_refuses_a_checkpoint_of_another_model(trained, tiny_shapes, tmp_path):
    out, _ = trained
    cmd = [sys.executable, str(REPO / "projects" / "train_net.py"), "--config-file",
           str(REPO / "configs/MaskRCNN/R18_shapes.yaml"), "--eval-only",
           *map(str, tiny_opts(tiny_shapes["root"], tmp_path, 1)), "MODEL.WEIGHTS", str(out / "model_final.pth")]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {out / 'model_final.pth'}: lacks (or holds another shape of)"), last
    assert "MaskRCNN/R18_shapes.yaml's model" in last
    assert not (tmp_path / "inference" / "metrics.json").exists()


def test_a_bad_annotation_file_stops_the_run_in_one_line(tiny_shapes, tmp_path):
    import shutil

    root = tmp_path / "shapes"
    shutil.copytree(tiny_shapes["root"], root)
    train = root / "annotations" / "train_full.json"
    coco = json.loads(train.read_text())
    coco["annotations"][0]["bbox"][2] = 0
    train.write_text(json.dumps(coco))
    cmd = [sys.executable, str(REPO / "projects" / "train_net.py"), "--config-file",
           str(REPO / "configs/CondInst/R18_shapes.yaml"), *map(str, tiny_opts(root, tmp_path / "out", 1))]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {train}: annotation id {coco['annotations'][0]['id']}"), last
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="the gloo path of CPU-only machines")
def test_two_cpu_processes_with_gloo(tiny_shapes, tmp_path):
    log = train_net("--config-file", REPO / "configs/CondInst/R18_shapes.yaml", "--num-gpus", 2,
                    *tiny_opts(tiny_shapes["root"], tmp_path, 2))
    assert "World size: 2" in log
    assert (tmp_path / "model_final.pth").is_file()

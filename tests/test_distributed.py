"""Teacher-student state under two training processes (gloo on CPU): every process must hold the same
EMA teacher and the same SIM prototypes, and the prototypes must pool both processes' features."""
import hashlib
import json

import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.utils import comm

from wsis_d2.data.register import register_shapes
from wsis_d2.engine import Trainer
from wsis_d2.engine.launch import launch
from wsis_d2.modeling.sim.prototypes import ClassPrototypes
from wsis_d2.modeling.teacher import MeanTeacher

from .conftest import small_config

# wsis_d2.engine.launch hands over to detectron2's NCCL launcher when CUDA is available
pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the gloo path of CPU-only machines")


def _update_teacher_of_a_batchnorm(out_file_pattern):
    # process r's student has running mean r + 1, variance 2(r + 1) and has counted 3(r + 1) batches
    rank = comm.get_rank()
    student = torch.nn.BatchNorm1d(2)
    student.running_mean.fill_(rank + 1.0)
    student.running_var.fill_(2.0 * (rank + 1))
    student.num_batches_tracked.fill_(3 * (rank + 1))
    teacher = MeanTeacher(torch.nn.BatchNorm1d(2))
    teacher.update(student, momentum=0.5)  # from mean 0, variance 1, 0 batches
    torch.save({**teacher.model.state_dict(), "student_mean": student.running_mean},
               out_file_pattern.format(rank=rank))


def test_teacher_update_averages_the_students_statistics_over_processes(tmp_path):
    pattern = str(tmp_path / "teacher_{rank}.pt")
    launch(_update_teacher_of_a_batchnorm, 2, args=(pattern,))
    for rank in (0, 1):
        state = torch.load(pattern.format(rank=rank))
        assert torch.allclose(state["running_mean"], torch.full((2,), 0.5 * 0.0 + 0.5 * 1.5))
        assert torch.allclose(state["running_var"], torch.full((2,), 0.5 * 1.0 + 0.5 * 3.0))
        assert state["num_batches_tracked"].item() == 3 * (rank + 1)  # an integer buffer is copied, not averaged
        assert torch.equal(state["student_mean"], torch.full((2,), rank + 1.0))  # the student keeps its own


def _update_prototypes(out_file_pattern):
    # class 0 starts at (1, 0); process 0 sees one class-0 feature (0, 1), process 1 one class-0 feature
    # (1, 0) and one class-1 feature (0, 1)
    protos = ClassPrototypes(num_classes=2, num_prototypes=1, dim=2, momentum=0.5)
    protos.prototypes.copy_(torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]]]))
    if comm.get_rank() == 0:
        protos.update([torch.tensor([[0.0, 1.0]])], [0])
    else:
        protos.update([torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])], [0, 1])
    torch.save(protos.prototypes, out_file_pattern.format(rank=comm.get_rank()))


def test_prototype_update_pools_the_features_of_every_process(tmp_path):
    pattern = str(tmp_path / "prototypes_{rank}.pt")
    launch(_update_prototypes, 2, args=(pattern,))
    per_process = [torch.load(pattern.format(rank=r)) for r in (0, 1)]
    # class 0: mean of (0, 1) and (1, 0) is (1, 1)/sqrt(2); EMA 0.5 from (1, 0), renormalised
    half = torch.tensor(0.5 ** 0.5)
    class0 = torch.nn.functional.normalize(0.5 * torch.tensor([1.0, 0.0]) + 0.5 * torch.stack([half, half]), dim=0)
    # class 1, seen by process 1 only, moves in process 0 too
    class1 = torch.stack([half, half])
    for prototypes in per_process:
        assert torch.allclose(prototypes[0, 0], class0, atol=1e-6)
        assert torch.allclose(prototypes[1, 0], class1, atol=1e-6)


def _train_and_record_state(config, root, out_dir, overrides):
    if "tiny_box" not in DatasetCatalog.list():  # each spawned process starts with empty catalogs
        register_shapes(root, prefix="tiny")
    cfg = small_config(config, train="tiny_box", output_dir=out_dir, SOLVER__MAX_ITER="4",
                       TEST__EVAL_PERIOD="0", SOLVER__CHECKPOINT_PERIOD="100", **overrides)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    model = getattr(trainer.model, "module", trainer.model)
    digests = {k: hashlib.sha1(v.detach().cpu().contiguous().numpy().tobytes()).hexdigest()
               for k, v in model.state_dict().items()}
    buffers = [name for name, _ in model.named_buffers()]
    with open(out_dir / f"state_{comm.get_rank()}.json", "w") as f:
        json.dump({"digests": digests, "buffers": buffers}, f)


@pytest.mark.parametrize("config,overrides", [
    ("BoxTeacher/R18_shapes.yaml", {"MODEL__BOX_TEACHER__START_ITER": "0"}),
    ("SIM/R18_shapes.yaml", {"MODEL__SIM__START_ITER": "0"}),
])
def test_two_processes_hold_the_same_teacher(tiny_shapes, tmp_path, config, overrides):
    launch(_train_and_record_state, 2, args=(config, tiny_shapes["root"], tmp_path, overrides))
    records = [json.loads((tmp_path / f"state_{r}.json").read_text()) for r in (0, 1)]
    states = [r["digests"] for r in records]
    buffers = set(records[0]["buffers"])
    # the students' BatchNorm statistics are their own images' (detectron2's DDP does not broadcast
    # buffers); everything else, the whole teacher and SIM's prototypes included, is the same bit for bit
    student_statistics = {k for k in buffers if k.startswith("student.") and "running_" in k}
    assert student_statistics and any(states[0][k] != states[1][k] for k in student_statistics)
    for k in states[0].keys() - student_statistics:
        assert states[0][k] == states[1][k], k
    teacher = {k[len("teacher.model."):]: v for k, v in states[0].items() if k.startswith("teacher.model.")}
    student = {k[len("student."):]: v for k, v in states[0].items() if k.startswith("student.")}
    assert teacher.keys() == student.keys()
    assert any(teacher[k] != student[k] for k in teacher)  # an EMA of the student, not a copy of it

"""BoxInst's photo configs ramp the pairwise term up over half the 600-iteration schedule.

With the papers' ramp scaled to the schedule (10k of 90k iterations: 67 here) the masks on Penn-Fudan
emptied by iteration ~60 (projection loss 0.95, pairwise ~1e-3: a uniform mask costs the pairwise term
nothing) and, depending on the seed, never or only partly recovered: 1.5 mask AP (seed 1). Ramped over
300 iterations the projection term shapes the masks first and the pairwise term then carves them:
39.1 mask AP over seeds 1-3 (benchmarks/README.md, "The pairwise ramp"). The configs that inherit BoxInst's
(BoxTeacher, SIM) get the same ramp; the mixed configs keep the one they were measured with. The
balloon configs of the box- and point-supervised methods also train at half Penn-Fudan's LR.
"""
import pytest

from wsis_d2.model_zoo import get_config
from wsis_d2.modeling.losses.registry import linear_ramp

PHOTO_BOX_CONFIGS = ["BoxInst/MV2_pennfudan.yaml", "BoxInst/MV2_balloon.yaml", "BoxTeacher/MV2_pennfudan.yaml",
                     "BoxTeacher/MV2_balloon.yaml", "SIM/MV2_pennfudan.yaml", "SIM/MV2_balloon.yaml"]


@pytest.mark.parametrize("config", PHOTO_BOX_CONFIGS)
def test_photo_configs_ramp_the_pairwise_term_over_half_the_schedule(config):
    cfg = get_config(config)
    ramp = cfg.MODEL.BOXINST.PAIRWISE.WARMUP_ITERS
    assert ramp == 300 and cfg.SOLVER.MAX_ITER == 600
    # where the 67-iteration ramp had the term at full weight (and the masks empty), it is at a fifth
    assert linear_ramp(67, ramp) == pytest.approx(67 / 300)
    assert linear_ramp(ramp, ramp) == 1.0


@pytest.mark.parametrize("config", ["Mixed/CondInst_MV2_pennfudan.yaml", "Mixed/CondInst_MV2_balloon.yaml"])
def test_mixed_photo_configs_keep_the_ramp_and_learning_rate_they_were_measured_with(config):
    cfg = get_config(config)
    assert cfg.MODEL.BOXINST.PAIRWISE.WARMUP_ITERS == 67 and cfg.SOLVER.BASE_LR == pytest.approx(0.01)


@pytest.mark.parametrize("method", ["BoxInst/MV2", "BoxTeacher/MV2", "SIM/MV2", "PointSup/CondInst_MV2"])
def test_balloon_box_configs_train_at_half_penn_fudans_learning_rate(method):
    # at 0.01 BoxInst on balloon lost one seed of three with either ramp, PointSup its seed 1; at 0.005
    # none (benchmarks/README.md, "realphoto preset, balloon val")
    balloon, pennfudan = (get_config(f"{method}_{d}.yaml") for d in ("balloon", "pennfudan"))
    assert balloon.SOLVER.BASE_LR == pytest.approx(pennfudan.SOLVER.BASE_LR / 2) == pytest.approx(0.005)
    assert balloon.SOLVER.MAX_ITER == pennfudan.SOLVER.MAX_ITER and balloon.SOLVER.STEPS == pennfudan.SOLVER.STEPS

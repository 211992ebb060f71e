"""The commands that take KEY VALUE config overrides refuse an option placed after them (argparse's
REMAINDER would otherwise read it as a KEY or VALUE and the option would be silently lost)."""
import argparse

import pytest

from wsis_d2.cli import main as cli_main
from wsis_d2.utils.args import add_config_overrides, config_overrides


@pytest.mark.parametrize("command", [
    ["predict", "--config-file", "c.yaml", "--weights", "w.pth", "--input", "a.jpg", "--output", "out"],
    ["export", "--config-file", "c.yaml", "--weights", "w.pth", "--format", "torchscript", "--output", "out"],
    ["pointwssis", "--output-dir", "out"],
    ["autolabel", "--input", "a.json", "--image-root", ".", "--backend", "model"],
])
@pytest.mark.parametrize("option", ["--overwrite", "-h"])
def test_an_option_after_the_overrides_is_refused_by_name(command, option, capsys):
    with pytest.raises(SystemExit) as stop:
        cli_main(command + ["MODEL.DEVICE", "cpu", option])
    assert stop.value.code == 2
    assert f"{option}: put options before the KEY VALUE overrides" in capsys.readouterr().err


def test_overrides_after_the_options_pass_through():
    parser = argparse.ArgumentParser()
    parser.add_argument("--x")
    add_config_overrides(parser)
    args = parser.parse_args(["--x", "1", "SOLVER.MAX_ITER", "10", "MODEL.WEIGHTS", "-"])
    assert config_overrides(parser, args.opts) == ["SOLVER.MAX_ITER", "10", "MODEL.WEIGHTS", "-"]
    negatives = ["MODEL.FCOS.NUM_CLASSES", "-1", "SOLVER.BASE_LR", "-0.5", "SOLVER.WEIGHT_DECAY", "-1e-3"]
    assert config_overrides(parser, parser.parse_args(["--", *negatives]).opts) == negatives  # `--` ends options
    assert config_overrides(parser, parser.parse_args([]).opts) == []

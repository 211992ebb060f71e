"""argparse helpers shared by the subcommands' parsers."""
import argparse
import json
import os
import re
from typing import List


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def load_json_arg(path, parser: argparse.ArgumentParser):
    """The parsed JSON file at ``path``; a missing, unreadable or non-JSON file ends the command with its name."""
    if not os.path.isfile(path):
        parser.error(f"{path}: no such file")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SystemExit(f"error: {path}: not valid JSON ({e})")


def add_config_overrides(parser: argparse.ArgumentParser, text: str = "config overrides KEY VALUE ...") -> None:
    """The trailing ``opts`` positional of a command that builds a config: KEY VALUE pairs after all options,
    as detectron2's ``train_net.py`` takes them. Read it back with :func:`config_overrides`."""
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help=text + " (after all options)")


def config_overrides(parser: argparse.ArgumentParser, opts) -> List[str]:
    """``opts`` as a list, without a leading ``--`` (end of options); an option placed after the overrides
    (``--name`` or ``-x``, which argparse's REMAINDER would take as a KEY or VALUE) ends the command with
    one line naming it. Negative numbers (``-1``, ``-0.5``, ``-1e-3``) are values."""
    opts = list(opts or [])
    if opts[:1] == ["--"]:
        opts = opts[1:]
    flags = [o for o in opts if o.startswith("--") or re.match(r"-[A-Za-z]", o)]
    if flags:
        parser.error(f"{flags[0]}: put options before the KEY VALUE overrides")
    return opts

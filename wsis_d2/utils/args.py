"""argparse helpers shared by the subcommands' parsers."""
import argparse
import json
import os


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

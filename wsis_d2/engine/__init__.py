from .launch import launch
from .setup import setup
from .train import default_argument_parser, run
from .trainer import Trainer

__all__ = ["Trainer", "default_argument_parser", "launch", "run", "setup"]

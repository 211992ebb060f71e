from .launch import launch
from .setup import setup
from .train import default_argument_parser, main, run
from .trainer import Trainer

__all__ = ["Trainer", "default_argument_parser", "launch", "main", "run", "setup"]

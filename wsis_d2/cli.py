"""``wsis-d2`` console entry point.

    wsis-d2 train --config-file configs/CondInst/R18_shapes.yaml [detectron2 train_net flags]
    wsis-d2 shapes [--root DIR] [--num-train N --num-val N --seed S]
    wsis-d2 configs
"""
import argparse
import sys


def _train(argv):
    from .engine import main

    main(argv)


def _shapes(argv):
    from .data.register import shapes_root
    from .data.shapes import ensure_shapes

    parser = argparse.ArgumentParser(prog="wsis-d2 shapes", description="Generate the embedded shapes dataset.")
    parser.add_argument("--root", default=None, help="output folder (default $DETECTRON2_DATASETS/shapes)")
    parser.add_argument("--num-train", type=int, default=400)
    parser.add_argument("--num-val", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    files = ensure_shapes(args.root or shapes_root(), num_train=args.num_train, num_val=args.num_val, seed=args.seed)
    for view, path in files.items():
        print(f"{view:>8}: {path}")


def _configs(argv):
    from .model_zoo import get_config_file, list_configs

    for name in list_configs():
        print(f"{name:<28} {get_config_file(name)}")


COMMANDS = {"train": _train, "shapes": _shapes, "configs": _configs}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip())
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    import wsis_d2  # noqa: F401  (registration)

    COMMANDS[argv[0]](argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())

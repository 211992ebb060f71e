"""``wsis-d2 report``: the label-cost table and plot of benchmark result files, and with ``--baseline``
every seeded setting against that method, seed by seed.

    wsis-d2 report --results benchmarks/results/????-??-??.json [--output-dir DIR] [--preset cpu] [--variants]
    wsis-d2 report --results ... --preset realphoto --eval-set pennfudan_val --baseline boxinst
    wsis-d2 report --results ... --baseline boxinst [--exclude-class ring] [--seeds 6 7 8 9]
"""
import argparse

from .label_cost import write_report
from .paired import write_paired_report
from .rows import load_rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wsis-d2 report",
                                     description="Mask AP against annotation seconds per object: a table and a PNG; "
                                                 "with --baseline, seeded settings against a baseline seed by seed.")
    parser.add_argument("--results", nargs="+", required=True, metavar="FILE.json",
                        help="benchmark result JSON files, oldest first (a later run of a method and seed replaces "
                             "an earlier one), e.g. benchmarks/results/????-??-??.json from the repository root")
    parser.add_argument("--output-dir", default="output/report")
    parser.add_argument("--preset", default="cpu",
                        help="benchmark preset to report (cpu | cpu_2x | gpu: benchmarks/presets.yaml)")
    parser.add_argument("--eval-set", default=None,
                        help="only rows evaluated on this dataset (presets over several datasets, e.g. realphoto: "
                             "pennfudan_val or balloon_val); pairing needs one")
    parser.add_argument("--variants", action="store_true",
                        help="also plot the variants of each method (hollow markers); the table always lists them")
    parser.add_argument("--baseline", default=None,
                        help="also compare every seeded setting with this method seed by seed "
                             "(paired_vs_<method>.md), e.g. boxinst")
    parser.add_argument("--exclude-class", nargs="+", default=(),
                        help="with --baseline: also compare the mean AP of the other classes")
    parser.add_argument("--seeds", type=int, nargs="+", default=(),
                        help="with --baseline: pair only these seeds (e.g. those run after a comparison was chosen)")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.exclude_class and not args.baseline:
        parser.error("--exclude-class compares with a baseline: pass --baseline METHOD too")
    if args.seeds and not args.baseline:
        parser.error("--seeds selects the seeds paired with a baseline: pass --baseline METHOD too")
    try:
        rows = load_rows(args.results, args.preset, eval_set=args.eval_set)
        if not rows:
            raise ValueError(f"no rows of preset {args.preset!r}" + (f" on {args.eval_set}" if args.eval_set else "")
                             + f" in {args.results}")
        # the paired table first: a bad --baseline stops the report before anything is written
        paired = (write_paired_report(load_rows(args.results, args.preset, by_setting=True, eval_set=args.eval_set), args.baseline,
                                      args.output_dir, args.exclude_class, args.seeds) if args.baseline else None)
        paths = write_report(rows, args.output_dir, variants=args.variants)
    except ValueError as e:
        raise SystemExit(f"error: {e}")
    print(f"{len(paths['points'])} rows, {len(paths['methods'])} points -> {paths['table']}, {paths['plot']}"
          + (f", {paths['curves']}" if paths["curves"] else "")
          + (f", {paired['table']} ({len(paired['rows'])} settings)" if paired else ""))
    return 0

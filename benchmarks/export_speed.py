#!/usr/bin/env python
"""CPU inference speed of an exported model against eager PyTorch (a measurement, not a test).

    python benchmarks/export_speed.py --config-file configs/BoxInst/MV2_pennfudan.yaml \
        --weights model_final.pth --images /work/data/prepared/pennfudan/val --num-images 10

Exports the model with ``wsis_d2.export`` (TorchScript, and ONNX when onnxruntime is installed) into a
temporary folder, then runs the same test-size images once through each: eager PyTorch (the model's own
``forward``), the TorchScript file and ONNX Runtime (CPU provider), all with the same thread count; one
warm-up image first, then one timed pass. Prints and writes a row (images/s, detections, and whether
each exported model gave PyTorch's detections on every image) to
``benchmarks/results/<date>-export-speed.{json,md}``.
"""
import argparse
import datetime
import glob
import json
import os
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--weights", default="", help="checkpoint (default: random init, for speed only)")
    parser.add_argument("--images", required=True, help="folder of images")
    parser.add_argument("--num-images", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--note", default="", help="what else ran on the CPU")
    parser.add_argument("opts", nargs=argparse.REMAINDER)
    args = parser.parse_args()

    import wsis_d2  # noqa: F401  (registration)
    from detectron2.modeling import build_model

    from wsis_d2.config import build_config
    from wsis_d2.data.images import read_checked_image
    from wsis_d2.export import compare_outputs, export_module, load_exported, load_trained_model
    from wsis_d2.export.cli import test_input
    from wsis_d2.export.exporter import mask_threshold_of, write_model

    torch.set_num_threads(args.threads)
    cfg = build_config(args.config_file, list(args.opts) + ["MODEL.DEVICE", "cpu"])
    model = (load_trained_model(cfg, args.weights, args.config_file) if args.weights
             else build_model(cfg).eval())
    files = sorted(glob.glob(os.path.join(args.images, "*.*")))[: args.num_images]
    images = [test_input(read_checked_image(f, cfg.INPUT.FORMAT)[0], cfg) for f in files]
    module = export_module(model, images[0])
    threshold = mask_threshold_of(model)

    runners = {"pytorch_eager": lambda x: model([{"image": x}])}
    exported_outputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        formats = ["torchscript"]
        try:
            import onnxruntime  # noqa: F401
            formats.append("onnx")
        except ImportError:
            print("onnxruntime is not installed: no ONNX row")
        for fmt in formats:
            path = os.path.join(tmp, "model.pt" if fmt == "torchscript" else "model.onnx")
            start = time.perf_counter()
            write_model(module, images[0], fmt, path)
            print(f"{fmt}: exported in {time.perf_counter() - start:.1f} s")
            if fmt == "onnx":
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.intra_op_num_threads = args.threads
                session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                runners[fmt] = lambda x, s=session: [torch.from_numpy(a) for a in s.run(None, {"image": x.numpy()})]
            else:
                runners[fmt] = load_exported(path)

        row = {"date": datetime.date.today().isoformat(), "config": args.config_file, "weights": args.weights,
               "images": len(images), "sizes": sorted({tuple(x.shape[-2:]) for x in images}),
               "threads": args.threads, "torch": torch.__version__, "note": args.note}
        with torch.no_grad():
            reference = [module(x) for x in images]
            for name, run in runners.items():
                run(images[0])  # warm-up
                start = time.perf_counter()
                outputs = [run(x) for x in images]
                seconds = time.perf_counter() - start
                row[f"{name}_images_per_s"] = round(len(images) / seconds, 3)
                if name == "pytorch_eager":
                    row["detections"] = sum(len(o[0]["instances"]) for o in outputs)
                else:
                    exported_outputs[name] = outputs
                    row[f"{name}_same_detections"] = all(
                        compare_outputs(r, o, threshold)["ok"] for r, o in zip(reference, outputs))
    try:
        import onnxruntime
        row["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    print(json.dumps(row))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = RESULTS_DIR / f"{row['date']}-export-speed"
    rows = json.loads(stem.with_suffix(".json").read_text()) if stem.with_suffix(".json").exists() else []
    rows.append(row)
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    keys = [k for k in row if k not in ("sizes",)]
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

"""``wsis-d2 export``: a trained CondInst-family or Mask R-CNN model to TorchScript or ONNX."""
import argparse
import json

import torch
from detectron2.data import transforms as T

from ..config import ConfigError, build_config
from ..data.images import read_checked_image
from ..utils.args import add_config_overrides, config_overrides
from .exporter import FORMATS, OnnxMissing, check_output_dir, export_model, load_trained_model, synthetic_image


def test_input(image, cfg) -> torch.Tensor:
    """(H, W, 3) uint8 in ``INPUT.FORMAT`` -> the model's (3, h, w) float input at the test size."""
    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    image = resize.get_transform(image).apply_image(image)
    return torch.as_tensor(image.astype("float32").transpose(2, 0, 1))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="wsis-d2 export",
        description="Export a trained model (CondInst, BoxInst and the other CondInst-based models, dynamic mask "
                    "head included; Mask R-CNN) to TorchScript or ONNX: one image of any size in, boxes, scores, "
                    "classes and mask probabilities out, NMS and mask paste inside the graph. The folder also "
                    "gets export.json and postprocess.py (resize before, scaling and threshold after). The "
                    "export is checked against PyTorch on the sample image and a second size before it is "
                    "written.")
    parser.add_argument("--config-file", required=True, help="the trained model's config")
    parser.add_argument("--weights", required=True, help="its checkpoint (model_final.pth)")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS))
    parser.add_argument("--output", required=True, help="new folder to write (an existing one must be empty)")
    parser.add_argument("--sample-image", help="image to trace and check on (default: a synthetic one at the "
                                               "test size)")
    add_config_overrides(parser)
    args = parser.parse_args(argv)
    args.opts = config_overrides(parser, args.opts)
    try:
        check_output_dir(args.output)
        cfg = build_config(args.config_file, list(args.opts) + ["MODEL.DEVICE", "cpu"])
        if args.sample_image:
            image, problem = read_checked_image(args.sample_image, cfg.INPUT.FORMAT)
            if problem is not None:
                raise ConfigError(f"--sample-image {problem}")
            sample = test_input(image, cfg)
        else:
            size = cfg.INPUT.MIN_SIZE_TEST
            sample = synthetic_image(size, min(size * 4 // 3, cfg.INPUT.MAX_SIZE_TEST))
        # a second check at another size and aspect: the sample's transpose, cropped by a few pixels
        other = sample.transpose(1, 2)[:, : sample.shape[2] - 5, : sample.shape[1] - 3].contiguous()
        model = load_trained_model(cfg, args.weights, args.config_file)
        meta = export_model(model, cfg, args.format, args.output, sample, [other],
                            source={"config_file": args.config_file, "weights": args.weights,
                                    "sample_image": args.sample_image or "synthetic", "opts": list(args.opts)})
    except (ConfigError, OnnxMissing) as e:
        raise SystemExit(f"error: {e}")
    for check in meta["checks"]:
        print(f"checked at {check['size'][0]}x{check['size'][1]}: {check['detections']} detections, the same in "
              f"the export: " + json.dumps({k: v for k, v in check.items() if k not in ("size", "ok")}))
    print(f"wrote {args.output}/{meta['file']} ({meta['architecture']}, {meta['exporter']}), export.json, "
          f"config.yaml, postprocess.py")

"""``wsis-d2 predict``: a trained model on images (pictures + COCO results JSON) or a video (annotated video).

    wsis-d2 predict --config-file C --weights W --input IMG|DIR|'GLOB'|VIDEO [--output DIR]
                    [--confidence 0.5] [--overwrite] [KEY VALUE ...]

Images: ``DIR/<name>`` is the image with its predictions drawn by detectron2's Visualizer (the input's
name and format), and ``DIR/results.json`` the predictions of all images as COCO results (RLE masks;
``image_id`` is the image's place in the input, 1-based, and ``file_name`` its name). A video:
``DIR/<stem>.mp4`` (``.avi`` for an AVI) with every frame drawn. Images that cannot be read are skipped
and listed at the end. No output may be an input; existing outputs are replaced only with ``--overwrite``.
The model runs on the GPU when there is one (``MODEL.DEVICE``), else on the CPU.
"""
import argparse
import json
import logging
import os
import re
import time
from typing import List, Tuple

import cv2
import tqdm
from detectron2.utils.logger import setup_logger
from detectron2.utils.video_visualizer import VideoVisualizer
from detectron2.utils.visualizer import ColorMode, Visualizer

from ..config import ConfigError, build_config
from ..config.ranges import check_run_config
from ..data.images import read_checked_image
from ..data.register import register_shapes, shapes_root
from ..utils.args import add_config_overrides, config_overrides
from ..utils.paths import input_named_by
from .predict import (Predictor, coco_results, collect_images, is_video, keep_confident, lower_score_thresholds,
                      output_names, training_metadata)

logger = logging.getLogger(__name__)

RESULTS_NAME = "results.json"
# video container -> OpenCV codec; anything else is written as .mp4
VIDEO_CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsis-d2 predict",
        description="Run a trained model on images (pictures with the predictions drawn + one COCO results "
                    "JSON with RLE masks) or on a video (the video with the predictions drawn).",
        epilog="Examples:\n  wsis-d2 predict --config-file configs/BoxInst/R18_shapes.yaml --weights "
               "output/BoxInst/R18_shapes/model_final.pth --input photos/ --output predictions/\n"
               "  wsis-d2 predict ... --input 'photos/**/*.jpg'   # a pattern, quoted\n"
               "  wsis-d2 predict ... --input street.mp4 --confidence 0.6 MODEL.DEVICE cpu",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="the trained model's config")
    parser.add_argument("--weights", required=True, help="its checkpoint (model_final.pth)")
    parser.add_argument("--input", required=True, nargs="+",
                        help="image files, folders (their images), quoted glob patterns, or one video")
    parser.add_argument("--output", default="output/predict", help="folder for the pictures and results.json "
                                                                   "(default output/predict)")
    parser.add_argument("--confidence", type=float, default=0.5,
                        help="keep predictions scoring at least this, in the pictures and the JSON (default 0.5)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (never an input)")
    add_config_overrides(parser)
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.input, overrides = split_overrides(args.input)
    args.opts = overrides + config_overrides(parser, args.opts)
    if not args.input:
        parser.error("--input names no file: KEY VALUE overrides come after the inputs")
    setup_logger(name="wsis_d2", abbrev_name="wsis")
    logging.getLogger("wsis_d2").setLevel(logging.INFO)
    if not 0.0 <= args.confidence <= 1.0:
        parser.error(f"--confidence {args.confidence}: must lie in [0, 1]")
    try:
        predict(args)
    except ConfigError as e:
        raise SystemExit(f"error: {e}")


_CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


def split_overrides(inputs: List[str]) -> Tuple[List[str], List[str]]:
    """``--input`` takes every word up to the next flag, so ``--input a.jpg MODEL.DEVICE cpu`` gives it
    the overrides too: they start at the first word that looks like a config key (``MODEL.DEVICE``) and
    is no existing path."""
    for k, word in enumerate(inputs):
        if _CONFIG_KEY.match(word) and not os.path.exists(word):
            return inputs[:k], inputs[k:]
    return inputs, []


def _check_outputs(outputs: List[str], inputs: List[str], overwrite: bool) -> None:
    for out in outputs:
        hit = input_named_by(out, inputs)
        if hit is not None:
            raise ConfigError(f"{out} would overwrite the input {hit}; choose another --output")
    existing = [out for out in outputs if os.path.exists(out)]
    if existing and not overwrite:
        raise ConfigError(f"{existing[0]} exists ({len(existing)} of the outputs do); pass --overwrite to replace "
                          "them or choose another --output")


def predict(args) -> dict:
    """Run ``wsis-d2 predict`` with parsed ``args``; returns a summary (counts, images/s, skipped files).

    Raises:
        ConfigError: a bad config, checkpoint or input, or an output that would replace an input.
    """
    cfg = build_config(args.config_file, args.opts)
    lower_score_thresholds(cfg, args.confidence)
    check_run_config(cfg, training=False)
    if shapes_root(cfg) != shapes_root():
        register_shapes(shapes_root(cfg))
    cfg.freeze()
    video = is_video(args.input)
    images = [] if video else collect_images(args.input)
    predictor = Predictor(cfg, args.weights, args.config_file)
    metadata, category_ids = training_metadata(cfg)
    if os.path.isfile(args.output):
        raise ConfigError(f"--output {args.output} is a file; it names the folder to write into")
    if video:
        return _predict_video(args, predictor, metadata)
    return _predict_images(args, images, predictor, metadata, category_ids)


def _predict_images(args, images, predictor, metadata, category_ids) -> dict:
    names = output_names(images)
    pictures = [os.path.join(args.output, name) for name in names]
    results_path = os.path.join(args.output, RESULTS_NAME)
    _check_outputs(pictures + [results_path], images, args.overwrite)
    results, skipped, written = [], [], 0
    start = time.perf_counter()
    for image_id, (path, name, picture) in enumerate(tqdm.tqdm(list(zip(images, names, pictures)), unit="img",
                                                               desc="predict", dynamic_ncols=True), 1):
        image, problem = read_checked_image(path, format="BGR")
        if problem is not None:
            skipped.append(problem)
            continue
        instances = keep_confident(predictor(image), args.confidence)
        results += coco_results(instances, image_id, name, category_ids)
        drawn = Visualizer(image[:, :, ::-1], metadata, instance_mode=ColorMode.IMAGE)
        drawn = drawn.draw_instance_predictions(instances).get_image()[:, :, ::-1]
        os.makedirs(os.path.dirname(picture), exist_ok=True)
        if not cv2.imwrite(picture, drawn):
            raise ConfigError(f"{picture}: OpenCV cannot write this format; convert the input to JPEG or PNG")
        written += 1
    seconds = time.perf_counter() - start
    os.makedirs(args.output, exist_ok=True)
    with open(results_path, "w") as f:
        json.dump(results, f)
    rate = written / seconds if seconds > 0 else 0.0
    print(f"{written} images, {len(results)} predictions in {seconds:.1f} s ({rate:.2f} images/s) -> "
          f"{args.output}/ and {results_path}")
    if skipped:
        print(f"{len(skipped)} images skipped (cannot be read):")
        for line in skipped:
            print(f"  {line}")
    return {"images": written, "predictions": len(results), "seconds": seconds, "images_per_s": rate,
            "skipped": skipped, "results": results_path}


def _video_output(args, video: str) -> str:
    stem, ext = os.path.splitext(os.path.basename(video))
    ext = ext.lower() if ext.lower() in VIDEO_CODECS else ".mp4"
    return os.path.join(args.output, stem + ext)


def _predict_video(args, predictor, metadata) -> dict:
    video = args.input[0]
    out = _video_output(args, video)
    _check_outputs([out], [video], args.overwrite)
    capture = cv2.VideoCapture(video)
    if not capture.isOpened():
        raise ConfigError(f"{video}: OpenCV cannot open this video")
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    os.makedirs(args.output, exist_ok=True)
    codec = VIDEO_CODECS[os.path.splitext(out)[1]]
    writer = cv2.VideoWriter(out, cv2.VideoWriter_fourcc(*codec), fps, (width, height), True)
    if not writer.isOpened():
        capture.release()
        raise ConfigError(f"{out}: OpenCV cannot write video with the {codec} codec here")
    visualizer = VideoVisualizer(metadata, ColorMode.IMAGE)
    frames = 0
    start = time.perf_counter()
    try:
        with tqdm.tqdm(total=total, unit="frame", desc="predict", dynamic_ncols=True) as bar:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                instances = keep_confident(predictor(frame), args.confidence)
                drawn = visualizer.draw_instance_predictions(frame[:, :, ::-1], instances).get_image()
                writer.write(drawn[:, :, ::-1])
                frames += 1
                bar.update(1)
    finally:
        capture.release()
        writer.release()
    seconds = time.perf_counter() - start
    rate = frames / seconds if seconds > 0 else 0.0
    print(f"{frames} frames in {seconds:.1f} s ({rate:.2f} frames/s) -> {out}")
    return {"frames": frames, "seconds": seconds, "frames_per_s": rate, "output": out}

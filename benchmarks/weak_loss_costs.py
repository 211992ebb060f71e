#!/usr/bin/env python
"""What the weak mask losses cost (a measurement, not a test).

    python benchmarks/weak_loss_costs.py

1. Pairwise term, shifted slices (wsis_d2) against a naive ``unfold`` of the
   full maps (written only here, for comparison): peak extra RSS and time of
   forward + backward, each in a fresh process, and the two loss values (they
   must agree).
2. Share of a training iteration spent in the weak mask losses, for each
   box-supervised config: the time of forward + backward with the configured
   losses minus the time with them swapped for a zero loss, over the full time.

Writes ``benchmarks/results/<date>-weak-loss-costs.{json,md}``.
"""
import argparse
import datetime
import json
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
BOX_CONFIGS = {"boxinst": "BoxInst/R18_shapes.yaml", "boxlevelset": "BoxLevelSet/R18_shapes.yaml",
               "boxinst_mask_rcnn": "BoxInst/MaskRCNN_R18_shapes.yaml"}


def naive_unfold_pairwise(logits, lab, in_box, color_thresh, size, dilation):
    """The same loss as ``pairwise_color_loss`` built from ``F.unfold`` of the full maps."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = logits.shape
    pad = (size // 2) * dilation
    centre = size * size // 2

    def unfold(x):  # (N, C, H, W) -> (N, C, size*size - 1, H, W), neighbours without the centre
        u = F.unfold(x, kernel_size=size, dilation=dilation, padding=pad).view(x.shape[0], x.shape[1], size * size, h, w)
        return torch.cat([u[:, :, :centre], u[:, :, centre + 1:]], dim=2)

    sim = torch.exp(-torch.linalg.vector_norm(lab[:, :, None] - unfold(lab), dim=1) * 0.5)
    valid = unfold(torch.ones((1, 1, h, w)))[:, 0] > 0.5
    log_fg, log_bg = F.logsigmoid(logits), F.logsigmoid(-logits)
    same = torch.logaddexp(log_fg + unfold(log_fg)[:, 0], log_bg + unfold(log_bg)[:, 0])
    weights = ((sim >= color_thresh) & valid & in_box).float().expand(n, -1, -1, -1)
    return -(same * weights).sum() / weights.sum().clamp(min=1.0)


def _pairwise_worker(variant, n, h, w, queue):
    import torch

    from wsis_d2.modeling.losses.pairwise import color_similarity, rgb_to_lab, valid_edges
    from wsis_d2.modeling.losses.pairwise_color import pairwise_color_loss

    torch.manual_seed(0)
    # a smooth random image, so that many edges pass the colour threshold
    coarse = torch.rand((1, 3, max(h // 16, 2), max(w // 16, 2)))
    lab = rgb_to_lab(torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False))
    logits = torch.randn((n, 1, h, w), requires_grad=True)
    in_box = torch.zeros((n, 1, h, w), dtype=torch.bool)
    in_box[:, :, h // 4: 3 * h // 4, w // 4: 3 * w // 4] = True
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if variant == "slices":
        sim = color_similarity(lab, 3, 2)
        valid = valid_edges(torch.ones((1, 1, h, w), dtype=torch.bool), 3, 2)
        edges = ((sim >= 0.3) & valid).expand(n, -1, -1, -1)
        loss = pairwise_color_loss(logits, edges, in_box)
    else:
        loss = naive_unfold_pairwise(logits, lab, in_box, 0.3, 3, 2)
    loss.backward()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"variant": variant, "loss": loss.item(), "seconds": round(seconds, 3),
               "peak_extra_mb": round((peak - base) / 1024.0, 1)})


def pairwise_memory(n: int, h: int, w: int):
    ctx = mp.get_context("spawn")
    rows = []
    for variant in ("slices", "unfold"):
        queue = ctx.Queue()
        proc = ctx.Process(target=_pairwise_worker, args=(variant, n, h, w, queue))
        proc.start()
        rows.append(queue.get())
        proc.join()
    if abs(rows[0]["loss"] - rows[1]["loss"]) > 1e-4 * max(1.0, abs(rows[0]["loss"])):
        raise AssertionError(f"the two pairwise implementations disagree: {rows}")
    return rows


def _zero_loss(index: int):
    import torch

    class ZeroLoss(torch.nn.Module):
        """Stands in for a mask loss: keeps the logits in the graph, costs nothing."""

        def forward(self, logits, inputs):
            return {f"loss_zero_{index}": logits.sum() * 0}

    return ZeroLoss()


def _time_iterations(model, batches, iteration):
    from detectron2.utils.events import EventStorage

    model.train()
    with EventStorage(iteration):
        sum(model(batches[0]).values()).backward()  # warm-up
        start = time.perf_counter()
        for batch in batches[1:]:
            model.zero_grad()
            sum(model(batch).values()).backward()
    return (time.perf_counter() - start) / (len(batches) - 1)


def loss_share(config: str, num_batches: int = 6):
    import torch

    import wsis_d2  # noqa: F401
    from wsis_d2.engine.trainer import Trainer
    from wsis_d2.model_zoo import get_config

    cfg = get_config(config)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "DATALOADER.NUM_WORKERS", 0])
    torch.manual_seed(0)
    model = Trainer.build_model(cfg)
    loader = iter(Trainer.build_train_loader(cfg))
    batches = [next(loader) for _ in range(num_batches)]
    iteration = 10 ** 6  # past every warm-up
    owner = model if hasattr(model, "mask_losses") else model.roi_heads.mask_head
    originals = owner.mask_losses
    full = _time_iterations(model, batches, iteration)
    zeros = [_zero_loss(i) for i in range(len(originals))]
    owner.mask_losses = torch.nn.ModuleList(zeros) if isinstance(originals, torch.nn.Module) else zeros
    without = _time_iterations(model, batches, iteration)
    owner.mask_losses = originals
    return {"config": f"configs/{config}", "s_per_iter": round(full, 3),
            "s_per_iter_without_weak_losses": round(without, 3),
            "weak_loss_share": round(max(full - without, 0.0) / full, 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=64, help="instances for the pairwise comparison")
    parser.add_argument("--height", type=int, default=200, help="logit height (800 px input / stride 4)")
    parser.add_argument("--width", type=int, default=336, help="logit width (1344 px input / stride 4)")
    args = parser.parse_args(argv)
    date = datetime.date.today().isoformat()
    memory = pairwise_memory(args.instances, args.height, args.width)
    shares = {name: loss_share(config) for name, config in BOX_CONFIGS.items()}
    result = {"date": date, "pairwise": {"instances": args.instances, "logits_hw": [args.height, args.width],
                                         "rows": memory}, "weak_loss_share": shares}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{date}-weak-loss-costs.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Weak-loss costs, {date}", "",
             f"Pairwise term, {args.instances} instances, {args.height}x{args.width} logits, forward + backward:", "",
             "| variant | peak extra RSS (MB) | seconds | loss |", "|---|---|---|---|"]
    lines += [f"| {r['variant']} | {r['peak_extra_mb']} | {r['seconds']} | {r['loss']:.5f} |" for r in memory]
    lines += ["", "Share of a training iteration (forward + backward) spent in the weak mask losses:", "",
              "| method | s/iter | s/iter without the weak losses | share |", "|---|---|---|---|"]
    lines += [f"| {m} | {r['s_per_iter']} | {r['s_per_iter_without_weak_losses']} | {r['weak_loss_share']} |"
              for m, r in shares.items()]
    (RESULTS_DIR / f"{date}-weak-loss-costs.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()

"""Why BoxInst collapses on real photos: measurements of its colour graph and of its losses' gradients.

``graph``: for the in-box edges of BoxInst's colour graph (3 x 3, dilation 2, at the mask stride) of
the first N images of a dataset with masks, resized as in training: the share whose similarity passes
the threshold (edges the pairwise loss counts) and, of those, the share joining two cells of the same
GT label (object-object or background-background). The GT masks are read here only, to measure.
Compared for the channel order the LAB conversion gets (right and swapped) and the pixel scale.

``landscape``: BoxInst's loss (projection + pairwise at weight 1) of hand-made mask probabilities on
the training photos: each object's GT mask and its filled box, each at confidence 0.9 / 0.99 (inside)
against 0.1 / 0.01 (outside). Where the filled box scores lower than the GT mask, the loss itself
prefers boxes on these photos: training longer cannot carve the masks.

``grads``: one training batch through a config's model (optionally a checkpoint): each loss term's
gradient norm on the FCOS towers, the controller, the mask branch and the backbone, and the mask
statistics of the positives (mean probability inside and outside the GT box).

    python benchmarks/boxinst_photo_check.py graph --annotations /work/data/prepared/pennfudan/annotations/train.json \
        --images /work/data/prepared/pennfudan/train --short-side 288
    python benchmarks/boxinst_photo_check.py landscape --num-images 120 --thresh 0.1 0.3 0.5
    python benchmarks/boxinst_photo_check.py grads --config-file configs/BoxInst/MV2_pennfudan.yaml \
        [--weights /work/runs/x/model_final.pth] [KEY VALUE ...]
"""
import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pycocotools.mask as mask_util
import torch
import torch.nn.functional as F
from detectron2.data import transforms as T
from detectron2.structures import BoxMode

from wsis_d2.modeling.losses.box_targets import box_masks
from wsis_d2.modeling.losses.pairwise import color_similarity, neighbours, rgb_to_lab


def resized(image_rgb, annotations, short_side):
    resize = T.ResizeShortestEdge(short_side, max_size=sys.maxsize).get_transform(image_rgb)
    out = []
    for a in annotations:
        segm = a["segmentation"]
        if isinstance(segm, list):
            h, w = image_rgb.shape[:2]
            segm = mask_util.merge(mask_util.frPyObjects(segm, h, w))
        mask = resize.apply_segmentation(mask_util.decode(segm))
        x0, y0, x1, y1 = resize.apply_box(BoxMode.convert(np.array([a["bbox"]]), BoxMode.XYWH_ABS,
                                                          BoxMode.XYXY_ABS))[0]
        out.append({"mask": mask, "box": [float(x0), float(y0), float(x1), float(y1)]})
    return resize.apply_image(image_rgb), out


def edge_counts(rgb_01, annotations, stride, size, dilation, thresh):
    """-> (in-box edges, passing edges, passing edges joining the same GT label)."""
    h, w = rgb_01.shape[-2:]
    pad = (0, (-w) % stride, 0, (-h) % stride)
    lab = rgb_to_lab(F.avg_pool2d(F.pad(rgb_01, pad), stride).clamp(0, 1))
    sim = color_similarity(lab, size, dilation)[0]  # (K, h, w)
    hs, ws = lab.shape[-2:]
    valid = torch.zeros((1, 1, hs, ws))
    valid[..., : h // stride, : w // stride] = 1
    valid_edge = (neighbours(valid, size, dilation)[0, 0] > 0.5) & (valid[0] > 0.5)
    masks = torch.from_numpy(np.stack([a["mask"] for a in annotations])).float()
    on = F.avg_pool2d(F.pad(masks[:, None], pad), stride) >= 0.5  # (n, 1, hs, ws)
    in_box = box_masks(torch.tensor([a["box"] for a in annotations]), hs, ws, stride)[:, None] >= 0.5
    same = on == (neighbours(on.float(), size, dilation)[:, 0] > 0.5)  # (n, K, hs, ws)
    counted = in_box & valid_edge[None]
    passing = counted & (sim >= thresh)[None]
    both_on = on & (neighbours(on.float(), size, dilation)[:, 0] > 0.5)
    return np.array([counted.sum().item(), passing.sum().item(), (passing & same).sum().item(),
                     (passing & both_on).sum().item(), (counted & both_on).sum().item()])


def photos(args):
    """(1, 3, H, W) RGB in [0, 1] and the resized objects of the first ``args.num_images`` images with objects."""
    data = json.loads(Path(args.annotations).read_text())
    by_image = defaultdict(list)
    for a in data["annotations"]:
        by_image[a["image_id"]].append(a)
    for image in [im for im in data["images"] if by_image[im["id"]]][: args.num_images]:
        bgr = cv2.imread(str(Path(args.images) / image["file_name"]))
        rgb, anns = resized(bgr[:, :, ::-1].copy(), by_image[image["id"]], args.short_side)
        yield torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0, anns


def graph(args):
    variants = {"RGB (right)": lambda x: x, "BGR (channels swapped)": lambda x: x.flip(1)}
    totals = {k: np.zeros(5) for k in variants}
    images = 0
    for x, anns in photos(args):
        images += 1
        for name, f in variants.items():
            totals[name] += edge_counts(f(x), anns, args.stride, args.size, args.dilation, args.thresh)
    print(f"{images} images, short side {args.short_side}, stride {args.stride}, threshold {args.thresh}")
    for name, (counted, passing, same, pass_on, on) in totals.items():
        print(f"  {name}: {int(counted)} in-box edges, {passing / counted:.3f} pass the threshold, "
              f"{same / max(passing, 1):.3f} of those join the same GT label, {pass_on / max(passing, 1):.3f} "
              f"join two object cells (object-object edges: {on / counted:.3f} of the in-box edges, "
              f"{pass_on / max(on, 1):.3f} of them pass)")


def landscape(args):
    from wsis_d2.modeling.losses.pairwise import valid_edges
    from wsis_d2.modeling.losses.pairwise_color import pairwise_color_loss
    from wsis_d2.modeling.losses.projection import projection_loss

    stride, confidences = args.stride, (0.9, 0.99)
    # (candidate, confidence, threshold) -> per-object (projection, pairwise) losses of every image
    losses = defaultdict(list)
    images = 0
    for x, anns in photos(args):
        images += 1
        h, w = x.shape[-2:]
        pad = (0, (-w) % stride, 0, (-h) % stride)
        lab = rgb_to_lab(F.avg_pool2d(F.pad(x, pad), stride).clamp(0, 1))
        sim = color_similarity(lab, args.size, args.dilation)  # (1, K, hs, ws)
        hs, ws = lab.shape[-2:]
        valid = torch.zeros((1, 1, hs, ws), dtype=torch.bool)
        valid[..., : h // stride, : w // stride] = True
        edges_ok = valid_edges(valid, args.size, args.dilation)
        boxes = torch.tensor([a["box"] for a in anns])
        in_box = box_masks(boxes, hs, ws, stride)[:, None] >= 0.5
        gt = F.avg_pool2d(F.pad(torch.from_numpy(np.stack([a["mask"] for a in anns])).float()[:, None], pad),
                          stride) >= 0.5
        for conf in confidences:
            logit = torch.tensor(float(np.log(conf / (1 - conf))))
            for name, on in (("gt", gt), ("box", in_box)):
                logits = torch.where(on, logit, -logit)
                prj = projection_loss(torch.sigmoid(logits), boxes, stride)  # (n,)
                for thresh in args.thresh:
                    edges = edges_ok & (sim >= thresh)
                    pair = torch.stack([pairwise_color_loss(logits[i:i + 1], edges, in_box[i:i + 1], args.size,
                                                            args.dilation) for i in range(len(anns))])
                    losses[(name, conf, thresh)].append(torch.stack([prj, pair], 1))
    print(f"{images} images, short side {args.short_side}, stride {stride}; mean per object "
          "(projection + pairwise at weight 1)")
    for conf in confidences:
        for thresh in args.thresh:
            gt, box = (torch.cat(losses[(name, conf, thresh)]) for name in ("gt", "box"))  # (objects, 2)
            row = [f"{name}: prj {v[:, 0].mean():.3f} pairwise {v[:, 1].mean():.3f} total {v.sum(1).mean():.3f}"
                   for name, v in (("gt", gt), ("box", box))]
            print(f"  confidence {conf}, colour threshold {thresh}: " + " | ".join(row)
                  + f" | filled box lower for {int((box.sum(1) < gt.sum(1)).sum())}/{len(gt)} objects")


def grads(args):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import build_detection_train_loader
    from detectron2.modeling import build_model
    from detectron2.utils.events import EventStorage

    from wsis_d2.config import build_config
    from wsis_d2.data.mapper import WSISDatasetMapper

    cfg = build_config(args.config_file, args.opts + ["DATALOADER.NUM_WORKERS", "0"])
    torch.manual_seed(0)
    model = build_model(cfg)
    DetectionCheckpointer(model).load(args.weights or cfg.MODEL.WEIGHTS)
    model.train()
    batches = build_detection_train_loader(cfg, mapper=WSISDatasetMapper(cfg, is_train=True))
    groups = {"cls_tower": "fcos.head.cls_tower", "box_tower": "fcos.head.box_tower",
              "controller": "fcos.head.extra", "mask_branch": "mask_branch", "backbone": "backbone"}
    params = {g: [p for n, p in model.named_parameters() if n.startswith(prefix) and p.requires_grad]
              for g, prefix in groups.items()}
    rows = defaultdict(lambda: defaultdict(list))
    head_out = {}
    model.fcos.head.register_forward_hook(lambda m, i, o: head_out.update(o))
    dead, ctr_mean = [], []
    for b, batch in zip(range(args.num_batches), batches):
        with EventStorage(args.iteration):
            losses = model(batch)
        reg = torch.cat([r.detach().flatten() for r in head_out["box_reg"]])
        dead.append(float((reg == 0).float().mean()))
        for key, value in losses.items():
            if not value.requires_grad:
                continue
            gs = torch.autograd.grad(value, [p for ps in params.values() for p in ps], retain_graph=True,
                                     allow_unused=True)
            i = 0
            for g, ps in params.items():
                sq = sum(float((x ** 2).sum()) for x in gs[i: i + len(ps)] if x is not None)
                rows[key][g].append(sq ** 0.5)
                i += len(ps)
            rows[key]["value"].append(float(value))
    print(f"{args.config_file} weights {args.weights or cfg.MODEL.WEIGHTS}, iteration {args.iteration}, "
          f"{args.num_batches} batches: loss value and gradient norm per parameter group")
    for key, r in rows.items():
        print(f"  {key:16s} value {np.mean(r['value']):.4f}  " +
              "  ".join(f"{g} {np.mean(r[g]):.2e}" for g in groups))
    print(f"  box regression outputs clamped to 0 by the ReLU (no gradient): {np.mean(dead):.3f} of all locations")


def train(args):
    """A short training (detectron2's optimizer and schedule of the config) that logs, every few
    iterations, the mask losses and what the mask-loss positives' masks look like: mean probability
    inside / outside the GT box, the share of instances whose mask is saturated and uniform
    (in-box mean < 0.05: empty; out-of-box mean > 0.5: spilling), and the box tower's gradient norm."""
    import time

    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.data import build_detection_train_loader
    from detectron2.modeling import build_model
    from detectron2.solver import build_lr_scheduler, build_optimizer
    from detectron2.utils.events import EventStorage

    from wsis_d2.config import build_config
    from wsis_d2.data.mapper import WSISDatasetMapper
    from wsis_d2.modeling.losses.box_targets import box_masks as cell_box_masks

    cfg = build_config(args.config_file, args.opts + ["DATALOADER.NUM_WORKERS", "0"])
    torch.manual_seed(0)
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.train()
    optimizer, seen = build_optimizer(cfg, model), {}
    scheduler = build_lr_scheduler(cfg, optimizer)
    select, logits_of = model.select_positives, model.mask_logits

    def keep_positives(positives, gt_instances):
        seen["pos"], seen["gt"] = select(positives, gt_instances), gt_instances
        return seen["pos"]

    def keep_logits(*a, **k):
        seen["logits"] = logits_of(*a, **k)
        return seen["logits"]

    model.select_positives, model.mask_logits = keep_positives, keep_logits
    box_tower = [p for n, p in model.named_parameters() if n.startswith("fcos.head.box_tower")]
    head_out = {}
    model.fcos.head.register_forward_hook(lambda m, i, o: head_out.update(o))
    batches = build_detection_train_loader(cfg, mapper=WSISDatasetMapper(cfg, is_train=True))
    t0 = time.time()
    print("iter  " + "  ".join(f"{k:>8s}" for k in ("prj", "pairwise", "p_inbox", "p_outbox", "empty",
                                                   "spilling", "boxgrad", "loc", "reg_dead", "s/iter")), flush=True)
    with EventStorage(0) as storage:
        for it, batch in zip(range(args.iters), batches):
            storage.iter = it
            losses = model(batch)
            optimizer.zero_grad()
            sum(losses.values()).backward()
            if it % args.every == 0 or it == args.iters - 1:
                with torch.no_grad():
                    probs = seen["logits"].sigmoid()[:, 0]
                    pos = seen["pos"]
                    boxes = torch.cat([g.gt_boxes.tensor for g in seen["gt"]])
                    offsets = torch.tensor([0] + [len(g) for g in seen["gt"]]).cumsum(0)
                    inbox = cell_box_masks(boxes[offsets[pos.im_inds] + pos.gt_inds], *probs.shape[-2:],
                                           cfg.MODEL.CONDINST.MASK_OUT_STRIDE) >= 0.5
                    p_in = (probs * inbox).flatten(1).sum(1) / inbox.flatten(1).sum(1).clamp(min=1)
                    p_out = (probs * ~inbox).flatten(1).sum(1) / (~inbox).flatten(1).sum(1).clamp(min=1)
                    grad = sum(float((q.grad ** 2).sum()) for q in box_tower if q.grad is not None) ** 0.5
                    reg = torch.cat([r.flatten() for r in head_out["box_reg"]])
                print(f"{it:4d}  " + "  ".join(f"{v:8.4f}" for v in (
                    float(losses.get("loss_prj", losses.get("loss_mask", torch.zeros(())))),
                    float(losses.get("loss_pairwise", torch.zeros(()))), float(p_in.mean()), float(p_out.mean()),
                    float((p_in < 0.05).float().mean()), float((p_out > 0.5).float().mean()), grad,
                    float(losses["loss_fcos_loc"]), float((reg == 0).float().mean()),
                    (time.time() - t0) / (it + 1))), flush=True)
            optimizer.step()
            scheduler.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    g = sub.add_parser("graph")
    g.add_argument("--annotations", default="/work/data/prepared/pennfudan/annotations/train.json")
    g.add_argument("--images", default="/work/data/prepared/pennfudan/train")
    g.add_argument("--num-images", type=int, default=40)
    g.add_argument("--short-side", type=int, default=288)
    g.add_argument("--stride", type=int, default=4)
    g.add_argument("--size", type=int, default=3)
    g.add_argument("--dilation", type=int, default=2)
    g.add_argument("--thresh", type=float, default=0.3)
    la = sub.add_parser("landscape")
    la.add_argument("--annotations", default="/work/data/prepared/pennfudan/annotations/train.json")
    la.add_argument("--images", default="/work/data/prepared/pennfudan/train")
    la.add_argument("--num-images", type=int, default=120)
    la.add_argument("--short-side", type=int, default=288)
    la.add_argument("--stride", type=int, default=4)
    la.add_argument("--size", type=int, default=3)
    la.add_argument("--dilation", type=int, default=2)
    la.add_argument("--thresh", type=float, nargs="+", default=[0.1, 0.3, 0.5])
    r = sub.add_parser("grads")
    r.add_argument("--config-file", required=True)
    r.add_argument("--weights", default="")
    r.add_argument("--num-batches", type=int, default=2)
    r.add_argument("--iteration", type=int, default=100000, help="event-storage iteration (past the warm-up)")
    r.add_argument("opts", nargs=argparse.REMAINDER)
    t = sub.add_parser("train")
    t.add_argument("--config-file", required=True)
    t.add_argument("--iters", type=int, default=60)
    t.add_argument("--every", type=int, default=5)
    t.add_argument("opts", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    {"graph": graph, "landscape": landscape, "grads": grads, "train": train}[args.mode](args)


if __name__ == "__main__":
    main()

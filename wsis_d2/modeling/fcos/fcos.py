"""The FCOS detector as a module that CondInst-style meta-architectures build on."""
from dataclasses import dataclass, fields
from typing import Dict, List, Optional, Tuple

import torch
from detectron2.config import configurable
from detectron2.layers import ShapeSpec
from detectron2.structures import ImageList, Instances
from torch import nn

from .head import FCOSHead
from .inference import fcos_detections_single_image
from .losses import fcos_losses
from .targets import assign_fcos_targets, compute_locations, level_size_ranges


@dataclass
class FCOSPositives:
    """The positive locations of a training batch (P of them), with what a mask head needs.

    im_inds: (P,) image index in the batch; gt_inds: (P,) index into that
    image's GT instances; locations: (P, 2) (x, y); levels: (P,) FPN level;
    top_feats: (P, E) the extra head output (CondInst: dynamic parameters);
    scores: (P,) detached best class probability x centerness.
    """

    im_inds: torch.Tensor
    gt_inds: torch.Tensor
    locations: torch.Tensor
    levels: torch.Tensor
    top_feats: torch.Tensor
    scores: torch.Tensor

    def __len__(self):
        return self.im_inds.numel()

    def __getitem__(self, index) -> "FCOSPositives":
        return FCOSPositives(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def _flatten_levels(per_level: List[torch.Tensor]) -> torch.Tensor:
    """[(N, C, Hl, Wl), ...] -> (N, sum_l Hl*Wl, C)."""
    return torch.cat([x.flatten(2).transpose(1, 2) for x in per_level], dim=1)


class FCOS(nn.Module):
    @configurable
    def __init__(self, *, input_shapes: List[ShapeSpec], in_features: List[str], strides: List[int],
                 num_classes: int, sizes_of_interest: List[float], center_sample: bool, pos_radius: float,
                 focal_alpha: float, focal_gamma: float, score_thresh: float, pre_nms_topk: int,
                 nms_thresh: float, post_nms_topk: int, thresh_with_ctr: bool, head: FCOSHead):
        super().__init__()
        if len(strides) != len(in_features):
            raise ValueError(f"MODEL.FCOS.FPN_STRIDES {strides} must have one stride per "
                             f"MODEL.FCOS.IN_FEATURES {in_features}")
        for shape, name, stride in zip(input_shapes, in_features, strides):
            if shape.stride is not None and shape.stride != stride:
                raise ValueError(f"feature {name} has stride {shape.stride}, but MODEL.FCOS.FPN_STRIDES says {stride}")
        self.in_features = in_features
        self.strides = strides
        self.num_classes = num_classes
        self.size_ranges = level_size_ranges(sizes_of_interest, len(in_features))
        self.center_sample = center_sample
        self.pos_radius = pos_radius
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.score_thresh = score_thresh
        self.pre_nms_topk = pre_nms_topk
        self.nms_thresh = nms_thresh
        self.post_nms_topk = post_nms_topk
        self.thresh_with_ctr = thresh_with_ctr
        self.head = head

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec], extra_out_channels: int = 0,
                    detach_extra_input: bool = False):
        f = cfg.MODEL.FCOS
        missing = [name for name in f.IN_FEATURES if name not in input_shape]
        if missing:
            raise ValueError(f"MODEL.FCOS.IN_FEATURES {missing} are not backbone outputs {sorted(input_shape)}; "
                             "use MODEL.BACKBONE.NAME build_fcos_resnet_fpn_backbone for P6/P7")
        shapes = [input_shape[name] for name in f.IN_FEATURES]
        head = FCOSHead(shapes, f.NUM_CLASSES, f.NUM_CLS_CONVS, f.NUM_BOX_CONVS, f.NORM, f.PRIOR_PROB,
                        f.USE_SCALE, extra_out_channels, detach_extra_input)
        return {
            "input_shapes": shapes, "in_features": list(f.IN_FEATURES), "strides": list(f.FPN_STRIDES),
            "num_classes": f.NUM_CLASSES, "sizes_of_interest": list(f.SIZES_OF_INTEREST),
            "center_sample": f.CENTER_SAMPLE, "pos_radius": f.POS_RADIUS, "focal_alpha": f.LOSS_ALPHA,
            "focal_gamma": f.LOSS_GAMMA, "score_thresh": f.INFERENCE_TH, "pre_nms_topk": f.PRE_NMS_TOPK,
            "nms_thresh": f.NMS_TH, "post_nms_topk": f.POST_NMS_TOPK, "thresh_with_ctr": f.THRESH_WITH_CTR,
            "head": head,
        }

    def _locations(self, feats: List[torch.Tensor]) -> List[torch.Tensor]:
        return [compute_locations(x.shape[-2], x.shape[-1], s, x.device) for x, s in zip(feats, self.strides)]

    def forward(self, images: ImageList, features: Dict[str, torch.Tensor],
                gt_instances: Optional[List[Instances]] = None):
        """
        Training (``gt_instances`` given): returns (loss dict, :class:`FCOSPositives`).
        Inference: returns one ``Instances`` per image (see
        :func:`fcos_detections_single_image`).
        """
        feats = [features[name] for name in self.in_features]
        out = self.head(feats)
        locations = self._locations(feats)
        if self.training:
            return self._training(out, locations, gt_instances)
        return self._inference(out, locations, images.image_sizes)

    def _training(self, out, locations, gt_instances) -> Tuple[Dict[str, torch.Tensor], FCOSPositives]:
        device = locations[0].device
        all_locations = torch.cat(locations)
        level_of = torch.cat([torch.full((len(loc),), lvl, dtype=torch.long, device=device)
                              for lvl, loc in enumerate(locations)])
        ranges = torch.tensor(self.size_ranges, device=device)[level_of]
        strides = torch.tensor(self.strides, dtype=torch.float32, device=device)[level_of]

        targets = [
            assign_fcos_targets(all_locations, ranges, strides, inst.gt_boxes.tensor, inst.gt_classes,
                                self.num_classes, self.center_sample, self.pos_radius)
            for inst in gt_instances
        ]
        labels = torch.stack([t[0] for t in targets])  # (N, L)
        reg_targets = torch.stack([t[1] for t in targets])  # (N, L, 4)
        gt_inds = torch.stack([t[2] for t in targets])  # (N, L)

        logits = _flatten_levels(out["logits"])  # (N, L, K)
        box_reg = _flatten_levels(out["box_reg"])
        ctrness = _flatten_levels(out["ctrness"]).squeeze(2)
        num_locations = logits.shape[1]
        losses = fcos_losses(logits.reshape(-1, self.num_classes), box_reg.reshape(-1, 4), ctrness.reshape(-1),
                             labels.reshape(-1), reg_targets.reshape(-1, 4), self.num_classes,
                             self.focal_alpha, self.focal_gamma)

        pos = torch.nonzero(labels.reshape(-1) != self.num_classes).squeeze(1)
        im_inds, loc_inds = pos // num_locations, pos % num_locations
        if out["extra"]:
            top_feats = _flatten_levels(out["extra"]).reshape(-1, out["extra"][0].shape[1])[pos]
        else:
            top_feats = logits.new_zeros((pos.numel(), 0))
        with torch.no_grad():
            scores = (logits.reshape(-1, self.num_classes)[pos].sigmoid().max(dim=1).values
                      * ctrness.reshape(-1)[pos].sigmoid())
        positives = FCOSPositives(im_inds=im_inds, gt_inds=gt_inds.reshape(-1)[pos],
                                  locations=all_locations[loc_inds], levels=level_of[loc_inds],
                                  top_feats=top_feats, scores=scores)
        return losses, positives

    def _inference(self, out, locations, image_sizes) -> List[Instances]:
        results = []
        for i, image_size in enumerate(image_sizes):
            def per_image(key, i=i):
                return [x[i].flatten(1).t() for x in out[key]]
            results.append(fcos_detections_single_image(
                per_image("logits"), per_image("box_reg"), [c.squeeze(1) for c in per_image("ctrness")],
                per_image("extra") if out["extra"] else [], locations, self.strides, image_size,
                self.score_thresh, self.pre_nms_topk, self.nms_thresh, self.post_nms_topk, self.thresh_with_ctr,
            ))
        return results

"""What a mask loss may read about the instances whose logits it gets, in the logits' frame.

A mask loss gets (n, 1, h, w) logits and a :class:`MaskLossInputs`. The inputs
say where the logits live: :class:`ImageFrameInputs` for full-image logits
(CondInst: cell j covers input pixels [s*j, s*(j+1))), and the RoI frame of
``wsis_d2.modeling.roi_heads`` for Mask R-CNN's per-RoI logits.

:class:`MaskLossInputs` is the core every frame offers: the GT boxes, points and
masks of the instances (and any other per-instance field a model adds to its GT
``Instances``, such as a teacher's pseudo masks), and the image's colour graph.
Losses that only call these serve every mask head. A loss that needs the whole
image (``NEEDS_FULL_IMAGE``: the image itself, per-image maps such as features)
reads them from :class:`ImageFrameInputs`; what only one method needs is computed
next to that method's loss, from these.
"""
import copy
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from detectron2.structures import BitMasks, Instances, PolygonMasks

from .box_targets import box_masks
from .pairwise import color_similarity, rgb_to_lab, to_rgb, valid_edges


def pad_points(coords: List[torch.Tensor], labels: List[torch.Tensor]):
    """Pad per-image (n_i, P_i, 2) coords / (n_i, P_i) labels to a common P with ignored (-1) points:
    images may carry different numbers of points per object."""
    num_points = max(c.shape[1] for c in coords)
    coords = [F.pad(c, (0, 0, 0, num_points - c.shape[1])) for c in coords]
    labels = [F.pad(lab, (0, num_points - lab.shape[1]), value=-1.0) for lab in labels]
    return coords, labels


class MaskLossInputs:
    """Interface: n instances, logits of stride ``stride`` in this frame's pixel units."""

    stride: int = 1
    iteration: int = 0

    def __len__(self) -> int:
        raise NotImplementedError

    def boxes(self) -> torch.Tensor:
        """(n, 4) XYXY GT box of each instance, in this frame's pixels."""
        raise NotImplementedError

    def box_masks(self, h: int, w: int) -> torch.Tensor:
        """(n, h, w) share of each logit cell inside the instance's GT box."""
        return box_masks(self.boxes(), h, w, self.stride)

    def instance_masks(self, field: str, missing: str, fill: Optional[float] = None) -> torch.Tensor:
        """(n, 1, h, w) the per-instance mask ``field`` of the GT ``Instances`` (e.g. ``gt_masks``, or what a
        teacher-student model adds) at the logits' resolution, soft (area shares). When no image holds the
        field: all ``fill``, or ``ValueError(missing)`` when ``fill`` is None."""
        raise NotImplementedError(f"{type(self).__name__} holds no per-instance masks ({field})")

    def instance_values(self, field: str) -> torch.Tensor:
        """(n,) a per-instance scalar field of the GT ``Instances`` (e.g. ``gt_pasted``), as float."""
        raise NotImplementedError(f"{type(self).__name__} holds no per-instance fields ({field})")

    def gt_masks(self) -> torch.Tensor:
        """(n, 1, h, w) GT masks at the logits' resolution, soft (area shares)."""
        return self.instance_masks("gt_masks", "this mask loss needs GT masks, but the data view has none "
                                               "(use a box/point loss, or a dataset view with masks)")

    def has_masks(self) -> torch.Tensor:
        """(n,) bool: the instance has a drawn mask (mixed supervision: the GT field ``gt_has_mask``; an
        image without it: every instance has one when the image has ``gt_masks``, none otherwise)."""
        raise NotImplementedError(f"{type(self).__name__} holds no per-object supervision flags")

    def has_points(self) -> torch.Tensor:
        """(n,) bool: the instance has labelled points (``gt_has_points``, else whether the image has them)."""
        raise NotImplementedError(f"{type(self).__name__} holds no per-object supervision flags")

    def subset(self, keep: torch.Tensor) -> "MaskLossInputs":
        """The inputs of the instances ``keep`` ((n,) bool) selects, in order (per-image caches shared)."""
        raise NotImplementedError(f"{type(self).__name__} cannot select instances")

    def points(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Each instance's labelled points: coords (n, P, 2) (x, y) normalised to the logits'
        extent ([0, 1] from the first cell's left/top edge to the last cell's right/bottom
        edge) and labels (n, P) (1 on the object, 0 off, -1 ignored)."""
        raise NotImplementedError(f"{type(self).__name__} holds no points")

    def color_graph(self, size: int, dilation: int,
                    bottom_pixels_removed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
        """Each instance's colour graph: similarity (n, K, h, w) and edge validity (n, K, h, w); cells of the
        bottom ``bottom_pixels_removed`` rows of the original image take no part (full-image frames)."""
        raise NotImplementedError

    def similar_edges(self, size: int, dilation: int, thresh: float, bottom_pixels_removed: int = 0) -> torch.Tensor:
        """(n, K, h, w) bool: valid edges of :meth:`color_graph` whose colour similarity is at least ``thresh``."""
        similarity, valid = self.color_graph(size, dilation, bottom_pixels_removed)
        return (similarity >= thresh) & valid

    def graph_logits(self, mask_logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The logits on the colour graph's grid and (n, 1, H, W) bool: cell inside the GT box.

        Full-image logits are their own grid; a frame whose graph reaches beyond
        the logits (a RoI's context) extends them there.
        """
        return mask_logits, self.box_masks(*mask_logits.shape[-2:])[:, None] >= 0.5


class ImageFrameInputs(MaskLossInputs):
    """Full-image logits at ``stride`` on the padded batch (CondInst and its weak variants).

    Besides the core, it holds what a full-image loss reads per image: the images (:meth:`rgb_images`),
    their colour graphs (:meth:`image_color_graph`) and mask features (:meth:`mask_features`); :meth:`select`
    picks each instance's image's entry.

    Args:
        gt_instances: the batch's GT ``Instances`` (boxes always; masks/points
            only when the data view has them), in the padded input frame.
        im_inds, gt_inds: (n,) image of each instance and its index there.
        stride: stride of the logits relative to the padded input.
        raw_images: (N, 3, H, W) the padded batch before normalisation (0-255, ``image_format`` order).
        image_sizes: [(h, w)] of each image before padding.
        original_heights: each image's height on disk (before resizing).
        iteration: current training iteration (warm-ups).
        mask_feats: (N, C, H/t, W/t) the mask branch's features at stride ``mask_feat_stride`` t.
        teacher_feats: (N, C, H/t, W/t) a teacher's mask features of the same padded batch, or None.
    """

    def __init__(self, gt_instances: List[Instances], im_inds: torch.Tensor, gt_inds: torch.Tensor, stride: int,
                 raw_images: torch.Tensor = None, image_format: str = "BGR",
                 image_sizes: List[tuple] = (), original_heights: List[int] = (),
                 iteration: int = 0, padded_size: tuple = None, mask_feats: torch.Tensor = None,
                 mask_feat_stride: int = None, teacher_feats: torch.Tensor = None):
        self.gt_instances = gt_instances
        self.im_inds = im_inds
        self.gt_inds = gt_inds
        self.stride = stride
        self.raw_images = raw_images
        self.image_format = image_format
        self.image_sizes = list(image_sizes)
        self.original_heights = list(original_heights)
        self.iteration = iteration
        self.padded_size = padded_size or (tuple(raw_images.shape[-2:]) if raw_images is not None else None)
        self.mask_feats = mask_feats
        self.mask_feat_stride = mask_feat_stride
        self.teacher_feats = teacher_feats
        # per-image caches (colour graphs, "lab"), shared with the subsets of this frame
        self._graphs: Dict[object, object] = {}

    def __len__(self):
        return int(self.im_inds.numel())

    def _per_instance(self, per_image: List[torch.Tensor]) -> torch.Tensor:
        offsets = torch.tensor([0] + [len(x) for x in per_image], device=self.im_inds.device).cumsum(0)
        return torch.cat(per_image)[offsets[self.im_inds] + self.gt_inds]

    def _referenced_images(self) -> set:
        return set(self.im_inds.unique().tolist())

    def _flags(self, field: str, default_from: str) -> torch.Tensor:
        device = self.im_inds.device
        per_image = [inst.get(field).to(device=device, dtype=torch.bool) if inst.has(field) else
                     torch.full((len(inst),), len(inst) > 0 and inst.has(default_from), dtype=torch.bool,
                                device=device) for inst in self.gt_instances]
        return self._per_instance(per_image)

    def has_masks(self) -> torch.Tensor:
        return self._flags("gt_has_mask", "gt_masks")

    def has_points(self) -> torch.Tensor:
        return self._flags("gt_has_points", "gt_point_coords")

    def subset(self, keep: torch.Tensor) -> "ImageFrameInputs":
        out = copy.copy(self)  # shares self._graphs
        out.im_inds, out.gt_inds = self.im_inds[keep], self.gt_inds[keep]
        return out

    def select(self, per_image: torch.Tensor) -> torch.Tensor:
        """(N, ...) per-image tensor -> (n, ...) each instance's image's entry."""
        return per_image[self.im_inds]

    def boxes(self) -> torch.Tensor:
        if len(self) == 0:
            return torch.zeros((0, 4), device=self.im_inds.device)
        return self._per_instance([inst.gt_boxes.tensor for inst in self.gt_instances])

    def instance_masks(self, field: str, missing: str, fill: Optional[float] = None) -> torch.Tensor:
        """Per-image (N_i, H_i, W_i) masks of ``field`` padded to the batch and area-averaged over
        s x s blocks (the block centre is exactly where the logit sits), per instance."""
        h, w = self.padded_size
        s = self.stride
        if fill is not None and not any(inst.has(field) for inst in self.gt_instances):
            return torch.full((len(self), 1, h // s, w // s), fill, device=self.im_inds.device)
        per_image = []
        referenced = self._referenced_images()
        for i, inst in enumerate(self.gt_instances):
            if len(inst) == 0 or i not in referenced:
                # detectron2 gives images without annotations no mask fields; an image none of these
                # instances is in (a per-object subset) is not read
                per_image.append(torch.zeros((len(inst), 1, h // s, w // s), device=self.im_inds.device))
                continue
            if not inst.has(field):
                raise ValueError(missing)
            masks = inst.get(field)
            if isinstance(masks, PolygonMasks):
                masks = BitMasks.from_polygon_masks(masks, *inst.image_size)
            masks = (masks.tensor if isinstance(masks, BitMasks) else masks).float()
            masks = F.pad(masks, (0, w - masks.shape[-1], 0, h - masks.shape[-2]))
            per_image.append(F.avg_pool2d(masks[:, None], kernel_size=s, stride=s))
        return self._per_instance(per_image)

    def instance_values(self, field: str) -> torch.Tensor:
        per_image = []
        for inst in self.gt_instances:
            if len(inst) == 0:
                per_image.append(torch.zeros(0, device=self.im_inds.device))
            elif not inst.has(field):
                raise ValueError(f"this mask loss reads the per-instance field {field}, which the data does not have")
            else:
                per_image.append(inst.get(field).float())
        return self._per_instance(per_image)

    def points(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Points in the padded input frame, normalised by the padded size (the logits cover it)."""
        device = self.im_inds.device
        coords, labels = [], []
        referenced = self._referenced_images()
        for i, inst in enumerate(self.gt_instances):
            if len(inst) == 0 or i not in referenced:  # not read (see instance_masks)
                coords.append(torch.zeros((len(inst), 1, 2), device=device))
                labels.append(torch.full((len(inst), 1), -1.0, device=device))
                continue
            if not inst.has("gt_point_coords"):
                raise ValueError("this mask loss needs labelled points, but the data view has none "
                                 "(use a point view such as shapes_point, or a box/mask loss)")
            coords.append(inst.gt_point_coords)
            labels.append(inst.gt_point_labels)
        coords, labels = pad_points(coords, labels)
        h, w = self.padded_size
        return self._per_instance(coords) / coords[0].new_tensor([w, h]), self._per_instance(labels)

    def rgb_images(self) -> torch.Tensor:
        """(N, 3, H, W) the padded batch in RGB order, 0-255, at the input resolution."""
        return to_rgb(self.raw_images, self.image_format)

    def _lab_cells(self) -> torch.Tensor:
        """(N, 3, H/s, W/s) each image average-pooled to the stride, in CIE LAB (computed once, on its device)."""
        if "lab" not in self._graphs:
            s = self.stride
            rgb = self.rgb_images() / 255.0
            self._graphs["lab"] = rgb_to_lab(F.avg_pool2d(rgb.clamp(0, 1), kernel_size=s, stride=s))
        return self._graphs["lab"]

    def _valid_cells(self, bottom_pixels_removed: int) -> torch.Tensor:
        """(N, 1, H/s, W/s) bool: cells of the image, not padding nor the bottom ``bottom_pixels_removed``
        original rows (rescaled)."""
        n, _, h, w = self._lab_cells().shape
        s = self.stride
        valid = torch.zeros((n, 1, h, w), dtype=torch.bool, device=self.raw_images.device)
        for i, ((img_h, img_w), orig_h) in enumerate(zip(self.image_sizes, self.original_heights)):
            removed = int(round(bottom_pixels_removed * img_h / float(orig_h)))
            valid[i, 0, : max(img_h - removed, 0) // s, : img_w // s] = True
        return valid

    def image_color_graph(self, size: int, dilation: int,
                          bottom_pixels_removed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per image (computed once, shared by its instances): similarity and validity (N, K, H/s, W/s)
        of the edges between the cells of the image (not padding nor the bottom ``bottom_pixels_removed``
        original rows, rescaled)."""
        key = (size, dilation, bottom_pixels_removed)
        if key not in self._graphs:
            self._graphs[key] = (color_similarity(self._lab_cells(), size, dilation),
                                 valid_edges(self._valid_cells(bottom_pixels_removed), size, dilation))
        return self._graphs[key]

    def color_graph(self, size: int, dilation: int,
                    bottom_pixels_removed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
        similarity, valid = self.image_color_graph(size, dilation, bottom_pixels_removed)
        return self.select(similarity), self.select(valid)

    def similar_edges(self, size: int, dilation: int, thresh: float, bottom_pixels_removed: int = 0) -> torch.Tensor:
        # threshold once per image, then copy 1-byte masks per instance (not float graphs)
        similarity, valid = self.image_color_graph(size, dilation, bottom_pixels_removed)
        return self.select((similarity >= thresh) & valid)

    def mask_features(self, teacher: bool = False) -> torch.Tensor:
        """(N, C, H/s, W/s) per image at the logits' stride: the mask branch's features, or with ``teacher``
        an EMA teacher's mask features of the same images (a teacher-student model such as SIM adds them)."""
        feats = self.teacher_feats if teacher else self.mask_feats
        if feats is None:
            raise NotImplementedError(
                f"{type(self).__name__} holds no teacher features (a teacher-student model such as SIM adds them "
                "to its student's inputs)" if teacher else f"{type(self).__name__} holds no deep features")
        if self.mask_feat_stride != self.stride:
            feats = F.interpolate(feats, scale_factor=self.mask_feat_stride / self.stride, mode="bilinear",
                                  align_corners=False)
        return feats

"""What a mask loss may read about the instances whose logits it gets, in the logits' frame.

A mask loss gets (n, 1, h, w) logits and a :class:`MaskLossInputs`. The inputs
say where the logits live: :class:`ImageFrameInputs` for full-image logits
(CondInst: cell j covers input pixels [s*j, s*(j+1))), and the RoI frame of
``wsis_d2.modeling.roi_heads`` for Mask R-CNN's per-RoI logits. Losses only
call the methods below, so one loss serves every mask head.
"""
from typing import Dict, List, Tuple

import torch
import torch.nn.functional as F
from detectron2.structures import BitMasks, Instances, PolygonMasks

from .box_targets import box_masks
from .pairwise import color_similarity, rgb_to_lab, to_rgb, unit_feature_similarity, valid_edges


IMAGENET_RGB_MEAN = (123.675, 116.28, 103.53)
IMAGENET_RGB_STD = (58.395, 57.12, 57.375)


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

    def gt_masks(self) -> torch.Tensor:
        """(n, 1, h, w) GT masks at the logits' resolution, soft (area shares)."""
        raise NotImplementedError(f"{type(self).__name__} holds no GT masks")

    def pseudo_masks(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Teacher pseudo masks (n, 1, h, w) in [0, 1] at the logits' resolution and weights (n,)."""
        raise NotImplementedError(f"{type(self).__name__} holds no pseudo masks")

    def pseudo_valid(self) -> torch.Tensor:
        """(n, 1, h, w) share of each cell the pseudo labels speak about (SIM ignores uncertain pixels);
        all ones when the teacher-student model labels every pixel."""
        raise NotImplementedError(f"{type(self).__name__} holds no pseudo masks")

    def instance_values(self, field: str) -> torch.Tensor:
        """(n,) a per-instance scalar field of the GT ``Instances`` (e.g. ``gt_pasted``), as float."""
        raise NotImplementedError(f"{type(self).__name__} holds no per-instance fields")

    def points(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Each instance's labelled points: coords (n, P, 2) (x, y) normalised to the logits'
        extent ([0, 1] from the first cell's left/top edge to the last cell's right/bottom
        edge) and labels (n, P) (1 on the object, 0 off, -1 ignored)."""
        raise NotImplementedError(f"{type(self).__name__} holds no points")

    def color_graph(self, size: int, dilation: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Each instance's colour graph: similarity (n, K, h, w) and edge validity (n, K, h, w)."""
        raise NotImplementedError

    def similar_edges(self, size: int, dilation: int, thresh: float,
                      with_teacher_features: bool = False) -> torch.Tensor:
        """(n, K, h, w) bool: valid edges whose similarity is at least ``thresh``: the colour similarity,
        times the teacher's feature similarity (:func:`unit_feature_similarity`) with ``with_teacher_features``
        (frames whose colour graph is the logits' grid only)."""
        if with_teacher_features:
            raise NotImplementedError(f"{type(self).__name__} cannot weigh its edges by teacher features")
        similarity, valid = self.color_graph(size, dilation)
        return (similarity >= thresh) & valid

    def normalized_images(self, per_instance: bool = True) -> torch.Tensor:
        """Normalised input images at the logits' resolution: (n, 3, h, w) per instance,
        or (N, 3, h, w) per image (then :meth:`select` picks each instance's)."""
        raise NotImplementedError

    def features(self, per_instance: bool = True) -> torch.Tensor:
        """Deep features at the logits' resolution, per instance or per image (see above)."""
        raise NotImplementedError(f"{type(self).__name__} holds no deep features")

    def teacher_features(self, per_instance: bool = True) -> torch.Tensor:
        """An EMA teacher's mask features of the same images at the logits' resolution (SIM), per
        instance or per image."""
        raise NotImplementedError(f"{type(self).__name__} holds no teacher features (a teacher-student model "
                                  "such as SIM adds them to its student's inputs)")

    def select(self, per_image: torch.Tensor) -> torch.Tensor:
        """(N, ...) per-image tensor -> (n, ...) each instance's image's entry."""
        raise NotImplementedError

    def box_masks(self, h: int, w: int) -> torch.Tensor:
        """(n, h, w) share of each logit cell inside the instance's GT box."""
        return box_masks(self.boxes(), h, w, self.stride)

    def graph_logits(self, mask_logits: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """The logits on the colour graph's grid and (n, 1, H, W) bool: cell inside the GT box.

        Full-image logits are their own grid; a frame whose graph reaches beyond
        the logits (a RoI's context) extends them there.
        """
        return mask_logits, self.box_masks(*mask_logits.shape[-2:])[:, None] >= 0.5


class ImageFrameInputs(MaskLossInputs):
    """Full-image logits at ``stride`` on the padded batch (CondInst and its weak variants).

    Args:
        gt_instances: the batch's GT ``Instances`` (boxes always; masks/points
            only when the data view has them), in the padded input frame.
        im_inds, gt_inds: (n,) image of each instance and its index there.
        stride: stride of the logits relative to the padded input.
        raw_images: (N, 3, H, W) the padded batch before normalisation (0-255, ``image_format`` order).
        image_sizes: [(h, w)] of each image before padding.
        original_heights: each image's height on disk (before resizing).
        bottom_pixels_removed: original rows at the bottom left out of colour graphs.
        iteration: current training iteration (warm-ups).
        mask_feats: (N, C, H/t, W/t) the mask branch's features at stride ``mask_feat_stride`` t.
        teacher_feats: (N, C, H/t, W/t) a teacher's mask features of the same padded batch, or None.
    """

    def __init__(self, gt_instances: List[Instances], im_inds: torch.Tensor, gt_inds: torch.Tensor, stride: int,
                 raw_images: torch.Tensor = None, image_format: str = "BGR",
                 image_sizes: List[tuple] = (), original_heights: List[int] = (), bottom_pixels_removed: int = 0,
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
        self.bottom_pixels_removed = bottom_pixels_removed
        self.iteration = iteration
        self.padded_size = padded_size or (tuple(raw_images.shape[-2:]) if raw_images is not None else None)
        self.mask_feats = mask_feats
        self.mask_feat_stride = mask_feat_stride
        self.teacher_feats = teacher_feats
        self._graphs: Dict[tuple, Tuple[torch.Tensor, torch.Tensor]] = {}
        self._lab = None

    def __len__(self):
        return int(self.im_inds.numel())

    def _per_instance(self, per_image: List[torch.Tensor]) -> torch.Tensor:
        offsets = torch.tensor([0] + [len(x) for x in per_image], device=self.im_inds.device).cumsum(0)
        return torch.cat(per_image)[offsets[self.im_inds] + self.gt_inds]

    def boxes(self) -> torch.Tensor:
        if len(self) == 0:
            return torch.zeros((0, 4), device=self.im_inds.device)
        return self._per_instance([inst.gt_boxes.tensor for inst in self.gt_instances])

    def _pooled(self, field: str, missing: str) -> torch.Tensor:
        """Per-image (N_i, H_i, W_i) masks of ``field`` padded to the batch and area-averaged over
        s x s blocks (the block centre is exactly where the logit sits), per instance."""
        h, w = self.padded_size
        s = self.stride
        per_image = []
        for inst in self.gt_instances:
            if len(inst) == 0:  # detectron2 gives images without annotations no mask fields
                per_image.append(torch.zeros((0, 1, h // s, w // s), device=self.im_inds.device))
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

    def gt_masks(self) -> torch.Tensor:
        return self._pooled("gt_masks", "this mask loss needs GT masks, but the data view has none "
                                        "(use a box/point loss, or a dataset view with masks)")

    def pseudo_masks(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """Teacher pseudo masks at the logits' stride (n, 1, h, w) and their weights (n,)
        (fields ``gt_pseudo_masks`` / ``gt_pseudo_weights``, set by a teacher-student model)."""
        masks = self._pooled("gt_pseudo_masks", "this mask loss needs teacher pseudo masks, but the data has "
                                                "none (a teacher-student model such as BoxTeacher sets them)")
        return masks, self.instance_values("gt_pseudo_weights")

    def pseudo_valid(self) -> torch.Tensor:
        if not any(inst.has("gt_pseudo_valid") for inst in self.gt_instances):
            return torch.ones((len(self), 1) + tuple(d // self.stride for d in self.padded_size),
                              device=self.im_inds.device)
        return self._pooled("gt_pseudo_valid", "gt_pseudo_valid must be set on every image or none")

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
        for inst in self.gt_instances:
            if len(inst) == 0:
                coords.append(torch.zeros((0, 1, 2), device=device))
                labels.append(torch.zeros((0, 1), device=device))
                continue
            if not inst.has("gt_point_coords"):
                raise ValueError("this mask loss needs labelled points, but the data view has none "
                                 "(use a point view such as shapes_point, or a box/mask loss)")
            coords.append(inst.gt_point_coords)
            labels.append(inst.gt_point_labels)
        coords, labels = pad_points(coords, labels)
        h, w = self.padded_size
        return self._per_instance(coords) / coords[0].new_tensor([w, h]), self._per_instance(labels)

    def lab_cells(self) -> torch.Tensor:
        """(N, 3, H/s, W/s) each image average-pooled to the stride, in CIE LAB (computed once, on its device)."""
        if self._lab is None:
            s = self.stride
            rgb = to_rgb(self.raw_images, self.image_format) / 255.0
            self._lab = rgb_to_lab(F.avg_pool2d(rgb.clamp(0, 1), kernel_size=s, stride=s))
        return self._lab

    def valid_cells(self) -> torch.Tensor:
        """(N, 1, H/s, W/s) bool: cells of the image, not padding nor the bottom ``bottom_pixels_removed``
        original rows (rescaled)."""
        n, _, h, w = self.lab_cells().shape
        s = self.stride
        valid = torch.zeros((n, 1, h, w), dtype=torch.bool, device=self.raw_images.device)
        for i, ((img_h, img_w), orig_h) in enumerate(zip(self.image_sizes, self.original_heights)):
            removed = int(round(self.bottom_pixels_removed * img_h / float(orig_h)))
            valid[i, 0, : max(img_h - removed, 0) // s, : img_w // s] = True
        return valid

    def image_color_graph(self, size: int, dilation: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per image (computed once, shared by its instances): similarity and validity (N, K, H/s, W/s)
        of the edges between :meth:`valid_cells`."""
        key = (size, dilation)
        if key not in self._graphs:
            self._graphs[key] = (color_similarity(self.lab_cells(), size, dilation),
                                 valid_edges(self.valid_cells(), size, dilation))
        return self._graphs[key]

    def color_graph(self, size: int, dilation: int) -> Tuple[torch.Tensor, torch.Tensor]:
        similarity, valid = self.image_color_graph(size, dilation)
        return similarity[self.im_inds], valid[self.im_inds]

    def similar_edges(self, size: int, dilation: int, thresh: float,
                      with_teacher_features: bool = False) -> torch.Tensor:
        # threshold once per image, then copy 1-byte masks per instance (not float graphs)
        similarity, valid = self.image_color_graph(size, dilation)
        if with_teacher_features:
            similarity = similarity * unit_feature_similarity(self.teacher_features(per_instance=False), size,
                                                              dilation)
        return ((similarity >= thresh) & valid)[self.im_inds]

    def select(self, per_image: torch.Tensor) -> torch.Tensor:
        return per_image[self.im_inds]

    def normalized_images(self, per_instance: bool = True) -> torch.Tensor:
        """RGB standardised with ImageNet's mean/std (as the level-set reference), whatever
        ``MODEL.PIXEL_STD`` the detector uses, average-pooled to the stride."""
        s = self.stride
        rgb = to_rgb(self.raw_images, self.image_format)
        mean = rgb.new_tensor(IMAGENET_RGB_MEAN).view(1, 3, 1, 1)
        std = rgb.new_tensor(IMAGENET_RGB_STD).view(1, 3, 1, 1)
        images = F.avg_pool2d((rgb - mean) / std, kernel_size=s, stride=s)
        return self.select(images) if per_instance else images

    def _at_logit_stride(self, feats: torch.Tensor, per_instance: bool) -> torch.Tensor:
        """(N, C, H/t, W/t) mask-branch-stride maps -> the logits' stride, per instance or per image."""
        if self.mask_feat_stride != self.stride:
            feats = F.interpolate(feats, scale_factor=self.mask_feat_stride / self.stride, mode="bilinear",
                                  align_corners=False)
        return self.select(feats) if per_instance else feats

    def features(self, per_instance: bool = True) -> torch.Tensor:
        if self.mask_feats is None:
            return super().features(per_instance)
        return self._at_logit_stride(self.mask_feats, per_instance)

    def teacher_features(self, per_instance: bool = True) -> torch.Tensor:
        if self.teacher_feats is None:
            return super().teacher_features(per_instance)
        return self._at_logit_stride(self.teacher_feats, per_instance)

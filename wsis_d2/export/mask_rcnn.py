"""detectron2's Mask R-CNN (``GeneralizedRCNN``, and the box- and point-supervised mask heads of this
project, whose inference is detectron2's) traced through detectron2's own
:class:`~detectron2.export.TracingAdapter`, with the same outputs as :class:`CondInstExport`.

detectron2's inference code is written to trace: image padding, anchors, proposal top-k and the box
head's NMS read sizes and counts as traced values (``patch_builtin_len`` inside the adapter makes
``len(Instances)`` one too). Its deployment recipe traces ``inference(..., do_postprocess=False)``
and pastes the (D, 1, 28, 28) RoI masks into the image outside the graph; here the paste is inside it,
as detectron2's own ``_do_paste_mask`` over the whole image for all detections at once (its data-free
branch, ``skip_empty=False``: the same values as the eager CPU paste, which reads only a window around the
boxes, inside that window, and values below any threshold outside it).
"""
import torch
from detectron2.layers.mask_ops import _do_paste_mask
from detectron2.layers.wrappers import shapes_to_tensor
from detectron2.modeling import GeneralizedRCNN
from detectron2.structures import Boxes, Instances
from torch import nn

from .d2_tracing import TracingAdapter


def _inference(model: GeneralizedRCNN, inputs):
    """``model``'s detections on ``inputs`` (one image) as (boxes, scores, classes, mask_probs); see
    :class:`MaskRCNNExport`. ``GeneralizedRCNN.inference`` step by step, with one change: the mask head
    also sees a whole-image box, whose mask is dropped, so that it never runs on zero RoIs (ONNX Runtime
    cannot reshape an empty batch in GroupNorm: ``(0, C, h, w)`` to ``(0, G, -1)``)."""
    image = inputs[0]["image"]
    height, width = image.shape[-2], image.shape[-1]
    images = model.preprocess_image(inputs)
    features = model.backbone(images.tensor)
    proposals, _ = model.proposal_generator(images, features, None)
    det = model.roi_heads._forward_box(features, proposals)[0]
    # detector_postprocess at the input size: clip (the box head did) and drop empty boxes
    boxes = det.pred_boxes.tensor
    keep = ((boxes[:, 2] - boxes[:, 0]) > 0) & ((boxes[:, 3] - boxes[:, 1]) > 0)
    boxes, scores, classes = boxes[keep], det.scores[keep], det.pred_classes[keep]
    whole = torch.cat([boxes.new_zeros(2), shapes_to_tensor([width, height]).to(boxes)])  # traced sizes
    padded = Instances(det.image_size, pred_boxes=Boxes(torch.cat([boxes, whole[None]])),
                       pred_classes=torch.cat([classes, classes.new_zeros(1)]))
    masks = model.roi_heads.forward_with_given_boxes(features, [padded])[0].pred_masks[:-1]  # (D, 1, M, M)
    probs = _do_paste_mask(masks, boxes, height, width, skip_empty=False)
    return boxes, scores, classes, probs


class MaskRCNNExport(nn.Module):
    """One image in, detections out, as plain tensors (:class:`~wsis_d2.export.condinst.CondInstExport`'s
    contract: boxes (D, 4), scores (D,), classes (D,) int64, mask_probs (D, H, W) at the input's size).

    Args:
        model: a ``GeneralizedRCNN`` with a mask head, in eval mode.
        sample: (3, H, W) an input image to build the adapter's input schema (any size).
    """

    def __init__(self, model: GeneralizedRCNN, sample: torch.Tensor):
        super().__init__()
        if not getattr(model.roi_heads, "mask_on", False):
            raise ValueError("the Mask R-CNN model has no mask head (MODEL.MASK_ON is False); "
                             "wsis-d2 export writes instance-mask models")
        self.adapter = TracingAdapter(model, [{"image": sample}], _inference)

    def forward(self, image: torch.Tensor):
        """image: (3, H, W) float in ``INPUT.FORMAT``, 0-255, already resized to the test size."""
        return self.adapter(image)

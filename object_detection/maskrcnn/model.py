"""torchvision's Mask R-CNN R50-FPN, set to the MLPerf reference where torchvision differs.

Overrides (object_detection/README.md lists what remains different): 81 classes, frozen
BatchNorm and a frozen stem + res2 whatever weights are given, ResNet-50 weights read from a local
file (never downloaded; torchvision's or the reference's Caffe2 ones, `backbone.py`), the image
normalisation those weights expect, the reference's box-head initialisation, masks left at 28 x 28 in
inference (evaluation pastes them), SmoothL1 with beta=1 for the box-head loss (torchvision hard-codes
1/9), and box deltas that leave the RPN and box heads in
fp32, so that under autocast boxes are decoded, clipped and rescaled in fp32 (torchvision decodes
them in the heads' precision: steps of 1 px near 1024 px in fp16, 8 px in bf16).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.models.detection.roi_heads import RoIHeads, maskrcnn_loss
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes
from torchvision.ops.misc import FrozenBatchNorm2d

from object_detection.maskrcnn import backbone
from object_detection.maskrcnn.config import ModelOptions

# COCO's 80 categories + background; the dataset maps its category ids onto 1..80.
NUM_CLASSES = 81
# conv1 and layer1 (stem and res2) stay frozen: FREEZE_CONV_BODY_AT=2 in the reference.
TRAINABLE_BACKBONE_LAYERS = 3


def box_head_loss(
    class_logits: torch.Tensor,
    box_regression: torch.Tensor,
    labels: list[torch.Tensor],
    regression_targets: list[torch.Tensor],
    beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's fastrcnn_loss with the SmoothL1 beta as a parameter (reference: 1)."""
    labels_cat = torch.cat(labels, dim=0)
    targets = torch.cat(regression_targets, dim=0)
    classification = functional.cross_entropy(class_logits, labels_cat)
    positive = torch.where(labels_cat > 0)[0]
    per_class = box_regression.reshape(class_logits.shape[0], -1, 4)
    box = functional.smooth_l1_loss(per_class[positive, labels_cat[positive]], targets[positive],
                           beta=beta, reduction="sum")
    return classification, box / labels_cat.numel()


class ReferenceRoIHeads(RoIHeads):
    """RoI heads whose training loss is the reference's; inference is torchvision's."""

    def forward(
        self,
        features: dict[str, torch.Tensor],
        proposals: list[torch.Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, torch.Tensor]] | None = None,
    ) -> tuple[list[dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
        if not self.training or targets is None:
            return super().forward(features, proposals, image_shapes, targets)
        proposals, matched_idxs, labels, regression_targets = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        loss_classifier, loss_box_reg = box_head_loss(
            class_logits, box_regression, labels, regression_targets)
        positives = [torch.where(image_labels > 0)[0] for image_labels in labels]
        mask_proposals = [p[pos] for p, pos in zip(proposals, positives, strict=True)]
        pos_matched_idxs = [m[pos] for m, pos in zip(matched_idxs, positives, strict=True)]
        mask_features = self.mask_head(self.mask_roi_pool(features, mask_proposals, image_shapes))
        mask_logits = self.mask_predictor(mask_features)
        loss_mask = maskrcnn_loss(mask_logits, mask_proposals, [t["masks"] for t in targets],
                                  [t["labels"] for t in targets], pos_matched_idxs)
        return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg, "loss_mask": loss_mask}


class RoIMaskTransform(GeneralizedRCNNTransform):
    """torchvision's transform, except that inference leaves each mask at the mask head's 28 x 28:
    evaluation pastes them into the image off the device, in a pool (detections.py), instead of one
    by one on it, and moves 1.5 kB per detection instead of a full-image mask."""

    def postprocess(
        self,
        result: list[dict[str, torch.Tensor]],
        image_shapes: list[tuple[int, int]],
        original_image_sizes: list[tuple[int, int]],
    ) -> list[dict[str, torch.Tensor]]:
        if self.training:
            return result
        for prediction, size, original in zip(result, image_shapes, original_image_sizes, strict=True):
            prediction["boxes"] = resize_boxes(prediction["boxes"], size, original)
        return result


class ConvFrozenBN(nn.Module):
    """A convolution and the frozen BatchNorm after it as one convolution: the BatchNorm's scale multiplies
    the weight and its shift is the bias, both worked out in every forward from the BatchNorm's own buffers
    (a few hundred numbers), so a trainable weight gets the gradient it had before and a cast or a loaded
    checkpoint changes them as it changes the BatchNorm. The same function, with one pass over the
    activations fewer, and none kept for backward."""

    def __init__(self, conv: nn.Conv2d, norm: FrozenBatchNorm2d) -> None:
        super().__init__()
        self.conv = conv
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, n = self.conv, self.norm
        scale = n.weight * (n.running_var + n.eps).rsqrt()
        weight = c.weight * scale.reshape(-1, 1, 1, 1)
        return functional.conv2d(x, weight, n.bias - n.running_mean * scale, c.stride, c.padding, c.dilation,
                                 c.groups)


def fold_frozen_batchnorm(body: nn.Module) -> None:
    """Every conv + FrozenBatchNorm2d pair of a torchvision ResNet (stem, bottlenecks, downsamples)."""
    pairs = [(body, "conv1", "bn1")]
    for module in body.modules():
        if hasattr(module, "conv3"):  # a Bottleneck
            pairs += [(module, f"conv{k}", f"bn{k}") for k in (1, 2, 3)]
        if isinstance(module, nn.Sequential) and len(module) == 2 and isinstance(module[1], FrozenBatchNorm2d):
            pairs.append((module, "0", "1"))  # a downsample
    for parent, conv, norm in pairs:
        if isinstance(getattr(parent, norm), FrozenBatchNorm2d):
            setattr(parent, conv, ConvFrozenBN(getattr(parent, conv), getattr(parent, norm)))
            setattr(parent, norm, nn.Identity())


def _fp32_shapes(_module: nn.Module, args: tuple[Any, list[torch.Tensor]]) -> tuple[Any, list[torch.Tensor]]:
    """Forward pre-hook of the anchor generator, which takes its dtype from the feature maps: storage-free
    fp32 stand-ins of the same shapes make the anchors fp32 (bf16 cannot hold pixel positions above 256)."""
    images, features = args
    return images, [f.new_empty((), dtype=torch.float32).expand(f.shape) for f in features]


def _in_fp32(_module: nn.Module, _inputs: Any, output: Any) -> Any:
    """Forward hook: the module's tensors (also inside tuples and lists) come out in fp32."""
    if isinstance(output, torch.Tensor):
        return output.float()
    if isinstance(output, tuple | list):
        return type(output)(_in_fp32(_module, _inputs, part) for part in output)
    return output


def _init_box_head(model: MaskRCNN) -> None:
    """The reference's box head: FCs kaiming_uniform(a=1), cls N(0, 0.01), box N(0, 0.001)."""
    for fc in (model.roi_heads.box_head.fc6, model.roi_heads.box_head.fc7):
        nn.init.kaiming_uniform_(fc.weight, a=1)
        nn.init.zeros_(fc.bias)
    predictor = model.roi_heads.box_predictor
    nn.init.normal_(predictor.cls_score.weight, std=0.01)
    nn.init.normal_(predictor.bbox_pred.weight, std=0.001)
    for layer in (predictor.cls_score, predictor.bbox_pred):
        nn.init.zeros_(layer.bias)


def build_model(weights_path: Path, options: ModelOptions | None = None) -> MaskRCNN:
    options = options or ModelOptions()
    resnet = backbone.load(options.backbone, weights_path)
    model = MaskRCNN(
        _resnet_fpn_extractor(resnet.resnet, TRAINABLE_BACKBONE_LAYERS),
        num_classes=NUM_CLASSES,
        min_size=options.min_size,
        max_size=options.max_size,
        image_mean=list(resnet.image_mean),
        image_std=list(resnet.image_std),
        rpn_post_nms_top_n_train=options.rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=options.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=options.rpn_post_nms_top_n_test,
        box_detections_per_img=options.box_detections_per_img,
        box_score_thresh=options.box_score_thresh,
    )
    model.transform = RoIMaskTransform(options.min_size, options.max_size, list(resnet.image_mean),
                                       list(resnet.image_std))
    heads = model.roi_heads
    model.roi_heads = ReferenceRoIHeads(
        heads.box_roi_pool, heads.box_head, heads.box_predictor,
        fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=options.box_batch_size_per_image,
        positive_fraction=0.25,
        bbox_reg_weights=None, score_thresh=heads.score_thresh, nms_thresh=heads.nms_thresh,
        detections_per_img=heads.detections_per_img,
        mask_roi_pool=heads.mask_roi_pool, mask_head=heads.mask_head, mask_predictor=heads.mask_predictor,
    )
    _init_box_head(model)
    if options.fold_frozen_bn:
        fold_frozen_batchnorm(model.backbone.body)
    if options.channels_last:
        model.to(memory_format=torch.channels_last)
    if options.fp32_box_decoding:
        model.rpn.anchor_generator.register_forward_pre_hook(_fp32_shapes)
        model.rpn.head.register_forward_hook(_in_fp32)
        model.roi_heads.box_predictor.register_forward_hook(_in_fp32)
    return model

# python -m pytest tests/test_mask_rcnn_ops.py
"""framework/vision/ops against slow, obviously correct references: RoIAlign (values and gradients)
against a per-sample bilinear loop, NMS against the greedy loop, the box coder's round trip, anchors,
matching and sampling."""

from __future__ import annotations

import pytest
import torch

from framework.vision.ops import (
    AnchorGenerator,
    BoxCoder,
    Matcher,
    batched_nms,
    box_iou,
    multiscale_roi_align,
    nms,
    roi_align,
    sample_labels,
)
from framework.vision.ops.anchors import BACKGROUND, IGNORED


def _bilinear(feature, y, x):
    """One sample of a [H, W] map, the reference implementations' rules written out one case at a time."""
    height, width = feature.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return feature.new_zeros(())
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    return (hy * hx * feature[y_low, x_low] + hy * lx * feature[y_low, x_high]
            + ly * hx * feature[y_high, x_low] + ly * lx * feature[y_high, x_high])


def _reference_roi_align(features, rois, size, scale, ratio):
    out = features.new_zeros(len(rois), features.shape[1], size, size)
    for k, (index, x0, y0, x1, y1) in enumerate(rois.tolist()):
        x0, y0, x1, y1 = x0 * scale - 0.5, y0 * scale - 0.5, x1 * scale - 0.5, y1 * scale - 0.5
        bin_h, bin_w = (y1 - y0) / size, (x1 - x0) / size
        for c in range(features.shape[1]):
            for i in range(size):
                for j in range(size):
                    total = features.new_zeros(())
                    for a in range(ratio):
                        for b in range(ratio):
                            y = y0 + i * bin_h + (a + 0.5) * bin_h / ratio
                            x = x0 + j * bin_w + (b + 0.5) * bin_w / ratio
                            total = total + _bilinear(features[int(index), c], y, x)
                    out[k, c, i, j] = total / ratio ** 2
    return out


def _random_rois(generator, count, images, height, width, scale):
    """Boxes of every kind: inside, crossing the border, partly and wholly outside, tiny, and degenerate."""
    x = torch.rand(count, 2, generator=generator, dtype=torch.float64) * (width / scale + 8) - 4
    y = torch.rand(count, 2, generator=generator, dtype=torch.float64) * (height / scale + 8) - 4
    boxes = torch.stack([x.min(1).values, y.min(1).values, x.max(1).values, y.max(1).values], dim=1)
    boxes[0] = torch.tensor([2.0, 2.0, 2.0, 2.0])  # a point
    boxes[1] = torch.tensor([-30.0, -30.0, -20.0, -20.0])  # wholly outside
    index = torch.randint(0, images, (count, 1), generator=generator).double()
    return torch.cat([index, boxes], dim=1)


@pytest.mark.parametrize("scale, ratio, size", [(1.0, 2, 3), (0.5, 1, 2), (0.25, 3, 2)])
def test_roi_align_matches_the_per_sample_reference_in_values_and_gradients(scale, ratio, size):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(3, 2, 6, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    rois = _random_rois(generator, 12, 3, 6, 7, scale)
    ours = roi_align(features, rois, size, scale, ratio)
    reference = _reference_roi_align(features, rois, size, scale, ratio)
    assert torch.allclose(ours, reference, atol=1e-5, rtol=0)
    weights = torch.randn(ours.shape, generator=generator, dtype=torch.float64)
    (ours_grad,) = torch.autograd.grad((ours * weights).sum(), features)
    (reference_grad,) = torch.autograd.grad((reference * weights).sum(), features)
    assert torch.allclose(ours_grad, reference_grad, atol=1e-5, rtol=0)
    assert ours_grad.abs().sum() > 0


def test_roi_align_of_no_boxes_and_a_refused_adaptive_ratio():
    features = torch.randn(1, 4, 5, 5)
    assert roi_align(features, torch.zeros(0, 5), 7).shape == (0, 4, 7, 7)
    with pytest.raises(ValueError, match="sampling_ratio"):
        roi_align(features, torch.tensor([[0.0, 0, 0, 2, 2]]), 7, sampling_ratio=0)


def test_multiscale_roi_align_reads_each_box_on_the_level_its_size_selects():
    features = [torch.full((1, 1, 128 // 2 ** i, 128 // 2 ** i), 2.0 + i) for i in range(4)]  # 512 px
    rois = torch.tensor([[0.0, 0, 0, 20, 20], [0.0, 0, 0, 112, 112], [0.0, 0, 0, 224, 224], [0.0, 0, 0, 500, 500]])
    out = multiscale_roi_align(features, [4, 8, 16, 32], rois, output_size=2)
    # sqrt(area) 20 -> level 2 (clamped), 112 -> 3, 224 -> 4, 500 -> 5: Lin et al. 2017, Eq. 1
    assert torch.allclose(out[:, 0, 0, 0], torch.tensor([2.0, 3.0, 4.0, 5.0]))


def _greedy_nms(boxes, scores, threshold):
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    kept = []
    for i in order:
        if all(float(box_iou(boxes[i:i + 1], boxes[k:k + 1])) <= threshold for k in kept):
            kept.append(i)
    return kept


@pytest.mark.parametrize("seed", range(5))
def test_nms_keeps_what_the_greedy_loop_keeps(seed):
    generator = torch.Generator().manual_seed(seed)
    corner = torch.rand(120, 2, generator=generator) * 50
    boxes = torch.cat([corner, corner + 5 + torch.rand(120, 2, generator=generator) * 20], dim=1)
    scores = torch.rand(120, generator=generator).round(decimals=1)  # ties too
    for threshold in (0.3, 0.5, 0.7):
        assert nms(boxes, scores, threshold).tolist() == _greedy_nms(boxes, scores, threshold)


def test_batched_nms_never_suppresses_across_groups():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 10], [0.0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]
    assert nms(torch.zeros(0, 4), torch.zeros(0), 0.5).tolist() == []


def test_batched_nms_group_by_group_equals_the_joint_form():
    generator = torch.Generator().manual_seed(3)
    corner = torch.rand(300, 2, generator=generator) * 40
    boxes = torch.cat([corner, corner + 5 + torch.rand(300, 2, generator=generator) * 20], dim=1)
    scores, groups = torch.rand(300, generator=generator), torch.randint(0, 5, (300,), generator=generator)
    joint = batched_nms(boxes, scores, groups, 0.5)
    assert batched_nms(boxes, scores, groups, 0.5, max_joint=100).tolist() == joint.tolist()
    for group in range(5):  # each group's survivors are what NMS of that group alone keeps
        members = torch.nonzero(groups == group).view(-1)
        assert sorted(joint[groups[joint] == group].tolist()) == sorted(members[nms(boxes[members], scores[members], 0.5)].tolist())


def test_box_coder_round_trip():
    generator = torch.Generator().manual_seed(1)
    references = torch.rand(50, 2, generator=generator) * 100
    references = torch.cat([references, references + 1 + torch.rand(50, 2, generator=generator) * 60], dim=1)
    targets = torch.rand(50, 2, generator=generator) * 100
    targets = torch.cat([targets, targets + 1 + torch.rand(50, 2, generator=generator) * 60], dim=1)
    for weights in [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]:
        coder = BoxCoder(weights)
        deltas = coder.encode(targets, references)
        assert torch.allclose(coder.decode(deltas, references), targets, atol=1e-4)
        assert torch.allclose(coder.encode(references, references), torch.zeros(50, 4), atol=1e-6)
    # k boxes per reference (one per class) decode side by side
    two = BoxCoder().decode(torch.cat([deltas, torch.zeros_like(deltas)], dim=1), references)
    assert torch.allclose(two[:, 4:], references, atol=1e-4)


def test_anchors_are_centred_on_cells_with_their_size_and_ratio():
    anchors = AnchorGenerator([[32.0], [64.0]], [0.5, 1.0, 2.0])([(2, 3), (1, 1)], [4, 8])
    assert [len(a) for a in anchors] == [2 * 3 * 3, 3]
    first = anchors[0].view(2, 3, 3, 4)
    widths, heights = first[..., 2] - first[..., 0], first[..., 3] - first[..., 1]
    assert torch.allclose(widths * heights, torch.full_like(widths, 32.0 ** 2))
    assert torch.allclose(heights / widths, torch.tensor([0.5, 1.0, 2.0]).expand_as(widths))
    centre = (first[1, 2, :, :2] + first[1, 2, :, 2:]) / 2
    assert torch.allclose(centre, torch.tensor([8.0, 4.0]).expand_as(centre))  # cell (1, 2) at stride 4


def test_matcher_thresholds_and_low_quality_matches():
    truth = torch.tensor([[0.0, 0, 10, 10], [50.0, 50, 60, 60]])
    examples = torch.tensor([[0.0, 0, 10, 10], [0.0, 0, 10, 16], [0.0, 0, 10, 40], [100.0, 100, 110, 110],
                             [48.0, 48, 70, 70]])
    # IoUs with their best truth: 1.0, 0.625, 0.25, 0, 100/484
    assert Matcher(0.7, 0.3)(truth, examples).tolist() == [0, IGNORED, BACKGROUND, BACKGROUND, BACKGROUND]
    assert Matcher(0.7, 0.3, allow_low_quality=True)(truth, examples).tolist() == [0, IGNORED, BACKGROUND,
                                                                                  BACKGROUND, 1]
    assert Matcher(0.5, 0.5)(torch.zeros(0, 4), examples).tolist() == [BACKGROUND] * 5


def test_sample_labels_balances_and_caps():
    matches = torch.tensor([0] * 10 + [BACKGROUND] * 100 + [IGNORED] * 5)
    positive, negative = sample_labels(matches, 32, 0.25, torch.Generator().manual_seed(0))
    assert len(positive) == 8 and len(negative) == 24
    assert bool((matches[positive] >= 0).all()) and bool((matches[negative] == BACKGROUND).all())
    assert len(set(negative.tolist())) == 24
    positive, negative = sample_labels(matches[:12], 32, 0.25)
    assert len(positive) == 8 and len(negative) == 2

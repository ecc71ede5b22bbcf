# python -m pytest tests/test_vision_transforms.py
"""Transforms move the image, boxes, instance masks, panoptic and semantic maps together.

Property tests: random scenes of coloured rectangles (each object its own colour, later ones occluding
earlier ones) go through random chains of transforms, once as an instance sample (masks + boxes), once
as a panoptic sample (map), once with boxes only, once as a semantic map; afterwards every mask still
covers pixels of its object's colour, boxes are the masks' boxes, and the four variants agree.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from framework.vision import geometry as G
from framework.vision import transforms as T
from framework.vision.collate import Collate
from framework.vision.sample import IGNORE_LABEL, Sample, masks_to_boxes, panoptic_to_boxes
from framework.vision.targets import box_targets, mask_targets, semantic_target, to_cxcywh


def scene(generator: torch.Generator) -> dict[str, Sample]:
    """The same random scene as four samples: instance, panoptic, boxes only and semantic."""
    height, width = (int(v) for v in torch.randint(24, 64, (2,), generator=generator))
    count = int(torch.randint(1, 7, (), generator=generator))
    image = torch.zeros(3, height, width, dtype=torch.uint8)
    owner = torch.zeros(height, width, dtype=torch.int32)
    colours = torch.randint(40, 256, (count, 3), generator=generator, dtype=torch.uint8)
    for k in range(count):
        y0 = int(torch.randint(0, height - 4, (), generator=generator))
        x0 = int(torch.randint(0, width - 4, (), generator=generator))
        y1 = y0 + int(torch.randint(4, height - y0 + 1, (), generator=generator))
        x1 = x0 + int(torch.randint(4, width - x0 + 1, (), generator=generator))
        owner[y0:y1, x0:x1] = k + 1
        image[:, y0:y1, x0:x1] = colours[k].view(3, 1, 1)
    labels = torch.arange(count)  # each object its own label, so it can be followed through pruning
    masks = owner.unsqueeze(0) == torch.arange(1, count + 1, dtype=torch.int32).view(-1, 1, 1)
    keep = masks.flatten(1).any(1)
    labels, masks = labels[keep], masks[keep]
    panoptic = torch.zeros_like(owner)
    for k, mask in enumerate(masks):
        panoptic[mask] = k + 1
    iscrowd = torch.zeros(len(labels), dtype=torch.bool)
    boxes = masks_to_boxes(masks)
    base = Sample(image=image, image_id=1, orig_size=(height, width), labels=labels, iscrowd=iscrowd)
    semantic = torch.full((height, width), IGNORE_LABEL, dtype=torch.int64)
    for k, mask in enumerate(masks):
        semantic[mask] = labels[k]
    return {
        "instance": base.replace(masks=masks, boxes=boxes),
        "panoptic": base.replace(panoptic=panoptic),
        "boxes": base.replace(boxes=boxes),
        "semantic": base.replace(semantic=semantic),
        "colours": colours,
    }


def random_chain(generator: torch.Generator) -> list:
    steps = []
    for _ in range(int(torch.randint(1, 5, (), generator=generator))):
        kind = int(torch.randint(6, (), generator=generator))
        if kind == 0:
            steps.append(T.RandomHorizontalFlip(p=1.0))
        elif kind == 1:
            steps.append(T.LargeScaleJitter(size=int(torch.randint(16, 64, (), generator=generator))))
        elif kind == 2:
            steps.append(T.ResizeShortestEdge(short=int(torch.randint(8, 80, (), generator=generator)), max_size=96))
        elif kind == 3:
            steps.append(T.Resize(*(int(v) for v in torch.randint(8, 90, (2,), generator=generator))))
        elif kind == 4:
            steps.append("crop")
        else:
            steps.append("pad")
    return steps


def apply(step, sample: Sample, draws: list[float]) -> Sample:
    """One step; the random numbers for crop and pad come from `draws` so that every variant gets the
    same window."""
    height, width = sample.size
    if step == "crop":
        h, w = max(1, int(draws[0] * height)), max(1, int(draws[1] * width))
        return G.crop(sample, int(draws[2] * (height - h)), int(draws[3] * (width - w)), h, w)
    if step == "pad":
        return G.pad(sample, height + int(draws[0] * 10), width + int(draws[1] * 10))
    return step(sample, torch.Generator().manual_seed(int(draws[0] * 1e6)))


def zoom(step, size: tuple[int, int], after: tuple[int, int], draws: list[float]) -> torch.Tensor:
    """How much a step magnified the image, (vertically, horizontally): 1 for crop, pad and flip."""
    if isinstance(step, T.LargeScaleJitter):
        after = step.params(*size, torch.Generator().manual_seed(int(draws[0] * 1e6)))[:2]
    elif not isinstance(step, (T.Resize, T.ResizeShortestEdge)):
        after = size
    return torch.tensor(after, dtype=torch.float64) / torch.tensor(size, dtype=torch.float64)


def interior(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Mask pixels at least `radius` pixels inside it: away from edges, where bilinear resampling blends."""
    eroded = -F.max_pool2d(-mask[None, None].float(), 2 * radius + 1, stride=1, padding=radius)
    return eroded[0, 0] > 0.5


@pytest.mark.parametrize("seed", range(40))
def test_random_chains_keep_image_masks_boxes_and_maps_aligned(seed):
    generator = torch.Generator().manual_seed(seed)
    samples = scene(generator)
    colours = samples.pop("colours")
    slack = 0.0  # how far a mask may reach outside its geometrically moved box, in pixels
    scale = smallest = torch.ones(2, dtype=torch.float64)  # magnification now and at the blurriest point
    for step in random_chain(generator):
        draws = torch.rand(4, generator=generator).tolist()
        before = samples["boxes"].size
        samples = {name: apply(step, s, draws) for name, s in samples.items()}
        factor = zoom(step, before, samples["boxes"].size, draws)
        scale, slack = scale * factor, slack * max(1.0, float(factor.max())) + 0.5
        smallest = torch.minimum(smallest, scale)
    inst, pan, box, sem = samples["instance"], samples["panoptic"], samples["boxes"], samples["semantic"]
    height, width = inst.size
    for s in samples.values():
        assert s.size == (height, width) and s.image.shape == (3, height, width)

    # every mask still covers its object's colour in the image, away from the edges that resampling
    # blurred: two pixels at the smallest size of the chain, magnified since
    radius = int(2 * max(1.0, float((scale / smallest).max()))) + 2
    for label, mask in zip(inst.labels.tolist(), inst.masks):
        inner = interior(mask, radius)
        if inner.any():
            pixels = inst.image[:, inner].to(torch.int16)
            assert (pixels - colours[label].view(3, 1).to(torch.int16)).abs().max() <= 2

    # an instance sample's boxes are its masks' boxes
    assert torch.equal(inst.boxes, masks_to_boxes(inst.masks))

    # the panoptic map moved like the masks
    for label, mask in zip(inst.labels.tolist(), inst.masks):
        k = pan.labels.tolist().index(label)
        assert torch.equal(pan.panoptic == k + 1, mask)
    pan_masks, pan_labels = mask_targets(pan)
    assert torch.equal(pan_labels, inst.labels) and torch.equal(pan_masks, inst.masks)
    order = [pan.labels.tolist().index(label) for label in inst.labels.tolist()]
    assert torch.equal(panoptic_to_boxes(pan.panoptic, len(pan.labels))[order], masks_to_boxes(inst.masks))

    # boxes alone stay inside the image and around what is left of their objects; each nearest-sampling
    # step can put a mask's edge half a pixel outside its box, so allow a pixel per step and scale
    assert bool(((box.boxes >= 0) & (box.boxes <= torch.tensor([width, height, width, height]))).all())
    for label, mask_box in zip(inst.labels.tolist(), masks_to_boxes(inst.masks)):
        if label in box.labels.tolist():
            b = box.boxes[box.labels.tolist().index(label)]
            assert bool((b[:2] <= mask_box[:2] + slack).all() and (b[2:] >= mask_box[2:] - slack).all())

    # the semantic map moved like the panoptic map (void and padding ignored)
    assert torch.equal(semantic_target(sem), semantic_target(pan))
    if pan.valid is not None:
        assert not pan.image[:, ~pan.valid].any()  # padding is black before Normalize
        assert (semantic_target(pan)[~pan.valid] == IGNORE_LABEL).all()


@pytest.mark.parametrize("seed", range(20))
def test_resampled_mask_edges_sit_where_the_image_changes_colour(seed):
    """At the finest scale: after one resize or jitter, a pixel is in the mask exactly when the resampled
    image there is closer to the object's colour than to the background (the kernel around the pixel
    centre has most of its weight on the side of the edge that the centre is on). A half-pixel shift
    between the image and the maps fails this along every edge."""
    generator = torch.Generator().manual_seed(seed)
    height, width = (int(v) for v in torch.randint(10, 60, (2,), generator=generator))
    mask = torch.zeros(1, height, width, dtype=torch.bool)
    # a half-plane with one straight edge (at a corner the two edges' weights multiply: no 50% rule)
    if seed % 2:
        mask[0, :, int(torch.randint(1, width - 1, (), generator=generator)):] = True
    else:
        mask[0, int(torch.randint(1, height - 1, (), generator=generator)):, :] = True
    image = torch.where(mask, 200, 40).to(torch.uint8).expand(3, -1, -1).contiguous()
    sample = Sample(image=image, labels=torch.tensor([0]), iscrowd=torch.tensor([False]), masks=mask)
    size = tuple(int(v) for v in torch.randint(5, 120, (2,), generator=generator))
    for out in (G.resize(sample, *size), T.LargeScaleJitter(size=48)(sample, generator)):
        if len(out.labels) == 0:
            continue
        value = out.image[0].to(torch.float32)
        decided = (value - 120).abs() > 1.0  # pixel centres exactly on an edge blend 50/50: either way is right
        assert torch.equal(out.masks[0][decided], (value > 120)[decided])


def test_hflip_mirrors_boxes_and_maps():
    generator = torch.Generator().manual_seed(0)
    s = scene(generator)["instance"]
    flipped = G.hflip(s)
    assert torch.equal(flipped.masks, s.masks.flip(-1))
    assert torch.equal(flipped.boxes, masks_to_boxes(flipped.masks))
    assert torch.equal(G.hflip(flipped).boxes, s.boxes)


def test_large_scale_jitter_output_size_and_scale_range():
    sample = Sample(image=torch.zeros(3, 60, 80, dtype=torch.uint8), panoptic=torch.zeros(60, 80, dtype=torch.int32))
    jitter = T.LargeScaleJitter(size=64, min_scale=0.1, max_scale=2.0)
    sizes = [jitter(sample, torch.Generator().manual_seed(i)).size for i in range(200)]
    assert all(h <= 64 and w <= 64 for h, w in sizes)
    assert min(w for _, w in sizes) <= 10  # scale 0.1: the longer side is about 6 pixels
    assert sum((h, w) == (64, 64) for h, w in sizes) > 50  # scales above 1 fill the crop


def test_resize_shortest_edge_rule():
    sample = Sample(image=torch.zeros(3, 480, 640, dtype=torch.uint8))
    assert T.ResizeShortestEdge(800, 1333)(sample).size == (800, 1067)
    wide = Sample(image=torch.zeros(3, 200, 1000, dtype=torch.uint8))
    assert T.ResizeShortestEdge(800, 1333)(wide).size == (267, 1333)  # the longer side caps the scale


def test_train_preset_normalises_then_pads_to_the_crop_size():
    generator = torch.Generator().manual_seed(3)
    s = scene(generator)["panoptic"]
    out = T.train_transforms(size=48)(s, torch.Generator().manual_seed(1))
    assert out.size == (48, 48) and out.image.dtype == torch.float32
    assert out.valid is not None and not out.image[:, ~out.valid].any()  # padding is the mean colour, 0


def test_normalize_uses_imagenet_statistics():
    image = torch.full((3, 2, 2), 255, dtype=torch.uint8)
    out = G.normalize(Sample(image=image)).image
    expected = (1.0 - torch.tensor(G.IMAGENET_MEAN)) / torch.tensor(G.IMAGENET_STD)
    assert torch.allclose(out[:, 0, 0], expected, atol=1e-6)


def test_collate_pads_images_maps_and_masks_together():
    generator = torch.Generator().manual_seed(5)
    a, b = scene(generator)["instance"], scene(generator)["instance"]
    batch = Collate(size_divisor=32)([a, b])
    height, width = batch.images.shape[-2:]
    assert height % 32 == 0 and width % 32 == 0 and batch.pixel_mask.shape == (2, height, width)
    for original, target, mask in zip((a, b), batch.targets, batch.pixel_mask):
        h, w = original.size
        assert target.image is None and target.masks.shape[-2:] == (height, width)
        assert mask[:h, :w].all() and not mask[h:, :].any() and not mask[:, w:].any()
        assert torch.equal(target.masks[:, :h, :w], original.masks)


def test_targets_leave_out_crowd_and_void():
    panoptic = torch.tensor([[0, 1, 1], [2, 2, 3], [3, 3, 3]], dtype=torch.int32)
    sample = Sample(image=None, labels=torch.tensor([4, 0, 7]), iscrowd=torch.tensor([False, True, False]),
                    panoptic=panoptic)
    masks, labels = mask_targets(sample)
    assert labels.tolist() == [4, 7] and masks.shape == (2, 3, 3)
    semantic = semantic_target(sample)
    assert semantic.tolist() == [[IGNORE_LABEL, 4, 4], [IGNORE_LABEL, IGNORE_LABEL, 7], [7, 7, 7]]
    boxes, box_labels = box_targets(sample)
    assert box_labels.tolist() == [4, 7] and boxes.tolist() == [[1, 0, 3, 1], [0, 1, 3, 3]]
    assert to_cxcywh(boxes, 3, 3)[0].tolist() == pytest.approx([2 / 3, 1 / 6, 2 / 3, 1 / 3])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory needs a GPU")
def test_batches_can_be_pinned_for_a_gpu():
    sample = scene(torch.Generator().manual_seed(2))["panoptic"]
    batch = Collate()([sample, sample]).pin_memory()
    assert batch.images.is_pinned() and batch.targets[0].panoptic.is_pinned()


def test_mask_targets_of_many_segments_match_one_comparison_per_segment():
    """Many objects, some crowd and one cropped away: the masks are the map compared with each kept
    object's value, in object order (objects without pixels are found by their empty row)."""
    generator = torch.Generator().manual_seed(0)
    panoptic = torch.randint(0, 31, (40, 50), generator=generator, dtype=torch.int32)
    panoptic[panoptic == 7] = 0  # object 6 has no pixel left
    sample = Sample(image=None, labels=torch.arange(30) % 5, iscrowd=torch.arange(30) % 4 == 0, panoptic=panoptic)
    masks, labels = mask_targets(sample)
    kept = [k for k in range(30) if k % 4 and k != 6]
    assert torch.equal(masks, torch.stack([panoptic == k + 1 for k in kept]))
    assert labels.tolist() == [k % 5 for k in kept]


@pytest.mark.parametrize("seed", range(12))
def test_enlarging_resize_of_the_crop_window_equals_resize_then_crop(seed):
    """Enlarging resizes resample only the source window that the crop reads; the bytes must be those
    of resizing the whole image and cropping (uint8: equal; float: up to float32 rounding of the source
    coordinates), for channels-last images (as decoded) and contiguous ones."""
    generator = torch.Generator().manual_seed(seed)
    in_height, in_width = (int(v) for v in torch.randint(5, 70, (2,), generator=generator))
    pixels = torch.randint(0, 256, (in_height, in_width, 3), generator=generator, dtype=torch.uint8)
    images = {"channels last": pixels.permute(2, 0, 1), "contiguous": pixels.permute(2, 0, 1).contiguous(),
              "float": pixels.permute(2, 0, 1).to(torch.float32)}
    for _ in range(20):
        scale = 1.0 + 3.0 * float(torch.rand((), generator=generator))
        height = max(in_height, round(in_height * scale * (0.8 + 0.4 * float(torch.rand((), generator=generator)))))
        width = max(in_width, round(in_width * scale))
        crop_height = int(torch.randint(1, height + 1, (), generator=generator))
        crop_width = int(torch.randint(1, width + 1, (), generator=generator))
        top = int(torch.randint(0, height - crop_height + 1, (), generator=generator))
        left = int(torch.randint(0, width - crop_width + 1, (), generator=generator))
        for kind, image in images.items():
            whole = F.interpolate(image[None], size=(height, width), mode="bilinear", align_corners=False)[0]
            expected = whole[:, top : top + crop_height, left : left + crop_width]
            got = G._resize_image(image, height, width, top, left, crop_height, crop_width)
            assert got.shape == expected.shape and got.dtype == image.dtype
            if kind == "float":
                assert torch.allclose(got, expected, atol=0.05), kind
            else:
                assert torch.equal(got, expected), kind


def test_source_window_lines_up_with_the_whole_resize():
    for in_size, out_size, start, count in [(480, 1536, 300, 1024), (480, 1401, 200, 1024), (7, 20, 13, 5),
                                            (10, 10, 3, 4), (640, 2048, 1024, 1024), (3, 50, 0, 50), (26, 27, 0, 23)]:
        first, stop, begin, end = G._source_window(in_size, out_size, start, count)
        assert 0 <= first <= start and start + count <= stop <= out_size
        assert first * in_size == begin * out_size  # the window starts on a source pixel
        assert end - begin != stop - first or in_size == out_size  # torch would copy, not resample
        centres = (torch.arange(start, start + count, dtype=torch.float64) + 0.5) * in_size / out_size - 0.5
        assert begin <= max(0, int(centres[0].floor())) and end >= min(in_size, int(centres[-1].floor()) + 2)


def test_normalize_into_the_padded_canvas_equals_normalize_then_pad():
    generator = torch.Generator().manual_seed(4)
    sample = scene(generator)["panoptic"]
    fused = G.normalize(sample, pad_to=(70, 80))
    separate = G.pad(G.normalize(sample), 70, 80)
    assert torch.allclose(fused.image, separate.image, atol=1e-6)
    assert torch.equal(fused.panoptic, separate.panoptic) and torch.equal(fused.valid, separate.valid)
    height, width = sample.size
    assert not fused.image[:, height:].any() and not fused.image[:, :, width:].any()

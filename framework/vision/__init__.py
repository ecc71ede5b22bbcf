"""Building blocks of the vision tasks: datasets, transforms, metrics and the bundled synthetic data.

    sample.py       Sample (one image and all its targets), IGNORE_LABEL
    geometry.py     resize, crop, flip, pad, normalise a Sample (image and every target together)
    collate.py      Batch and Collate: samples padded to one size
    categories.py   Categories: dataset category ids <-> contiguous labels, things and stuff
    images.py       decoding images and panoptic PNGs, with errors that name the file
    coco.py         COCO 2017 instances and panoptic readers; prepare_coco checks the folder
    folders.py      ADE20K (semantic) and ImageNet-style class-per-folder readers
    shapes.py       drawing textured stuff regions and thing shapes for the synthetic data
    synthetic.py    a deterministic generator of COCO-format scenes, cached on first use
    transforms.py   geometry.py as (random) transforms, and the train / eval presets
    targets.py      Sample -> what a model's loss needs (binary masks, semantic maps, boxes)
    metrics/        accumulators: COCO box / mask AP, panoptic quality, semantic IoU, classification scores
    models.py       transformers models by hub id, local folder or random-init preset (`tiny`)
    adapters/       one per model family: Batch -> model inputs, outputs -> metric inputs
    lightning.py    VisionTaskModel: the training / evaluation loop every vision task shares
    task_data.py    bundled or real data roots, and the held-out split of real datasets

Nothing is imported here, so that importing one module does not import them all.
"""

"""Mask R-CNN (R50-FPN) for MLPerf Training, built on torchvision's detection models.

Modules, one job each: `model` (network and the reference's overrides), `data` (COCO reading and
filtering, batching), `transforms` (augmentation), `solver` (optimizer, schedule, rule-derived
hyper-parameters), `engine` (one training epoch), `evaluation` (COCO bbox/segm AP), `distributed`
(torchrun process group, seeds), `checkpoint` (resume), `train` (the entry point and MLPerf log).
"""

"""Mask R-CNN (R50-FPN) for MLPerf Training, built on torchvision's detection models.

Modules, one job each. Torch-free, so a dry run and the control plane read them at once: `schedule`
(the RCP table and the rules' schedules), `config` (a run's configuration and the hyper-parameters it
logs), `train` (the entry point: options, --dry-run). With torch: `training` (the run, its MLPerf log,
resume), `backbone` (torchvision's and the reference's Caffe2 ResNet-50 weights), `model` (network and
the reference's overrides), `data` (COCO reading and filtering, batching), `transforms` (augmentation),
`solver` (optimizer, per-group schedule), `engine` (one training epoch), `evaluation` (COCO bbox/segm
AP), `distributed` (torchrun process group, seeds), `checkpoint` (resume).
"""

"""Mask R-CNN (MLPerf Training object detection) on COCO 2017."""

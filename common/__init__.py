"""What two or more places share: one package per area (labels, registry, imagebuild, datasets, mlperf,
backendai), and atomic writes, which every area uses."""

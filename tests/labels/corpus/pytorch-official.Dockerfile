FROM pytorch/pytorch:2.3.1-cuda12.1-cudnn8-runtime
RUN apt-get update && apt-get install -y --no-install-recommends \
        git \
        # build tools for pycocotools
        build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN pip install pycocotools mlperf-logging
USER 1000:1000
WORKDIR /home/work

# NGC PyTorch base with the benchmark's dependencies.
ARG FROM_IMAGE_NAME=nvcr.io/nvidia/pytorch:24.05-py3
FROM ${FROM_IMAGE_NAME}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /workspace/object_detection
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt \
 && python -c "import torch; print(torch.__version__)"

LABEL org.opencontainers.image.title="maskrcnn" \
      ai.backend.kernelspec="1"
COPY . .
ENTRYPOINT ["/opt/nvidia/nvidia_entrypoint.sh"]
CMD ["bash"]

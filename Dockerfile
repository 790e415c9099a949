# The QuantumFlow image: the `quantumflow` command (predict flow, API, dashboards) on Python 3.11.
# docker-compose.yml builds it; alone: docker build -t quantumflow .
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1

# Torch's CPU build first, from PyTorch's CPU index as the Makefile does, so that installing the
# project finds torch satisfied instead of pulling PyPI's CUDA wheels (several GB)
ARG TORCH=2.13.0
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install torch==${TORCH} --index-url ${TORCH_INDEX}

# the project, with its two C passes compiled (the compiler is removed again in the same layer)
COPY . /tmp/quantumflow
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install /tmp/quantumflow \
    && apt-get purge -y --auto-remove gcc libc6-dev && rm -rf /var/lib/apt/lists/* /tmp/quantumflow \
    && python -c "import operators._book_kernel, dataflows._native_lines"

# An unprivileged user that owns the folders the stack mounts its volumes on (a new named volume
# takes the owner of the folder it is mounted on). /fitted (models, micro-price tables) is read-only.
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin quantumflow \
    && mkdir -p /data /recovery /fitted \
    && chown quantumflow: /data /recovery
USER quantumflow
WORKDIR /home/quantumflow
ENV QF_DATA_DIR=/data

# the API, the ESG dashboard
EXPOSE 8000 8502
CMD ["quantumflow", "--help"]

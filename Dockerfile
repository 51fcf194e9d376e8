# syntax=docker/dockerfile:1
#
# voicebot: Telethon userbot that transcribes voice messages with faster-whisper.
# Multi-stage build; see docs/docker.md for the why of every step and measured figures.
#
#   docker build -t voicebot:latest .                 CPU image (the last stage, "runtime")
#   docker build --target gpu -t voicebot:gpu .       + CUDA 12 cuBLAS from PyPI, same base
#   docker build --target remote -t voicebot:remote .  no local engine: transcribes on speech
#                                                     servers (WHISPER_ENGINE=openai|wyoming)
#   docker compose build / up -d --build              same, through docker-compose.yml
#
# Build arguments:
#   BAKE_MODEL=small      bake a faster-whisper model into /models (air-gapped hosts);
#                         empty (default): the model is downloaded on first start instead
#   FFMPEG=none           (default) no ffmpeg program: PyAV's bundled FFmpeg decodes every
#                         format Telegram clients send (docs/docker.md, "Decoding")
#   FFMPEG=debian         Debian's ffmpeg package as a fallback decoder (+~440 MB)
#   PYTHON_IMAGE          base image (pinned below, see docs/docker.md)
#
# Needs BuildKit (default since Docker 23; compose v2 always uses it) or buildah >= 1.29.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm
ARG APP_UID=10001
ARG APP_GID=10001


# ---------------------------------------------------------------------------
# builder: every runtime dependency as a wheel in /wheels. Thrown away.
# The compiler is here for a pin without a wheel for the build platform; the
# runtime stages never see it. The wheel layer only re-runs when
# requirements.txt (or the strip helper) changes, and the pip cache mount means
# only changed packages are downloaded again.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

# Keep downloaded .debs in the apt cache mount instead of deleting them.
RUN rm -f /etc/apt/apt.conf.d/docker-clean \
 && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache

# The Python headers come with the python image (/usr/local/include/python3.12);
# Debian's python3-dev would be the headers of Debian's own Python 3.11.
# DL3008 (pin apt versions) is ignored on purpose: Debian archives keep only the
# newest build of a package, so an exact =version pin breaks the build at the
# next security update. The base image tag pins the distribution release.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ libc6-dev make binutils

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_PROGRESS_BAR=off

WORKDIR /build
COPY requirements.txt ./

# strip_wheels.py removes DWARF debug sections from the wheels' shared
# libraries (ctranslate2 ships ~66 MB of them), see docs/docker.md.
RUN --mount=type=cache,target=/root/.cache/pip \
    --mount=type=bind,source=.ci/strip_wheels.py,target=/usr/local/bin/strip_wheels.py \
    pip wheel --requirement requirements.txt --wheel-dir /wheels \
 && python /usr/local/bin/strip_wheels.py /wheels


# ---------------------------------------------------------------------------
# cuda-wheels: the CUDA 12 libraries ctranslate2 loads, from PyPI, for the gpu
# target only (a CPU build never downloads them). Thrown away.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS cuda-wheels
COPY requirements-gpu.txt /tmp/
RUN --mount=type=cache,target=/root/.cache/pip \
    PIP_DISABLE_PIP_VERSION_CHECK=1 pip download --only-binary=:all: --no-deps \
        --requirement /tmp/requirements-gpu.txt --dest /wheels


# ---------------------------------------------------------------------------
# model: optional baked faster-whisper model (BAKE_MODEL=small etc.).
# With BAKE_MODEL empty this stage only creates an empty /models.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS model
ARG BAKE_MODEL=""

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HOME=/tmp/hf

# The same call the app makes (voicebot/engine/local/models.py resolves a model name with
# download_model(name, cache_dir=WHISPER_CACHE_DIR)), so the baked files are
# found at run time without network access, also with HF_HUB_OFFLINE=1.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    mkdir -p /models \
 && if [ -n "$BAKE_MODEL" ]; then \
        python -m venv /tmp/bake \
     && /tmp/bake/bin/pip install --no-cache-dir --no-compile --no-index --find-links=/wheels \
            -r /tmp/requirements.txt \
     && /tmp/bake/bin/python -c 'import sys; from faster_whisper.utils import download_model; print(download_model(sys.argv[1], cache_dir="/models"))' "$BAKE_MODEL" \
     && rm -rf /tmp/bake /tmp/hf; \
    fi


# ---------------------------------------------------------------------------
# common: what every image shares: user, directories, settings, the optional
# ffmpeg program. No compiler, no wheels, no pip cache.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS common
ARG FFMPEG=none
ARG APP_UID
ARG APP_GID

# PYTHONWARNINGS: pydub warns at import when no ffmpeg program is installed,
# which is the default here (PyAV decodes); the warning would end up in every
# command's stderr.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    PYTHONWARNINGS="ignore:Couldn't find ff:RuntimeWarning" \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    DATA_DIR=/data \
    TEMP_DIR=/tmp/voicebot

RUN rm -f /etc/apt/apt.conf.d/docker-clean \
 && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache

# DL3008 ignored: unpinned apt versions on purpose (reason in the builder stage).
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    case "$FFMPEG" in \
        none) ;; \
        debian) apt-get update && apt-get install -y --no-install-recommends ffmpeg ;; \
        *) echo "FFMPEG must be 'none' or 'debian', not '$FFMPEG'" >&2; exit 1 ;; \
    esac

RUN groupadd --system --gid "$APP_GID" voicebot \
 && useradd --system --uid "$APP_UID" --gid voicebot --home-dir /home/voicebot --create-home \
        --shell /usr/sbin/nologin voicebot \
 && install -d -o voicebot -g voicebot -m 0700 /data /tmp/voicebot

WORKDIR /app
ENTRYPOINT ["python", "-m", "voicebot"]
CMD ["run"]


# ---------------------------------------------------------------------------
# base: the local engine's dependencies, shared by the CPU and GPU images.
# No pip in the venv.
# ---------------------------------------------------------------------------
FROM common AS base
ARG APP_UID
ARG APP_GID

LABEL org.opencontainers.image.title="voicebot" \
      org.opencontainers.image.description="Telegram userbot that transcribes voice messages locally (faster-whisper)"

ENV WHISPER_CACHE_DIR=/models \
    HF_HOME=/models/hf \
    HF_HUB_DISABLE_TELEMETRY=1

RUN install -d -o voicebot -g voicebot -m 0755 /models /models/hf

# Dependencies: offline, from the builder's wheels (bind mount: the wheels never
# become a layer of this image; the venv gets no pip of its own). pip compiles
# the bytecode here. The base image's interpreter by its absolute path: the
# venv's bin/ comes first on PATH once it exists (ENV below), and the venv's
# python has no pip.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    /usr/local/bin/python -m venv --without-pip /opt/venv \
 && /usr/local/bin/python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        --no-index --only-binary=:all: --find-links=/wheels -r /tmp/requirements.txt

ENV PATH=/opt/venv/bin:$PATH

COPY --from=model --chown=${APP_UID}:${APP_GID} /models/ /models/
VOLUME ["/data", "/models"]

# A first start downloads the model: minutes before the first heartbeat.
HEALTHCHECK --interval=60s --timeout=15s --start-period=10m --retries=3 \
    CMD ["python", "-m", "voicebot", "health", "--max-age", "120"]


# ---------------------------------------------------------------------------
# gpu: base + cuBLAS for CUDA 12 (docker build --target gpu,
# docker-compose.gpu.yml). The NVIDIA Container Toolkit adds the driver.
# ---------------------------------------------------------------------------
FROM base AS gpu
ARG APP_UID
ARG APP_GID

# What the NVIDIA Container Toolkit reads (as in the nvidia/cuda images).
ENV WHISPER_DEVICE=cuda \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# The libraries land in the venv (nvidia/cublas/lib); ld.so.conf makes them
# findable by soname, which is how ctranslate2 dlopens libcublas.so.12.
RUN --mount=type=bind,from=cuda-wheels,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements-gpu.txt,target=/tmp/requirements-gpu.txt \
    /usr/local/bin/python -m pip --python /opt/venv/bin/python install --no-cache-dir --no-compile \
        --no-index --only-binary=:all: --find-links=/wheels -r /tmp/requirements-gpu.txt \
 && python -c 'import nvidia.cublas, os; print(os.path.join(nvidia.cublas.__path__[0], "lib"))' \
        > /etc/ld.so.conf.d/voicebot-cuda.conf \
 && ldconfig

# Application code last: a code-only change rebuilds only these layers.
COPY userbot.py ./
COPY voicebot/ ./voicebot/
RUN python -m compileall -q /app
USER ${APP_UID}:${APP_GID}


# ---------------------------------------------------------------------------
# remote: no local engine (no CTranslate2, onnxruntime, tokenizers, model cache):
# every voice is transcribed on the speech servers in WHISPER_URL (docs/scaling.md).
# Installs requirements-remote.txt, a subset of the builder's wheels.
# ---------------------------------------------------------------------------
FROM common AS remote
ARG APP_UID
ARG APP_GID

LABEL org.opencontainers.image.title="voicebot-remote" \
      org.opencontainers.image.description="Telegram userbot that transcribes voice messages on OpenAI-compatible or Wyoming speech servers"

ENV WHISPER_ENGINE=openai

RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements-remote.txt,target=/tmp/requirements-remote.txt \
    /usr/local/bin/python -m venv --without-pip /opt/venv \
 && /usr/local/bin/python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        --no-index --only-binary=:all: --find-links=/wheels -r /tmp/requirements-remote.txt

ENV PATH=/opt/venv/bin:$PATH
VOLUME ["/data"]

HEALTHCHECK --interval=60s --timeout=15s --start-period=2m --retries=3 \
    CMD ["python", "-m", "voicebot", "health", "--max-age", "120"]

# Application code last: a code-only change rebuilds only these layers.
COPY userbot.py ./
COPY voicebot/ ./voicebot/
RUN python -m compileall -q /app
USER ${APP_UID}:${APP_GID}


# ---------------------------------------------------------------------------
# runtime: the CPU image. Last stage, so `docker build .` without --target
# produces it.
# ---------------------------------------------------------------------------
FROM base AS runtime
ARG APP_UID
ARG APP_GID

# Application code last: a code-only change rebuilds only these layers.
COPY userbot.py ./
COPY voicebot/ ./voicebot/
RUN python -m compileall -q /app
USER ${APP_UID}:${APP_GID}

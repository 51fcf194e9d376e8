# syntax=docker/dockerfile:1
#
# voicebot: Telethon userbot that transcribes voice messages with faster-whisper.
# Multi-stage build; see docs/docker.md for the why of every step.
#
#   docker build -t voicebot:latest .                 CPU image (the last stage, "runtime")
#   docker build --target gpu -t voicebot:gpu .       CUDA 12 + cuDNN 9 image
#   docker build --target remote -t voicebot:remote .  no local engine: transcribes on speech
#                                                     servers (WHISPER_ENGINE=openai|wyoming)
#   docker compose build / up -d --build              same, through docker-compose.yml
#
# Build arguments:
#   BAKE_MODEL=small      bake a faster-whisper model into /models (air-gapped hosts);
#                         empty (default): the model is downloaded on first start instead
#   FFMPEG=minimal        static audio-only ffmpeg/ffprobe built in the "ffmpeg" stage (~8 MB);
#   FFMPEG=debian         Debian's full ffmpeg package instead (+~440 MB, every codec)
#   PYTHON_IMAGE / CUDA_IMAGE   base images (pinned below, see docs/docker.md)
#
# Needs BuildKit (default since Docker 23; compose v2 always uses it).

ARG PYTHON_IMAGE=python:3.12-slim-bookworm
# CUDA 12.8 is what the ctranslate2 4.8.x wheels are compiled with (their PTX is
# ISA 8.7 = CUDA 12.8, and they load libcublas.so.12); cuDNN 9 is what
# ctranslate2 >= 4.5 needs; Ubuntu 24.04 is the first CUDA base with Python 3.12
# in its own archive, so the wheels built below (cp312) install unchanged.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04


# ---------------------------------------------------------------------------
# toolchain: compilers shared by the two build stages below. Thrown away.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS toolchain

# Keep downloaded .debs in the apt cache mount instead of deleting them.
RUN rm -f /etc/apt/apt.conf.d/docker-clean \
 && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache

# The Python headers come with the python image (/usr/local/include/python3.12);
# Debian's python3-dev would be the headers of Debian's own Python 3.11.
# DL3008 (pin apt versions) is ignored on purpose: Debian/Ubuntu archives keep
# only the newest build of a package, so an exact =version pin breaks the build
# at the next security update. The base image tag pins the distribution release.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    apt-get update \
 && apt-get install -y --no-install-recommends gcc g++ libc6-dev make binutils


# ---------------------------------------------------------------------------
# builder: every runtime dependency as a wheel in /wheels. Thrown away.
# This layer only re-runs when requirements.txt (or the strip helper) changes,
# and the pip cache mount means only changed packages are downloaded again.
# ---------------------------------------------------------------------------
FROM toolchain AS builder

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
# ffmpeg: small static ffmpeg + ffprobe for pydub (audio decoding only),
# built from Debian's source package. Thrown away; only two binaries are kept.
# ---------------------------------------------------------------------------
FROM toolchain AS ffmpeg
ARG FFMPEG=minimal

RUN sed -i 's/^Types: deb$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources

# DL3008 ignored: unpinned apt versions on purpose (reason in the toolchain stage).
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    --mount=type=bind,source=.ci/build-ffmpeg.sh,target=/usr/local/bin/build-ffmpeg.sh \
    mkdir -p /opt/ffmpeg/bin \
 && if [ "$FFMPEG" = "minimal" ]; then \
        apt-get update \
     && apt-get install -y --no-install-recommends nasm dpkg-dev xz-utils \
     && sh /usr/local/bin/build-ffmpeg.sh /opt/ffmpeg; \
    fi


# ---------------------------------------------------------------------------
# model: optional baked faster-whisper model (BAKE_MODEL=small etc.).
# With BAKE_MODEL empty this stage only creates an empty /models.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS model
ARG BAKE_MODEL=""

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    HF_HOME=/tmp/hf

# The same call the app makes (voicebot/transcriber.py resolves a model name with
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
# gpu: CUDA runtime image (docker build --target gpu, docker-compose.gpu.yml).
# ---------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS gpu
ARG FFMPEG=minimal
ARG APP_UID=10001
ARG APP_GID=10001

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DATA_DIR=/data \
    TEMP_DIR=/tmp/voicebot \
    WHISPER_CACHE_DIR=/models \
    WHISPER_DEVICE=cuda \
    HF_HOME=/models/hf \
    HF_HUB_DISABLE_TELEMETRY=1

RUN rm -f /etc/apt/apt.conf.d/docker-clean \
 && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache

# DL3008 ignored: unpinned apt versions on purpose (reason in the toolchain stage).
# hadolint ignore=DL3008
RUN --mount=type=cache,id=apt-cache-ubuntu,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,id=apt-lib-ubuntu,target=/var/lib/apt,sharing=locked \
    apt-get update \
 && apt-get install -y --no-install-recommends python3.12 python3.12-venv ca-certificates \
 && if [ "$FFMPEG" = "debian" ]; then apt-get install -y --no-install-recommends ffmpeg; fi

RUN groupadd --system --gid "$APP_GID" voicebot \
 && useradd --system --uid "$APP_UID" --gid voicebot --home-dir /home/voicebot --create-home \
        --shell /usr/sbin/nologin voicebot \
 && install -d -o voicebot -g voicebot -m 0700 /data /tmp/voicebot \
 && install -d -o voicebot -g voicebot -m 0755 /models /models/hf

# Dependencies: offline, from the builder's wheels (bind mount: the wheels
# never become a layer of this image). pip compiles the bytecode here.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    python3.12 -m venv /opt/venv \
 && pip install --no-cache-dir --no-index --only-binary=:all: --find-links=/wheels \
        -r /tmp/requirements.txt

COPY --from=ffmpeg /opt/ffmpeg/bin/ /usr/local/bin/
COPY --from=model --chown=${APP_UID}:${APP_GID} /models/ /models/
VOLUME ["/data", "/models"]

# Application code last: a code-only change rebuilds only these layers.
WORKDIR /app
COPY userbot.py ./
COPY voicebot/ ./voicebot/
RUN python -m compileall -q /app

USER ${APP_UID}:${APP_GID}
HEALTHCHECK --interval=60s --timeout=15s --start-period=10m --retries=3 \
    CMD ["python", "-m", "voicebot", "health", "--max-age", "120"]
ENTRYPOINT ["python", "-m", "voicebot"]
CMD ["run"]


# ---------------------------------------------------------------------------
# remote: no local engine (no CTranslate2, onnxruntime, tokenizers, model cache):
# every voice is transcribed on the speech servers in WHISPER_URL (docs/scaling.md).
# Installs requirements-remote.txt, a subset of the builder's wheels.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS remote
ARG APP_UID=10001
ARG APP_GID=10001

LABEL org.opencontainers.image.title="voicebot-remote" \
      org.opencontainers.image.description="Telegram userbot that transcribes voice messages on OpenAI-compatible or Wyoming speech servers"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DATA_DIR=/data \
    TEMP_DIR=/tmp/voicebot \
    WHISPER_ENGINE=openai

RUN groupadd --system --gid "$APP_GID" voicebot \
 && useradd --system --uid "$APP_UID" --gid voicebot --home-dir /home/voicebot --create-home \
        --shell /usr/sbin/nologin voicebot \
 && install -d -o voicebot -g voicebot -m 0700 /data /tmp/voicebot

# /usr/local/bin/python: PATH already puts the venv first, and the venv's python has no pip.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements-remote.txt,target=/tmp/requirements-remote.txt \
    /usr/local/bin/python -m venv --without-pip /opt/venv \
 && /usr/local/bin/python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        --no-index --only-binary=:all: --find-links=/wheels -r /tmp/requirements-remote.txt

COPY --from=ffmpeg /opt/ffmpeg/bin/ /usr/local/bin/
VOLUME ["/data"]

WORKDIR /app
COPY userbot.py ./
COPY voicebot/ ./voicebot/
RUN python -m compileall -q /app

USER ${APP_UID}:${APP_GID}
HEALTHCHECK --interval=60s --timeout=15s --start-period=2m --retries=3 \
    CMD ["python", "-m", "voicebot", "health", "--max-age", "120"]
ENTRYPOINT ["python", "-m", "voicebot"]
CMD ["run"]


# ---------------------------------------------------------------------------
# runtime: the CPU image. Last stage, so `docker build .` without --target
# produces it. No compiler, no wheels, no pip cache, non-root.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG FFMPEG=minimal
ARG APP_UID=10001
ARG APP_GID=10001

LABEL org.opencontainers.image.title="voicebot" \
      org.opencontainers.image.description="Telegram userbot that transcribes voice messages locally (faster-whisper, CPU)"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/app \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DATA_DIR=/data \
    TEMP_DIR=/tmp/voicebot \
    WHISPER_CACHE_DIR=/models \
    HF_HOME=/models/hf \
    HF_HUB_DISABLE_TELEMETRY=1

RUN rm -f /etc/apt/apt.conf.d/docker-clean \
 && echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > /etc/apt/apt.conf.d/keep-cache

# Only with FFMPEG=debian: the default uses the static binaries from the
# ffmpeg stage and installs no system package at all.
# DL3008 ignored: unpinned apt versions on purpose (reason in the toolchain stage).
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt,sharing=locked \
    if [ "$FFMPEG" = "debian" ]; then \
        apt-get update && apt-get install -y --no-install-recommends ffmpeg; \
    fi

RUN groupadd --system --gid "$APP_GID" voicebot \
 && useradd --system --uid "$APP_UID" --gid voicebot --home-dir /home/voicebot --create-home \
        --shell /usr/sbin/nologin voicebot \
 && install -d -o voicebot -g voicebot -m 0700 /data /tmp/voicebot \
 && install -d -o voicebot -g voicebot -m 0755 /models /models/hf

# Dependencies: offline, from the builder's wheels (bind mount: the wheels
# never become a layer of this image; the venv gets no pip of its own).
# pip compiles the bytecode here.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \
    python -m venv --without-pip /opt/venv \
 && python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        --no-index --only-binary=:all: --find-links=/wheels -r /tmp/requirements.txt

COPY --from=ffmpeg /opt/ffmpeg/bin/ /usr/local/bin/
COPY --from=model --chown=${APP_UID}:${APP_GID} /models/ /models/
VOLUME ["/data", "/models"]

# Application code last: a code-only change rebuilds only these layers.
WORKDIR /app
COPY userbot.py ./
COPY voicebot/ ./voicebot/
RUN python -m compileall -q /app

USER ${APP_UID}:${APP_GID}
HEALTHCHECK --interval=60s --timeout=15s --start-period=10m --retries=3 \
    CMD ["python", "-m", "voicebot", "health", "--max-age", "120"]
ENTRYPOINT ["python", "-m", "voicebot"]
CMD ["run"]

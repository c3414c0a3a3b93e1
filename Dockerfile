# syntax=docker/dockerfile:1

# Container image for harvester-upgrade-bff.
#
# Two stages: the builder turns the source tree into wheels (the project's own
# plus every dependency), the runtime installs those wheels offline and holds
# nothing else: no source tree, no compiler, no pip cache.
#
# The base image is pinned by its full tag (Python patch release and Debian
# release). Release pipelines should additionally pin it by digest
# (python:3.11.13-slim-bookworm@sha256:...) once they resolve it.
#
# There is no HEALTHCHECK: Kubernetes ignores it. The liveness (/healthz) and
# readiness (/readyz) probes of the Helm chart (deploy/chart) do that job.

# BASE_IMAGE exists so the image can be built where no registry is reachable:
# the test suite builds it on a Debian bookworm root made with debootstrap
# (tests/support/image.py). Users keep the default.
ARG BASE_IMAGE=python:3.11.13-slim-bookworm

FROM ${BASE_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# .dockerignore allowlists what a wheel build needs (pyproject.toml, README.md,
# bff/, static/), so nothing else from the work tree reaches the image.
COPY . .
RUN pip wheel --wheel-dir /wheels .


FROM ${BASE_IMAGE} AS runtime

# The wheels are bind-mounted from the builder, so they never become a layer of
# this image; --no-index keeps the install from reaching out to PyPI.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels \
        /wheels/harvester_upgrade_bff-*.whl

# Set after the install, so pip still precompiles the byte code into the
# image; at run time the root filesystem is read-only and nothing is written.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BFF_HOST=0.0.0.0 \
    BFF_PORT=8080

# Declared after the install, so a new revision or version rebuilds only this
# metadata, never the installed layer. scripts/build-image passes the
# package's version, `git rev-parse HEAD` and the origin remote's URL.
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="harvester-upgrade-bff" \
      org.opencontainers.image.description="Turns Harvester upgrade dismissals into one label-only merge patch" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"

# 65532 is the conventional "nonroot" id; the chart's Deployment runs the
# pod with the same id and runAsNonRoot, which needs a numeric USER to verify.
USER 65532:65532

EXPOSE 8080

ENTRYPOINT ["harvester-upgrade-bff", "serve"]

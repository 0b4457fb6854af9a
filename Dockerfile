# Images of the platform, from one cargo workspace.
#
#   docker build --target service -t aml-service .         every service and the aml CLI (CPU libtorch)
#   docker build --target worker-gpu -t aml-worker-gpu .   inference-worker on CUDA libtorch
#   docker build --target trainer-gpu -t aml-trainer-gpu . trainer on CUDA libtorch
#   docker build --target worker-bundle --output type=local,dest=dist .
#                                                          dist/aml-worker.tar.gz for deploy/rented-gpu/on-start.sh
#
# libtorch comes from the torch wheel (deploy/docker/stage-torch.sh): the CPU wheel for the
# service image, a CUDA wheel for the GPU worker. Only the wheel's shared libraries reach the
# runtime images; Python does not. Where the PyTorch index does not answer, PyPI's wheel makes
# the CPU image too (TORCH_INDEX_URL=https://pypi.org/simple: its CUDA libraries are dropped).
# Where no image registry answers, scripts/local-base-images.sh makes RUST_IMAGE and
# RUNTIME_IMAGE from Debian's archive (scripts/compose-test.sh shows the build arguments).
# Written for the Dockerfile frontend built into BuildKit (no `# syntax=` line, which would
# pull one from a registry): DOCKER_BUILDKIT=1 docker build, or docker buildx build. Keep CUDA_BASE_IMAGE at the CUDA version of
# TORCH_GPU_INDEX_URL (cu128 -> 12.8): the base image's NVIDIA_REQUIRE_CUDA then makes the
# container runtime refuse a host whose driver is too old, instead of failing at the first job.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
ARG CUDA_BASE_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04

# ---------------------------------------------------------------------------------------------
# Toolchain: Rust, a Python venv that downloads the torch wheel, cmake for aws-lc-sys. protoc
# is vendored. tch finds libtorch through LIBTORCH (stage-torch lays it out there).
FROM ${RUST_IMAGE} AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv cmake binutils \
 && rm -rf /var/lib/apt/lists/*
ENV LIBTORCH=/opt/libtorch \
    CARGO_TERM_COLOR=never
COPY deploy/docker/stage-torch.sh /usr/local/bin/stage-torch
WORKDIR /src

# ---------------------------------------------------------------------------------------------
# CPU build: the six services and the CLI.
FROM toolchain AS builder
ARG TORCH_VERSION=2.11.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN stage-torch "$TORCH_INDEX_URL" "$TORCH_VERSION" cpu
COPY . .
RUN --mount=type=cache,id=aml-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=aml-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=aml-target-cpu,target=/src/target \
    cargo build --release --locked \
        -p aml -p aml-generator -p aml-validator -p aml-trainer-service \
        -p aml-judge-service -p aml-scheduler -p aml-inference-worker \
 && mkdir -p /out/bin \
 && for bin in aml generator validator trainer judge scheduler inference-worker; do \
        cp "target/release/$bin" /out/bin/; \
    done

# ---------------------------------------------------------------------------------------------
# GPU build: the inference worker and the trainer against a CUDA torch wheel (libtorch_cuda
# stays linked, see shared/aml-torch-link). No GPU is needed to build.
FROM toolchain AS builder-gpu
ARG TORCH_VERSION=2.11.0
ARG TORCH_GPU_INDEX_URL=https://download.pytorch.org/whl/cu128
RUN stage-torch "$TORCH_GPU_INDEX_URL" "$TORCH_VERSION" cuda
COPY . .
RUN --mount=type=cache,id=aml-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=aml-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=aml-target-gpu,target=/src/target \
    cargo build --release --locked -p aml-inference-worker -p aml-trainer-service \
 && mkdir -p /out/bin \
 && cp target/release/inference-worker target/release/trainer /out/bin/

# ---------------------------------------------------------------------------------------------
# The worker binary and its entrypoint as one tarball, for marketplaces that only run an
# on-start script on their own PyTorch image (deploy/rented-gpu/on-start.sh).
FROM builder-gpu AS worker-bundle-build
RUN mkdir -p /bundle/aml-worker \
 && cp /out/bin/inference-worker /bundle/aml-worker/ \
 && cp deploy/rented-gpu/entrypoint.sh /bundle/aml-worker/entrypoint.sh \
 && chmod 0755 /bundle/aml-worker/inference-worker /bundle/aml-worker/entrypoint.sh \
 && tar -C /bundle -czf /bundle/aml-worker.tar.gz aml-worker \
 && (cd /bundle && sha256sum aml-worker.tar.gz > aml-worker.tar.gz.sha256)

FROM scratch AS worker-bundle
COPY --from=worker-bundle-build /bundle/aml-worker.tar.gz /bundle/aml-worker.tar.gz.sha256 /

# ---------------------------------------------------------------------------------------------
# GPU inference worker. The entrypoint checks the environment and the GPU, then execs
# inference-worker (deploy/rented-gpu/entrypoint.sh).
FROM ${CUDA_BASE_IMAGE} AS worker-gpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/aml --shell /usr/sbin/nologin aml \
 && mkdir -p /var/lib/aml/model-cache \
 && chown -R 10001:10001 /var/lib/aml
COPY --from=builder-gpu /out/libtorch /opt/libtorch
COPY --from=builder-gpu /out/bin/inference-worker /usr/local/bin/inference-worker
COPY deploy/rented-gpu/entrypoint.sh /usr/local/bin/aml-worker-entrypoint
# No AML_* variable is set here: every AML_ variable the binary sees must be a configuration key.
ENV LD_LIBRARY_PATH=/opt/libtorch/torch/lib:/usr/local/nvidia/lib:/usr/local/nvidia/lib64
WORKDIR /var/lib/aml
USER 10001:10001
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/aml-worker-entrypoint"]

# ---------------------------------------------------------------------------------------------
# The trainer on a GPU node (LoRA fine-tuning of the 8B models); same layout as the service
# image: `docker run --gpus all aml-trainer-gpu` runs `trainer`.
FROM ${CUDA_BASE_IMAGE} AS trainer-gpu
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/aml --shell /usr/sbin/nologin aml \
 && mkdir -p /var/lib/aml \
 && chown -R 10001:10001 /var/lib/aml
COPY --from=builder-gpu /out/libtorch /opt/libtorch
COPY --from=builder-gpu /out/bin/trainer /usr/local/bin/trainer
ENV LD_LIBRARY_PATH=/opt/libtorch/torch/lib:/usr/local/nvidia/lib:/usr/local/nvidia/lib64
WORKDIR /var/lib/aml
USER 10001:10001
EXPOSE 9464
CMD ["trainer"]

# ---------------------------------------------------------------------------------------------
# Every service and the aml CLI on CPU libtorch; pick the binary with the command
# (compose `command:`, Kubernetes `command:`), e.g. `docker run aml-service scheduler`.
FROM ${RUNTIME_IMAGE} AS service
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libgomp1 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/aml --shell /usr/sbin/nologin aml \
 && mkdir -p /var/lib/aml/model-cache \
 && chown -R 10001:10001 /var/lib/aml
COPY --from=builder /out/libtorch /opt/libtorch
COPY --from=builder /out/bin/ /usr/local/bin/
ENV LD_LIBRARY_PATH=/opt/libtorch/torch/lib
WORKDIR /var/lib/aml
USER 10001:10001
EXPOSE 9464
CMD ["aml", "--help"]

#!/usr/bin/env bash
# Makes, from Debian's package archive and this machine's own Rust toolchain, the images that
# the Dockerfile and compose.yaml would otherwise pull from public registries, for machines
# that reach Debian's archive and the package registries but no image registry:
#
#   aml-local/debian:bookworm-slim   debootstrap --variant=minbase, with the host's extra
#                                    certificate authorities               (RUNTIME_IMAGE)
#   aml-local/rust:bookworm          that + gcc/make/git + the host's rustup toolchain (RUST_IMAGE)
#   aml-local/nats:bookworm          that + Debian's nats-server            (compose: nats)
#   aml-local/moto:bookworm          that + moto's S3 server from PyPI      (compose: minio)
#
# Idempotent: an image that exists is kept (FORCE=1 rebuilds). deploy/local-images/compose.yaml
# points compose at them. Needs root (debootstrap) and a running dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."
docker=${DOCKER:-docker}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have() { [ "${FORCE:-0}" != 1 ] && "$docker" image inspect "$1" >/dev/null 2>&1; }
say() { printf 'local-base-images: %s\n' "$*" >&2; }

if ! have aml-local/debian:$suite-slim; then
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
  say "debootstrap $suite (minbase) from $mirror"
  debootstrap --variant=minbase --include=ca-certificates "$suite" "$work/rootfs" "$mirror" \
    >"$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
  # The host's own certificate authorities (a TLS-inspecting proxy in front of the package
  # registries, say), so that pip and cargo in the images trust what the host trusts.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$work/rootfs/usr/local/share/ca-certificates/"
    chroot "$work/rootfs" update-ca-certificates >/dev/null
  fi
  # What the official slim image leaves out: documentation, man pages, apt's lists and caches.
  rm -rf "$work"/rootfs/usr/share/{doc,man,info}/* "$work"/rootfs/var/lib/apt/lists/* \
    "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/cache/apt/archives/*.deb
  echo "deb $mirror $suite main" >"$work/rootfs/etc/apt/sources.list"
  tar -C "$work/rootfs" -c . | "$docker" import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' - aml-local/debian:$suite-slim >/dev/null
  rm -rf "$work/rootfs"
fi

# Builds image $1 from the Dockerfile text on stdin, with $work/context as its context.
build() {
  local tag=$1
  mkdir -p "$work/context"
  cat >"$work/context/Dockerfile"
  say "building $tag"
  DOCKER_BUILDKIT=1 "$docker" build -q -t "$tag" "$work/context" >/dev/null
  rm -rf "$work/context"
}

if ! have aml-local/rust:$suite; then
  toolchain=$(dirname "$(dirname "$(rustup which rustc)")")
  mkdir -p "$work/context"
  say "copying the host's Rust toolchain $(basename "$toolchain")"
  cp -a "$toolchain" "$work/context/rust"
  rm -rf "$work"/context/rust/share/doc "$work"/context/rust/share/man
  build aml-local/rust:$suite <<DOCKERFILE
FROM aml-local/debian:$suite-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends ca-certificates curl git gcc g++ libc6-dev make pkg-config \\
 && rm -rf /var/lib/apt/lists/*
COPY rust /usr/local/rust
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin && cargo --version && rustc --version
DOCKERFILE
fi

if ! have aml-local/nats:$suite; then
  build aml-local/nats:$suite <<DOCKERFILE
FROM aml-local/debian:$suite-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends nats-server wget \\
 && rm -rf /var/lib/apt/lists/*
EXPOSE 4222 8222
ENTRYPOINT ["nats-server"]
DOCKERFILE
fi

if ! have aml-local/moto:$suite; then
  moto=$(grep '^moto' scripts/requirements-oracle.txt)
  build aml-local/moto:$suite <<DOCKERFILE
FROM aml-local/debian:$suite-slim
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3-venv curl \\
 && rm -rf /var/lib/apt/lists/* \\
 && python3 -m venv /opt/moto \\
 && /opt/moto/bin/pip install --no-cache-dir '$moto'
EXPOSE 5000
ENTRYPOINT ["/opt/moto/bin/moto_server", "-H", "0.0.0.0", "-p", "5000"]
DOCKERFILE
fi
"$docker" image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^aml-local/' >&2

#!/usr/bin/env bash
# Idempotent set-up for running lifeline's containers with podman on a Debian host
# without a registry: apt packages, podman-compose, a debootstrap base image.
#
#   deploy/test-setup.sh [VENV]      (as root; VENV defaults to .venv)
#
# Afterwards: CONTAINERS_CONF=deploy/containers.conf, image $LIFELINE_BASE
# (default localhost/lifeline-base:bookworm) exists, VENV/bin/podman-compose works.
# The debootstrap tarball is cached in /var/cache/lifeline, so a rerun takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${1:-.venv}
BASE=${LIFELINE_BASE:-localhost/lifeline-base:bookworm}
CACHE=${LIFELINE_CACHE:-/var/cache/lifeline}
TARBALL=$CACHE/bookworm-minbase-nft.tar
APT=(podman runc debootstrap uidmap catatonit)  # catatonit: the init of `init: true` (podman --init)
export DEBIAN_FRONTEND=noninteractive
export CONTAINERS_CONF=$PWD/deploy/containers.conf

missing=()
for p in "${APT[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "test-setup: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/podman-compose" ]; then
  "$VENV/bin/pip" install -q podman-compose
fi

if ! podman image exists "$BASE"; then
  if [ ! -s "$TARBALL" ]; then
    mkdir -p "$CACHE"
    root=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    echo "test-setup: debootstrap bookworm into $root"
    # python3 and nft in the base save the image build an apt round (the Dockerfile installs them if absent)
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,nftables bookworm "$root" >/dev/null
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -cf "$TARBALL.tmp" .
    mv "$TARBALL.tmp" "$TARBALL"
    rm -rf "$root"
  fi
  echo "test-setup: importing $TARBALL as $BASE"
  podman import - "$BASE" <"$TARBALL" >/dev/null
fi
echo "test-setup: ready (base image $BASE)"

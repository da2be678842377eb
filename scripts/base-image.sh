#!/usr/bin/env bash
# `make base-image`: the Debian bookworm bases the Dockerfiles build from where no public
# registry is reachable (BASE_IMAGE and BUILD_IMAGE, images/README.md). debootstrap makes a
# minbase root with Python 3.11, its venv module and the CA certificates; the root is kept as a
# tarball in the cache (a second run only imports it). The build base adds a C compiler and
# Python's headers (mypyc compiles the engine) and the host's CA bundle, which pip needs to
# reach PyPI from inside a build here; only the build stage sees it, not the final images.
set -euo pipefail

BUILDER=${BUILDER:?set by the Makefile}
CACHE=${IMAGE_CACHE:?set by the Makefile}
BASE=${BASE_IMAGE:?set by the Makefile}
BUILD=${BUILD_IMAGE:?set by the Makefile}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=python3,python3-venv,ca-certificates

# The sandbox refuses limits above its hard ones: containers get these instead.
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
case $BUILDER in
  docker) ISOLATION=() ;;
  podman) ISOLATION=(--isolation chroot) ;;
  *) ISOLATION=(--isolation chroot --layers) ;;  # buildah caches steps only when told
esac

mkdir -p "$CACHE"
rootfs="$CACHE/$SUITE-minbase-${PACKAGES//,/-}.tar"
if [ ! -f "$rootfs" ]; then
  root=$(mktemp -d -p "$CACHE")
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR"
  # The apt lists and the package cache only make the image larger.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
  tar -C "$root" --numeric-owner -cf "$rootfs.tmp" .
  mv "$rootfs.tmp" "$rootfs"
  rm -rf "$root"
fi

# Imported once: a new import is a new image, which would void every build's layer cache.
if [ -n "$("$BUILDER" images -q "$BASE" 2>/dev/null)" ]; then :
elif "$BUILDER" import "$rootfs" "$BASE" >/dev/null 2>&1; then :
else
  # buildah has no import: a scratch container with the root added, committed.
  container=$(buildah from scratch)
  buildah add --quiet "$container" "$rootfs" /
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd /bin/bash "$container"
  buildah commit --quiet --rm "$container" "$BASE" >/dev/null
fi

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
cp images/base/build.Containerfile "$context/Containerfile"
cp /etc/ssl/certs/ca-certificates.crt "$context/ca-bundle.crt"
"$BUILDER" build "${ISOLATION[@]}" "${ULIMITS[@]}" --build-arg BASE_IMAGE="$BASE" \
  -t "$BUILD" -f "$context/Containerfile" "$context"
echo "base-image: $BASE and $BUILD"

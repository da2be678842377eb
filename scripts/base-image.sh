#!/usr/bin/env bash
# `make base-image`: the Debian bookworm bases the Dockerfiles build from where no public
# registry is reachable (BASE_IMAGE, BUILD_IMAGE and NGINX_IMAGE, images/README.md).
# debootstrap makes minbase roots, kept as tarballs in the cache (a second run only imports
# them): one with Python 3.11, its venv module and the CA certificates, one with Debian's nginx.
# The build base adds a C compiler and Python's headers (mypyc compiles the engine) and the
# host's CA bundle, which pip needs to reach PyPI from inside a build here; only the build stage
# sees it, not the final images. The nginx base is set up as nginx-unprivileged is (uid 101,
# port 8080, its pid and temporary files in /tmp).
set -euo pipefail

BUILDER=${BUILDER:?set by the Makefile}
CACHE=${IMAGE_CACHE:?set by the Makefile}
BASE=${BASE_IMAGE:?set by the Makefile}
BUILD=${BUILD_IMAGE:?set by the Makefile}
NGINX=${NGINX_IMAGE:?set by the Makefile}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

# The sandbox refuses limits above its hard ones: containers get these instead.
ULIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
case $BUILDER in
  docker) ISOLATION=() ;;
  podman) ISOLATION=(--isolation chroot) ;;
  *) ISOLATION=(--isolation chroot --layers) ;;  # buildah caches steps only when told
esac

mkdir -p "$CACHE"

root_image() {  # packages (comma-separated), image: a minbase root with them, as `image`
  local packages=$1 image=$2 rootfs root container
  rootfs="$CACHE/$SUITE-minbase-${packages//,/-}.tar"
  if [ ! -f "$rootfs" ]; then
    root=$(mktemp -d -p "$CACHE")
    debootstrap --variant=minbase --include="$packages" "$SUITE" "$root" "$MIRROR"
    # The apt lists and the package cache only make the image larger.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb
    tar -C "$root" --numeric-owner -cf "$rootfs.tmp" .
    mv "$rootfs.tmp" "$rootfs"
    rm -rf "$root"
  fi
  # Imported once: a new import is a new image, which would void every build's layer cache.
  if [ -n "$("$BUILDER" images -q "$image" 2>/dev/null)" ]; then :
  elif "$BUILDER" import "$rootfs" "$image" >/dev/null 2>&1; then :
  else
    # buildah has no import: a scratch container with the root added, committed.
    container=$(buildah from scratch)
    buildah add --quiet "$container" "$rootfs" /
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --cmd /bin/bash "$container"
    buildah commit --quiet --rm "$container" "$image" >/dev/null
  fi
}

root_image python3,python3-venv,ca-certificates "$BASE"
nginx_root="${NGINX%:*}-root:${NGINX##*:}"
root_image nginx "$nginx_root"

context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
mkdir "$context/build" "$context/nginx"
cp images/base/build.Containerfile "$context/build/Containerfile"
cp /etc/ssl/certs/ca-certificates.crt "$context/build/ca-bundle.crt"
cp images/base/nginx.Containerfile "$context/nginx/Containerfile"
cp images/base/nginx.conf "$context/nginx/"
build() {  # image, context directory, then the build's own arguments
  "$BUILDER" build "${ISOLATION[@]}" "${ULIMITS[@]}" "${@:3}" -t "$1" -f "$2/Containerfile" "$2"
}
build "$BUILD" "$context/build" --build-arg BASE_IMAGE="$BASE"
build "$NGINX" "$context/nginx" --build-arg ROOT_IMAGE="$nginx_root"
echo "base-image: $BASE, $BUILD and $NGINX"

#!/usr/bin/env bash
# `make images`: every image, with docker where a Docker engine answers, else podman, else
# buildah (those two with chroot isolation, which this sandbox allows). BUILD_IMAGE and
# BASE_IMAGE (the Python bases) and NODE_IMAGE and NGINX_IMAGE (the frontend's) pass through as
# build arguments when set; unset, the Dockerfiles' public bases are used. Writes each image's
# size (as the builder reports it) and build time to $IMAGES_REPORT (JSON) when that is set.
# FRONTEND_OUT (a Next.js export, e.g. frontend/out from `make frontend`) replaces the frontend
# Dockerfile's Node stage, for machines where no Node image can be pulled.
# PAUSE_BINARY (the test cluster's, make cluster-bin) adds $IMAGE_REPOSITORY/pause:$PAUSE_TAG.
set -euo pipefail

REPOSITORY=${IMAGE_REPOSITORY:?set by the Makefile}
TAG=${IMAGE_TAG:?set by the Makefile}
COMPONENTS=(engine api ws dbproc mm operator)

if docker info >/dev/null 2>&1; then builder=(docker build)
elif command -v podman >/dev/null; then builder=(podman build --isolation chroot)
elif command -v buildah >/dev/null; then builder=(buildah build --isolation chroot --layers)
else
  echo "make images: no docker engine, podman or buildah here; no image was built" \
    "(make deps-containers installs buildah)." >&2
  exit 2
fi
# The sandbox refuses raising limits above its hard ones, and podman and buildah would.
[ "${builder[0]}" = docker ] || builder+=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
tool=${builder[0]}

args() {  # --build-arg NAME=value for each NAME given that is set
  for name in "$@"; do
    [ -z "${!name:-}" ] || printf -- '--build-arg\n%s=%s\n' "$name" "${!name}"
  done
}
mapfile -t python_args < <(args BUILD_IMAGE BASE_IMAGE)
mapfile -t frontend_args < <(args NODE_IMAGE NGINX_IMAGE)

report=()
build() {  # image, context, then the build's own arguments
  local image=$1 context=$2 start size ms
  shift 2
  start=$(date +%s%N)
  "${builder[@]}" "$@" -t "$image" "$context"
  size=$("$tool" images --format '{{.Size}}' "$image" | head -n 1)
  ms=$((($(date +%s%N) - start) / 1000000))
  report+=("$(printf '"%s": {"size": "%s", "build_s": %d.%03d}' "$image" "$size" \
    $((ms / 1000)) $((ms % 1000)))")
}

for component in "${COMPONENTS[@]}"; do
  build "$REPOSITORY/$component:$TAG" . -f images/python/Dockerfile --target "$component" \
    "${python_args[@]}"
done
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
if [ -n "${FRONTEND_OUT:-}" ]; then
  # Without the Makefile's stamp, which nginx would serve.
  cp -r "$FRONTEND_OUT" "$context/site"
  rm -f "$context/site/.built"
  frontend_args+=(--build-context "site=$context/site")
fi
if [ "$tool" = docker ] || [ -n "${NODE_IMAGE:-}${FRONTEND_OUT:-}" ]; then
  build "$REPOSITORY/frontend:$TAG" . -f images/frontend/Dockerfile "${frontend_args[@]}"
else
  echo "make images: no NODE_IMAGE or FRONTEND_OUT given and no Docker engine:" \
    "the frontend image is not built." >&2
fi
if [ -n "${PAUSE_BINARY:-}" ]; then
  mkdir "$context/pause"
  cp "$PAUSE_BINARY" images/pause/Containerfile "$context/pause/"
  build "$REPOSITORY/pause:${PAUSE_TAG:?with PAUSE_BINARY}" "$context/pause" \
    -f "$context/pause/Containerfile"
fi

if [ -n "${IMAGES_REPORT:-}" ]; then
  { echo "{"; (IFS=$'\n'; echo "${report[*]}" | sed '$!s/$/,/; s/^/  /'); echo "}"; } >"$IMAGES_REPORT"
fi
for line in "${report[@]}"; do echo "image $line"; done

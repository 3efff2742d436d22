#!/bin/sh
# Pin the scoring image's base by digest: resolve TAG's current digest and write
# "ARG BASE_IMAGE=TAG@sha256:..." into the Dockerfile.
#
#   packaging/scoring/pin-base-image.sh [TAG] [DOCKERFILE]
#   ACR=neurohsiacr packaging/scoring/pin-base-image.sh      # no Docker: resolve through Azure Container Registry
#
# TAG defaults to the tag in the Dockerfile (python:3.11-slim-bookworm). The digest comes from
# the first tool found: docker buildx imagetools, crane, skopeo; or, with ACR set, `az acr
# import` (copies the image into your registry) and `az acr repository show`. Rerun it to take
# a patched base image, rebuild, test, then commit the changed Dockerfile.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
DOCKERFILE=${2:-$HERE/Dockerfile}
CURRENT=$(sed -n 's/^ARG BASE_IMAGE=//p' "$DOCKERFILE")
TAG=${1:-${CURRENT%@*}}
case "$TAG" in
    *[!A-Za-z0-9._:/-]*|"") echo "pin-base-image: bad image tag '$TAG'" >&2; exit 2 ;;
esac
DIGEST=""
if [ -n "${ACR:-}" ]; then
    az acr import --name "$ACR" --source "docker.io/library/$TAG" --image "base/$TAG" --force >/dev/null
    DIGEST=$(az acr repository show --name "$ACR" --image "base/$TAG" --query digest --output tsv)
elif command -v docker >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1; then
    DIGEST=$(docker buildx imagetools inspect "$TAG" | awk '$1 == "Digest:" {print $2; exit}')
elif command -v crane >/dev/null 2>&1; then
    DIGEST=$(crane digest "$TAG")
elif command -v skopeo >/dev/null 2>&1; then
    DIGEST=$(skopeo inspect --format '{{.Digest}}' "docker://docker.io/library/$TAG")
else
    echo "pin-base-image: needs docker buildx, crane or skopeo, or ACR=<registry> with the az CLI" >&2
    exit 2
fi
if ! printf '%s' "$DIGEST" | grep -Eq '^sha256:[0-9a-f]{64}$'; then
    echo "pin-base-image: could not resolve a digest for $TAG (got '$DIGEST')" >&2
    exit 1
fi
sed -i.bak "s|^ARG BASE_IMAGE=.*|ARG BASE_IMAGE=$TAG@$DIGEST|" "$DOCKERFILE"
sed -i.bak '/^# NOT YET PINNED/,/^# before the first production build/d' "$DOCKERFILE"
rm -f "$DOCKERFILE.bak"
echo "pinned $TAG@$DIGEST in $DOCKERFILE"

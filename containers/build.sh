#!/usr/bin/env bash
# Build the halo-survey images from the repository root, with podman (default) or docker.
#
#   containers/build.sh [cpu] [gpu] [train]        (default: cpu)
#
# Images: $TAG:cpu (Dockerfile.cpu, target survey), $TAG:train (Dockerfile.cpu, target
# training), $TAG:gpu (Dockerfile.gpu). Labels carry the package version, git revision and
# build date. Environment:
#   ENGINE      podman (default) or docker
#   TAG         image name without the tag (default localhost/halo-survey)
#   BASE_IMAGE  the base of all three (default: the Dockerfiles' debian:bookworm-slim)
#   PULL        podman's --pull policy, e.g. never for a local base (default: podman's)
#   HOST_CA     podman only: a CA bundle that pip inside the build trusts (mounted with a
#               pip.conf naming it), for a host whose HTTPS goes through a TLS proxy
set -euo pipefail
cd "$(dirname "$0")/.."

engine=${ENGINE:-podman}
tag=${TAG:-localhost/halo-survey}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# The labels that change with every build go on the command line as well as in build
# arguments: a builder may take a LABEL layer from its cache when only an argument changed
# (podman 4.3 does), and would then keep the revision of an earlier build. podman puts
# command-line labels on the Dockerfile's last stage only; the training target, not last,
# rebuilds its labels itself (Dockerfile.cpu).
common=(--build-arg "VERSION=$version" --build-arg "REVISION=$revision" --build-arg "CREATED=$created"
        --label "org.opencontainers.image.version=$version"
        --label "org.opencontainers.image.revision=$revision"
        --label "org.opencontainers.image.created=$created")
[ -n "${BASE_IMAGE:-}" ] && common+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
if [ "$engine" = podman ]; then
    # Docker's image format: OCI images have no HEALTHCHECK, and podman would drop it.
    common+=(--format docker)
    [ -n "${PULL:-}" ] && common+=("--pull=$PULL")
    if [ -n "${HOST_CA:-}" ]; then
        pipconf=$(mktemp)
        trap 'rm -f "$pipconf"' EXIT
        printf '[global]\ncert = /run/host-ca.crt\n' > "$pipconf"
        chmod 0644 "$pipconf"
        common+=(--volume "$HOST_CA:/run/host-ca.crt:ro" --volume "$pipconf:/etc/pip.conf:ro")
    fi
fi

build() {  # FLAVOUR DOCKERFILE [TARGET]
    local started=$SECONDS target=()
    [ -n "${3:-}" ] && target=(--target "$3")
    "$engine" build "${common[@]}" "${target[@]}" -f "containers/$2" -t "$tag:$1" .
    echo "built $tag:$1 in $((SECONDS - started)) s"
}

for flavour in "${@:-cpu}"; do
    case "$flavour" in
        cpu) build cpu Dockerfile.cpu survey ;;
        train) build train Dockerfile.cpu training ;;
        gpu) build gpu Dockerfile.gpu ;;
        *) echo "usage: $0 [cpu] [gpu] [train]" >&2; exit 2 ;;
    esac
done

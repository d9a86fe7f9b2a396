#!/usr/bin/env bash
# Validates Flowmeter's deployment files offline: Dockerfile, docker-compose.yml, the kustomize base and
# overlays, Dapr objects, Kubernetes schemas, the project's schemas of CRD kinds, Helm values, Argo CD
# Applications, and their cross-references (deploy/tests/validate_deploy.py lists every check).
#
#   scripts/validate-deploy.sh               validate the repository
#   scripts/validate-deploy.sh --self-test   prove that every validator rejects a deliberately broken copy
#                                            (pytest deploy/tests), then validate the repository
#   scripts/validate-deploy.sh --only compose,kustomize   run some checks (names: --list)
#
# Installs what is missing (as root; idempotent), and fails with a message when it cannot, never skips:
#   docker-compose      Debian package docker-compose (Compose file format of docker-compose 1.29)
#   kubectl 1.20        Debian package kubernetes-client, unpacked into .tools/kubernetes-client (not
#                       installed: its /usr/bin/kubectl would clash with another kubectl package), because its
#                       embedded kustomize v2.0.3 is the oldest one the manifests must build with
#   Python packages     deploy/tests/requirements.txt in the virtual environment .tools/deploy-venv (PyPI)
# When another kubectl with a modern kustomize is on PATH (as Argo CD has), the overlays are also built with
# it and compared.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
tools="$root/.tools"

self_test=false
pass=()
while [ $# -gt 0 ]; do
    case "$1" in
        --self-test) self_test=true ;;
        --only) pass+=(--only "$2"); shift ;;
        --only=*) pass+=("$1") ;;
        --list) pass+=(--list) ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

die() { echo "error: $*" >&2; exit 1; }
as_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 is missing and installing it needs root: $2"
}
apt_updated=false
apt_update() {
    $apt_updated || { apt-get update -qq || die "apt-get update failed"; apt_updated=true; }
}
export DEBIAN_FRONTEND=noninteractive

# docker-compose (v1, Debian).
if ! dpkg-query -W -f='${Status}' docker-compose 2>/dev/null | grep -q "install ok installed"; then
    as_root docker-compose "apt-get install docker-compose"
    echo "installing docker-compose (Debian)" >&2
    apt_update
    apt-get install -y -qq --no-install-recommends docker-compose >/dev/null || die "apt-get install docker-compose failed"
fi
compose=/usr/bin/docker-compose
"$compose" version >/dev/null 2>&1 || die "$compose does not run"

# Debian's kubectl 1.20 (kustomize v2.0.3), unpacked.
kubectl="$tools/kubernetes-client/usr/bin/kubectl"
if [ ! -x "$kubectl" ]; then
    echo "unpacking Debian's kubernetes-client (kubectl 1.20) into $tools/kubernetes-client" >&2
    deb=$(mktemp -d)
    chmod 755 "$deb"
    if ! (cd "$deb" && apt-get download kubernetes-client >/dev/null 2>&1); then
        as_root kubernetes-client "apt-get update (to download the kubernetes-client package)"
        apt_update
        (cd "$deb" && apt-get download kubernetes-client >/dev/null) || die "apt-get download kubernetes-client failed"
    fi
    mkdir -p "$tools/kubernetes-client"
    dpkg -x "$deb"/kubernetes-client_*.deb "$tools/kubernetes-client" || die "dpkg -x kubernetes-client failed"
    rm -rf "$deb"
fi
"$kubectl" version --client 2>/dev/null | grep -q 'GitVersion:"v1.20' || die "$kubectl is not kubectl 1.20"

# A modern kubectl on PATH (not Debian's 1.20): build the overlays with it too.
modern=()
if k=$(command -v kubectl 2>/dev/null) && [ "$k" != "$kubectl" ] \
    && "$k" version --client 2>/dev/null | grep -Eq 'Kustomize Version: v[4-9]'; then
    modern=(--modern-kubectl "$k")
fi

# Python packages in a virtual environment.
venv="$tools/deploy-venv"
req="$root/deploy/tests/requirements.txt"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$req" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing deploy/tests/requirements.txt into $venv" >&2
    command -v python3 >/dev/null || die "python3 is missing (apt-get install python3)"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        # Debian's python3 needs python3-venv for `python3 -m venv`.
        rm -rf "$venv"
        as_root python3-venv "apt-get install python3-venv"
        apt_update
        apt-get install -y -qq --no-install-recommends python3-venv >/dev/null || die "apt-get install python3-venv failed"
        python3 -m venv "$venv" || die "python3 -m venv $venv failed"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" || die "pip install -r $req failed"
    echo "$want" >"$stamp"
fi

export FLOWMETER_DEPLOY_KUBECTL="$kubectl"
export FLOWMETER_DEPLOY_DOCKER_COMPOSE="$compose"

if $self_test; then
    echo "== self-test: every validator rejects a broken copy (pytest deploy/tests)"
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/deploy/tests" || die "self-test failed"
fi

echo "== validate the deployment files"
exec "$venv/bin/python" "$root/deploy/tests/validate_deploy.py" --root "$root" --kubectl "$kubectl" \
    --docker-compose "$compose" "${modern[@]}" "${pass[@]}"

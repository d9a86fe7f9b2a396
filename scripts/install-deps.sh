#!/usr/bin/env bash
# Installs the Debian packages Flowmeter builds and tests with, if any is missing.
# Needs root (or sudo) only when something has to be installed.
set -euo pipefail

packages=(librdkafka-dev libpq-dev postgresql kcat pkg-config python3-yaml)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "error: missing packages ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
fi
# Do not let the postgresql package create and start a default cluster on port 5432: tests start their own.
$sudo mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = off" | $sudo tee /etc/postgresql-common/createcluster.d/flowmeter.conf >/dev/null
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# promtool (and prometheus) from Debian's prometheus package, unpacked into .tools/ without installing the
# package (its web-UI dependencies are large and its service is not wanted).
tools="$(cd "$(dirname "$0")/.." && pwd)/.tools"
if [ ! -x "$tools/prometheus/usr/bin/promtool" ]; then
    echo "unpacking prometheus/promtool into $tools" >&2
    mkdir -p "$tools/deb"
    (cd "$tools/deb" && rm -f prometheus_*.deb && apt-get download prometheus >/dev/null 2>&1) || {
        [ "$(id -u)" -eq 0 ] && apt-get update -qq && (cd "$tools/deb" && apt-get download prometheus >/dev/null)
    }
    dpkg -x "$tools"/deb/prometheus_*.deb "$tools/prometheus"
    rm -rf "$tools/deb"
fi

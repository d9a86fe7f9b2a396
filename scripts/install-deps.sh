#!/usr/bin/env bash
# Installs the Debian packages Flowmeter builds and tests with, if any is missing.
# Needs root (or sudo) only when something has to be installed.
set -euo pipefail

packages=(librdkafka-dev libpq-dev postgresql kcat pkg-config)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

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

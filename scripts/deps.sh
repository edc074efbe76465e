#!/usr/bin/env bash
# Installs what hfmount needs to build and test, from Debian's packages (and
# the npm registry for the JavaScript client check). Safe to run again:
# installs only what is missing.
set -euo pipefail

pkgs=(cmake make gcc pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev
      libcjson-dev libxxhash-dev python3 python3-pytest python3-numpy
      nginx jq attr man-db clang libclang-rt-14-dev curl procps
      python3-torch)
[ "${HFM_DEPS_BENCH:-0}" = 1 ] && pkgs+=(aria2 httpdirfs rclone fio)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

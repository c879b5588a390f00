#!/usr/bin/env bash
# Prints the path of systemd-analyze, which checks deploy/sqlite-backend.service,
# first installing Debian's systemd package when it is missing (needs root and
# apt-get; fails without them). Progress goes to stderr so that stdout is only
# the path.
set -euo pipefail

if ! command -v systemd-analyze >/dev/null; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "systemd-analyze is missing, and installing it needs root and apt-get" >&2
    exit 1
  fi
  echo "installing systemd for systemd-analyze (once)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  # Another apt-get may hold the lock for a while; wait for it instead of failing.
  apt-get -qq -o DPkg::Lock::Timeout=600 update >&2
  apt-get -qq -y -o DPkg::Lock::Timeout=600 install --no-install-recommends systemd >/dev/null
fi
systemd-analyze --version | head -1 >&2
command -v systemd-analyze

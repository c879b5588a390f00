#!/usr/bin/env bash
# Prints the path of the Chromium the browser tests drive, first installing
# Debian's package when it is missing (needs root). Progress goes to stderr so
# that stdout is only the path.
set -euo pipefail
chromium=/usr/bin/chromium

if [ ! -x "$chromium" ]; then
  echo "installing chromium (once)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  # Another apt-get may hold the lock for a while; wait for it instead of failing.
  apt-get -qq -o DPkg::Lock::Timeout=600 update >&2
  apt-get -qq -y -o DPkg::Lock::Timeout=600 install chromium >/dev/null
fi
"$chromium" --version >&2
echo "$chromium"

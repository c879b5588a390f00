#!/usr/bin/env bash
# Prints the path of the ChromeDriver the studio's browser test drives Chromium
# with, first installing Debian's package (matching its chromium) when it is
# missing (needs root). Progress goes to stderr so that stdout is only the path.
set -euo pipefail
driver=/usr/bin/chromedriver

if [ ! -x "$driver" ]; then
  echo "installing chromium-driver (once)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  # Another apt-get may hold the lock for a while; wait for it instead of failing.
  apt-get -qq -o DPkg::Lock::Timeout=600 update >&2
  apt-get -qq -y -o DPkg::Lock::Timeout=600 install chromium chromium-driver >/dev/null
fi
"$driver" --version >&2
echo "$driver"

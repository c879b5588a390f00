#!/usr/bin/env bash
# Prints the path of the Chromium the browser tests drive (`chromium.sh`), or of
# the ChromeDriver that drives it over WebDriver (`chromium.sh driver`), first
# installing Debian's packages when missing (needs root). Progress goes to
# stderr so that stdout is only the path.
set -euo pipefail
case "${1:-browser}" in
  browser) path=/usr/bin/chromium packages=(chromium) ;;
  driver) path=/usr/bin/chromedriver packages=(chromium chromium-driver) ;;
  *) echo "usage: $0 [browser|driver]" >&2; exit 2 ;;
esac

if [ ! -x "$path" ]; then
  echo "installing ${packages[*]} (once)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  # Another apt-get may hold the lock for a while; wait for it instead of failing.
  apt-get -qq -o DPkg::Lock::Timeout=600 update >&2
  apt-get -qq -y -o DPkg::Lock::Timeout=600 install "${packages[@]}" >/dev/null
fi
"$path" --version >&2
echo "$path"

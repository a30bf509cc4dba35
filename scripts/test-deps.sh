#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages: a real redis-server
# (the Redis account and delivery stores are tested against one, and against
# a three-master Redis Cluster joined with redis-cli), openssl (which makes the
# certificates of its TLS test) and Debian's chromium with a font (the status
# page is tested in a real headless browser; playwright-core drives it, and
# its own browser downloads are not used). Runs before `npm test`.
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
# redis-cli joins the test Redis Cluster (redis-server depends on it on Debian; other builds may lack it).
command -v redis-cli >/dev/null || missing+=(redis-tools)
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Without any font, headless Chromium draws every letter as a box in screenshots.
find /usr/share/fonts -name '*.[ot]tf' -print -quit 2>/dev/null | grep -q . || missing+=(fonts-dejavu-core)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "npm test needs ${missing[*]}, and installing it needs root: run 'sudo apt-get install ${missing[*]}' (Debian/Ubuntu) or your system's equivalent, then run npm test again." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "npm test needs ${missing[*]}; this system has no apt-get: install it with your package manager, then run npm test again." >&2
  exit 1
fi
echo "installing ${missing[*]} for the tests (apt-get update, then apt-get install; chromium alone is about 100 MB)..." >&2
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed ${missing[*]}" >&2

#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages: a real redis-server
# (the Redis account store is tested against one). Runs before `npm test`.
set -euo pipefail
command -v redis-server >/dev/null && exit 0
if [ "$(id -u)" -eq 0 ]; then
  sudo=""
elif sudo -n true 2>/dev/null; then
  sudo="sudo"
else
  echo "npm test needs redis-server, and installing it needs root: run 'sudo apt-get install redis-server' (Debian/Ubuntu) or your system's equivalent, then run npm test again." >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "npm test needs redis-server; this system has no apt-get: install Redis with your package manager, then run npm test again." >&2
  exit 1
fi
echo "installing redis-server for the tests (apt-get)..." >&2
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null

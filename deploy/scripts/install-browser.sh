#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard browser tests when it is missing and we can.
set -u
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium not installed (needs root and apt-get); browser tests will be skipped"
  exit 0
fi
echo "installing chromium for the dashboard browser tests..."
(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
  || echo "chromium could not be installed; browser tests will be skipped"

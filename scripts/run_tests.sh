#!/usr/bin/env bash
# Install the pinned requirements and the test tools, then run the whole test suite.
# The browser tests (tests/test_web_pages.py) need Chromium and chromedriver: missing ones are installed
# with apt-get when this runs as root or with password-less sudo; then those tests must run, not skip.
set -euo pipefail
cd "$(dirname "$0")/.."

have_browser() {
  command -v chromedriver >/dev/null || return 1
  local name
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    command -v "$name" >/dev/null && return 0
  done
  return 1
}

install_browser() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || return 1
    sudo="sudo -n"
  fi
  command -v apt-get >/dev/null || return 1
  $sudo apt-get update -q &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
}

python=$(bash scripts/install.sh --test)
have_browser || install_browser >&2 || true
if have_browser; then
  export REQUIRE_BROWSER=1
else
  echo "warning: no Chromium/chromedriver and apt-get could not install them; the browser tests will be skipped" >&2
fi
"$python" -m pytest -q tests "$@"

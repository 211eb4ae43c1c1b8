#!/usr/bin/env bash
# Installs the browser the console's end-to-end test drives (tests/integration/test_console.py):
# Debian's chromium package, /usr/bin/chromium. Playwright's Python client drives it; nothing
# downloads a browser build. Needs root or sudo and Debian's package mirror; if that fails the
# script says so and exits non-zero, so the test run fails with the reason instead of skipping.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
  echo "[browser] chromium present: $(/usr/bin/chromium --version 2>/dev/null | head -1)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "[browser] need root or sudo to apt-get install chromium" >&2; exit 1; }
  SUDO="sudo"
fi
echo "[browser] installing Debian's chromium (apt-get) ..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq chromium >/dev/null \
  || { echo "[browser] apt-get install chromium failed: the console test cannot run" >&2; exit 1; }
echo "[browser] ok: $(/usr/bin/chromium --version 2>/dev/null | head -1)"

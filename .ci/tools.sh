#!/usr/bin/env bash
# Installs the tools the test suite uses that Go does not provide, into
# .tools/bin of the project: promtool (from Debian's prometheus package,
# unpacked, not installed). Idempotent; prints where the tools are.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin
if [ ! -x .tools/bin/promtool ]; then
  if command -v promtool >/dev/null 2>&1; then
    ln -sf "$(command -v promtool)" .tools/bin/promtool
  elif command -v apt-get >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1) || { echo "tools: could not download prometheus (promtool); deploy checks will be skipped" >&2; rm -rf "$tmp"; exit 0; }
    dpkg -x "$tmp"/prometheus_*.deb "$tmp/x"
    cp "$tmp/x/usr/bin/promtool" .tools/bin/promtool
    rm -rf "$tmp"
  fi
fi
[ -x .tools/bin/promtool ] && echo "tools: $(.tools/bin/promtool --version 2>&1 | head -1)"
exit 0

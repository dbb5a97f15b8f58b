#!/usr/bin/env bash
# Installs the tools the test suite and the benchmarks use that Go does not
# provide, into .tools of the project: promtool (from Debian's prometheus
# package) and wrk (Debian's wrk with its libluajit, run through a wrapper
# that points it at .tools/lib). Packages are unpacked, not installed: no
# root needed. Idempotent; prints where the tools are.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .tools/bin
if [ ! -x .tools/bin/promtool ]; then
  if command -v promtool >/dev/null 2>&1; then
    ln -sf "$(command -v promtool)" .tools/bin/promtool
  elif command -v apt-get >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
      dpkg -x "$tmp"/prometheus_*.deb "$tmp/x"
      cp "$tmp/x/usr/bin/promtool" .tools/bin/promtool
    else
      echo "tools: could not download prometheus (promtool); deploy checks will be skipped" >&2
    fi
    rm -rf "$tmp"
  fi
fi
if [ ! -x .tools/bin/wrk ]; then
  if command -v wrk >/dev/null 2>&1; then
    ln -sf "$(command -v wrk)" .tools/bin/wrk
  elif command -v apt-get >/dev/null 2>&1; then
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download wrk libluajit-5.1-2 >/dev/null 2>&1); then
      for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/x"; done
      mkdir -p .tools/lib
      cp "$tmp/x/usr/bin/wrk" .tools/lib/wrk
      cp -P "$tmp"/x/usr/lib/*/libluajit-5.1.so.2* .tools/lib/
      printf '#!/bin/sh\nd=$(dirname "$(readlink -f "$0")")/../lib\nLD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$d/wrk" "$@"\n' > .tools/bin/wrk
      chmod +x .tools/bin/wrk
    else
      echo "tools: could not download wrk; the benchmarks fall back to their Go load generator" >&2
    fi
    rm -rf "$tmp"
  fi
fi
[ -x .tools/bin/wrk ] && echo "tools: $(.tools/bin/wrk --version 2>&1 | head -1)"
[ -x .tools/bin/promtool ] && echo "tools: $(.tools/bin/promtool --version 2>&1 | head -1)"
exit 0

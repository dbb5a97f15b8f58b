#!/usr/bin/env bash
# Debian packages shala needs beyond Go and PostgreSQL: chromium (renders
# School Leaving Certificate PDFs), poppler-utils (pdftoppm, pdftotext) and
# zbar-tools (zbarimg) for the PDF round-trip tests. Idempotent: installs only what is missing, and
# only as root; otherwise it says what to install and carries on (shala runs
# without them; certificate PDFs wait, retried, until Chromium is there).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
command -v zbarimg >/dev/null 2>&1 || need+=(zbar-tools)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
else
  echo "deps: missing ${need[*]} (sudo apt-get install -y ${need[*]}); certificate PDFs need chromium" >&2
fi

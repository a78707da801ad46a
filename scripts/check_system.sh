#!/usr/bin/env bash
# Checks what a fresh Debian machine must have before `make run`; names the missing package, never a traceback.
missing=()
python3 -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null \
  || { echo "Python 3.11 is required (Debian 12: apt-get install python3 python3-venv)."; exit 1; }
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v msgfmt >/dev/null || missing+=(gettext)
# python-magic needs the C library to tell file types apart by their bytes.
{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -q 'libmagic\.so\.1' || missing+=(libmagic1)
# WeasyPrint (the PDF of signed reports) loads Pango and HarfBuzz at run time and draws with DejaVu Sans.
for lib in libpango-1.0.so.0:libpango-1.0-0 libpangoft2-1.0.so.0:libpangoft2-1.0-0 \
           libharfbuzz-subset.so.0:libharfbuzz-subset0; do
  { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -qF "${lib%%:*}" || missing+=("${lib##*:}")
done
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  echo "Missing Debian packages: ${missing[*]}"
  echo "Install them with: sudo apt-get install -y ${missing[*]}"
  exit 1
fi

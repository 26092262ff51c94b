#!/usr/bin/env bash
# Debian packages some probes and tests use: WordNet 3.0 data (synonym perturbations), Chromium (the report's
# browser test) and the en_US.UTF-8 locale (hatesonar). `make setup` (so `make test` and `make demo`) and
# .ci/run call this; it does nothing when all are present. Installing needs root and apt-get: otherwise it
# names what is missing and how to install it, and goes on.
set -uo pipefail
has_locale() { locale -a 2>/dev/null | grep -qi '^en_US.utf-\?8$'; }
need=()
[ -f "${LMCRITIC_WORDNET_DIR:-/usr/share/wordnet}/data.noun" ] || need+=(wordnet-base)
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
has_locale || need+=(locales)
[ ${#need[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
  echo "lmcritic: missing system packages: ${need[*]} — as root: apt-get install ${need[*]}" \
       "(and enable en_US.UTF-8 in /etc/locale.gen, then locale-gen); the probes and tests that use them fail" >&2
  exit 0
fi
install() { apt-get install -y -q "${need[@]}" >/dev/null 2>&1; }
install || { apt-get update -q >/dev/null 2>&1 && install; } || echo "lmcritic: apt-get install ${need[*]} failed" >&2
if ! has_locale; then
  sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen 2>/dev/null && locale-gen >/dev/null 2>&1 || true
fi
exit 0

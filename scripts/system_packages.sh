#!/usr/bin/env bash
# The Debian/Ubuntu packages the test suite needs, installed when missing (as root, or with sudo that needs no
# password); otherwise one line says what to run. `make test` calls this first, so a fresh machine with only
# python3 and make needs nothing else.
#   chromium + chromium-driver   the page's browser tests (headless)
#   espeak-ng                    synthetic voices for diarization conversations
#   strace                       the privacy test (no outbound connection)
#   make                         the packaging tests run the Makefile's targets
#   npm                          installs the JavaScript clients tests/clients/test_clients.py drives (and the Node.js 22
#                                they need, from npm's `node` package: Debian's own nodejs may be older)
set -euo pipefail

PACKAGES=(chromium chromium-driver espeak-ng strace make npm)
COMMANDS=(chromium chromedriver espeak-ng strace make npm)  # the command each package provides

missing=()
for i in "${!PACKAGES[@]}"; do
    command -v "${COMMANDS[$i]}" >/dev/null 2>&1 || missing+=("${PACKAGES[$i]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

install="apt-get install -y --no-install-recommends ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "make test needs these Debian/Ubuntu packages (or their equivalents): ${missing[*]}" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo)
else
    echo "make test needs system packages; run: sudo apt-get update && sudo $install" >&2
    exit 1
fi
echo "installing test packages: ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

#!/usr/bin/env bash
# Provisions what winipc's test suite needs on a Debian/Ubuntu Linux machine, idempotently:
#   - Wine 10 (Debian trixie packages, pinned at priority 100 so nothing else upgrades)
#   - socat (serial-port tests use a pty pair)
#   - deno.exe (the Windows build of Deno, npm package @deno/win32-x64) in .tools/deno-win/
#   - a Wine prefix of the project's own (.wine/) with the null graphics driver
# A second run installs nothing. Prints what it does on stderr; prints nothing else.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
DENO_VERSION=${WINIPC_DENO_VERSION:-2.9.6}
tools="$root/.tools"
export WINEPREFIX=${WINEPREFIX:-$root/.wine}
export WINEDEBUG=-all
say() { printf 'provision: %s\n' "$*" >&2; }

sudo_=""
if [ "$(id -u)" != 0 ]; then sudo_="sudo"; fi

wine_major() {
  command -v wine >/dev/null 2>&1 || { echo 0; return; }
  wine --version 2>/dev/null | sed -E 's/^wine-([0-9]+).*/\1/' || echo 0
}

# 1. Wine 10 and socat from Debian.
if [ "$(wine_major)" -lt 10 ] || ! command -v socat >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "error: Wine 10 and socat are needed and this machine has no apt-get; install them by hand"
    exit 1
  fi
  if [ "$(wine_major)" -lt 10 ]; then
    say "installing Wine 10 from Debian trixie (pinned at priority 100)"
    uri=$(grep -hoE '^URIs: *http[^ ]*debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1 | sed -E 's/^URIs: *//')
    if [ -z "$uri" ]; then
      uri=$(grep -hoE '^deb +http[^ ]*debian/? ' /etc/apt/sources.list 2>/dev/null | head -n1 | awk '{print $2}')
    fi
    uri=${uri:-http://deb.debian.org/debian}
    if [ ! -f /etc/apt/sources.list.d/winipc-trixie.sources ]; then
      $sudo_ tee /etc/apt/sources.list.d/winipc-trixie.sources >/dev/null <<SRC
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
      $sudo_ tee /etc/apt/preferences.d/winipc-trixie >/dev/null <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
    fi
    $sudo_ apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq -t trixie wine wine64 libwine >&2
  fi
  if ! command -v socat >/dev/null 2>&1; then
    say "installing socat"
    $sudo_ apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq socat >&2
  fi
fi

# 2. deno.exe from npm.
exe="$tools/deno-win/deno.exe"
if [ ! -x "$exe" ] || [ "$(cat "$tools/deno-win/VERSION" 2>/dev/null)" != "$DENO_VERSION" ]; then
  say "fetching deno.exe $DENO_VERSION (npm package @deno/win32-x64)"
  rm -rf "$tools/deno-win" && mkdir -p "$tools/deno-win"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@deno/win32-x64@$DENO_VERSION" >/dev/null 2>&1)
  tar -xzf "$tmp"/deno-win32-x64-*.tgz -C "$tmp"
  mv "$tmp/package/deno.exe" "$exe"
  chmod +x "$exe"
  echo "$DENO_VERSION" >"$tools/deno-win/VERSION"
  rm -rf "$tmp"
fi

# 3. The Wine prefix, with the null graphics driver (hidden top-level windows without a display).
if [ ! -f "$WINEPREFIX/.winipc-ready" ]; then
  say "creating the Wine prefix $WINEPREFIX"
  mkdir -p "$WINEPREFIX"
  wineboot -i >/dev/null 2>&1
  wine reg add 'HKCU\Software\Wine\Drivers' /v Graphics /d null /f >/dev/null 2>&1
  wineserver -w
  touch "$WINEPREFIX/.winipc-ready"
fi

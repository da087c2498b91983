#!/usr/bin/env bash
# Installs schemathesis (the OpenAPI fuzzer that test/hardening/openapi-fuzz.test.ts runs against a
# spawned Herald) into a virtual environment of its own, in a git-ignored folder of the repo, and
# prints the path of its `schemathesis` binary to export as HERALD_TEST_SCHEMATHESIS.
#
#   bash scripts/services/schemathesis.sh install   # prints the binary's path
#   bash scripts/services/schemathesis.sh path      # prints it if installed, else exits 1
#   bash scripts/services/schemathesis.sh remove
#
# Needs python3 (3.9 or newer) with its venv module (Debian: apt-get install -y python3-venv).
# Everything else comes from PyPI through pip. The version is pinned: a newer schemathesis may
# change its CLI flags or add checks, and the test should change only when we choose.
set -euo pipefail

VERSION="${HERALD_SCHEMATHESIS_VERSION:-4.32.5}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.tools/schemathesis-$VERSION"
BIN="$VENV/bin/schemathesis"

die() { echo "schemathesis.sh: $*" >&2; exit 1; }

install() {
  if [[ -x "$BIN" ]] && "$BIN" --version 2>/dev/null | grep -q "$VERSION"; then
    echo "$BIN"
    return 0
  fi
  command -v python3 >/dev/null || die "python3 not found (Debian: apt-get install -y python3 python3-venv)"
  rm -rf "$VENV"
  # pip's own output goes to stderr: stdout carries only the path, for `$(...)` in .ci/run.
  python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (Debian: apt-get install -y python3-venv)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION" >&2 \
    || die "pip install schemathesis==$VERSION failed"
  "$BIN" --version >&2 || die "schemathesis was installed but does not run"
  echo "$BIN"
}

case "${1:-}" in
  install) install ;;
  path) [[ -x "$BIN" ]] && echo "$BIN" || { echo "not installed: bash $0 install" >&2; exit 1; } ;;
  remove) rm -rf "$VENV" ;;
  *) die "usage: $0 install|path|remove" ;;
esac

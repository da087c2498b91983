#!/usr/bin/env bash
# Builds Centrifugo (the benchmark's peer) with `go install` from the Go module proxy into
# .tools/centrifugo/ (git-ignored). Idempotent: does nothing when that version is already there.
# Usage: bash bench/peers/install-centrifugo.sh   (prints the binary's path)
set -euo pipefail

VERSION="${CENTRIFUGO_VERSION:-v6.9.1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN_DIR="$ROOT/.tools/centrifugo"
BIN="$BIN_DIR/centrifugo"

if [ -x "$BIN" ] && [ "$(cat "$BIN_DIR/VERSION" 2>/dev/null)" = "$VERSION" ]; then
  echo "$BIN"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "go is not on the PATH (Centrifugo is built with go install)" >&2
  exit 1
fi
mkdir -p "$BIN_DIR"
GOBIN="$BIN_DIR" go install "github.com/centrifugal/centrifugo/v6@$VERSION" >&2
echo "$VERSION" > "$BIN_DIR/VERSION"
echo "$BIN"

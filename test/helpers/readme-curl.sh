# Sourced before each README shell block by test/e2e/readme-examples.test.ts: every documented
# `curl` is rewritten to `__curl K ...`, which saves the K-th answer (status, body, exit code) in
# $OUT for the test to compare with the README, cuts a stream (`-N`) after $STREAM_SECONDS, and
# fills `ep_...`-style placeholders with the last such id an earlier answer held.
set -eo pipefail

__ids() { grep -oE '"[a-z]+_[A-Za-z0-9-]+"' "$1" | tr -d '"' >> "$OUT/ids" || true; }

__fill() {
  local a=$1 p id
  while [[ $a =~ ([a-z]+)_\.\.\. ]]; do
    p=${BASH_REMATCH[1]}
    id=$(grep -E "^${p}_" "$OUT/ids" 2>/dev/null | tail -1 || true)
    [ -n "$id" ] || { echo "no earlier answer held a ${p}_ id" >&2; return 1; }
    a=${a/${p}_.../$id}
  done
  printf '%s' "$a"
}

__curl() {
  local k=$1 a stream='' rc=0
  shift
  local args=()
  for a in "$@"; do
    a=$(__fill "$a") || return 1
    args+=("$a")
    if [ "$a" = -N ]; then stream=1; fi
  done
  if [ -n "$stream" ]; then args+=(--max-time "$STREAM_SECONDS"); fi
  command curl "${args[@]}" -sS -o "$OUT/$k.body" -w '%{http_code}' > "$OUT/$k.status" 2> "$OUT/$k.err" || rc=$?
  if [ -n "$stream" ] && [ "$rc" -eq 28 ]; then rc=0; fi
  echo "$rc" > "$OUT/$k.rc"
  __ids "$OUT/$k.body"
  return "$rc"
}

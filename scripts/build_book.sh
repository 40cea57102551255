#!/usr/bin/env bash
# Build the course book: static HTML in _build/html/, from the notebooks' stored
# outputs (no lab runs), warnings treated as errors.
#
#   scripts/build_book.sh               install the book tools if needed, then build
#   scripts/build_book.sh --tools-only  only install the book tools (./setup.sh does this)
#
# The book tools are npm packages pinned in book/package-lock.json (mystmd, and
# playwright-core for the browser tests), installed with `npm ci` into
# book/node_modules, again only when the lock file changed. They need Node.js 20
# or newer: when the `node` on PATH is older (Debian 12's own is 18), Node.js 20
# comes from the npm registry's `node` package into book/.node/.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BOOK="$REPO/book"
TOOLS_STAMP="$BOOK/node_modules/.labkit-lock-sha256"
LOCAL_NODE="$BOOK/.node/node_modules/.bin"
NODE_MAJOR_NEEDED=20

say() { printf 'build_book: %s\n' "$*"; }
die() { printf 'build_book: error: %s\n' "$*" >&2; exit 2; }

node_major() {
  "${1:-node}" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || echo 0
}

ensure_node() {
  if [[ -x "$LOCAL_NODE/node" ]]; then
    export PATH="$LOCAL_NODE:$PATH"
  fi
  if command -v node >/dev/null 2>&1 && (( $(node_major) >= NODE_MAJOR_NEEDED )); then
    return 0
  fi
  command -v npm >/dev/null 2>&1 ||
    die "Node.js and npm are not installed: apt-get install nodejs npm (or run ./setup.sh test as root)"
  say "node $(node --version 2>/dev/null || echo missing) is older than $NODE_MAJOR_NEEDED: installing Node.js $NODE_MAJOR_NEEDED from the npm registry into book/.node"
  npm install --prefix "$BOOK/.node" --no-audit --no-fund --no-save "node@$NODE_MAJOR_NEEDED" >&2
  export PATH="$LOCAL_NODE:$PATH"
  (( $(node_major) >= NODE_MAJOR_NEEDED )) || die "could not get Node.js $NODE_MAJOR_NEEDED"
}

lock_key() {
  sha256sum "$BOOK/package-lock.json" | cut -d' ' -f1
}

ensure_book_tools() {
  ensure_node
  if [[ -f "$TOOLS_STAMP" && "$(<"$TOOLS_STAMP")" == "$(lock_key)" && -x "$BOOK/node_modules/.bin/myst" ]]; then
    say "book tools: up to date (node $(node --version), mystmd $(node -p 'require("'"$BOOK"'/node_modules/mystmd/package.json").version'))"
    return 0
  fi
  say "installing the book tools (npm ci in book/)"
  (cd "$BOOK" && npm ci --no-audit --no-fund >&2)
  lock_key >"$TOOLS_STAMP"
}

python_for_build() {
  if [[ -x "$REPO/.venv/bin/python" ]]; then
    echo "$REPO/.venv/bin/python"
  else
    command -v python3 || die "python3 not found"
  fi
}

main() {
  case "${1:-}" in
    --tools-only) ensure_book_tools; exit 0 ;;
    "") ;;
    *) die "usage: scripts/build_book.sh [--tools-only]" ;;
  esac
  ensure_book_tools
  exec "$(python_for_build)" "$REPO/scripts/build_book.py"
}

main "$@"

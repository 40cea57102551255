#!/usr/bin/env bash
# Set up the course on Debian 12 (or anything with Python 3.11+), then run it.
#
#   ./setup.sh course [JUPYTER-ARGS...]   install everything, open JupyterLab on notebooks/
#   ./setup.sh test   [PYTEST-ARGS...]    install everything, run the whole test suite
#
# Both verbs first make sure of three things, each skipped when already done,
# so a second run is fast and works offline:
#   1. the Debian packages below (installed with apt-get when run as root;
#      otherwise the script says which are missing and carries on: the `sim`
#      backend needs none of them);
#   2. a virtualenv at .venv, made by whatever `python3` is on PATH
#      (or $PYTHON);
#   3. `pip install -e '.[course,test]'` into it, repeated only when
#      pyproject.toml (or the Python, or the checkout's place) changed.
set -euo pipefail

# What the lab needs from Debian. tests/test_packaging.py reads this list:
# keep one package per word, comments after '#'.
DEBIAN_PACKAGES=(
  python3 python3-venv python3-pip      # the virtualenv
  iproute2 iptables nftables conntrack  # netns backend: namespaces, rules, conntrack
  procps util-linux                     # sysctl; unshare and nsenter
  nginx-light                           # the ingress controller
  dnsmasq-base                          # cluster DNS
  graphviz                              # diagrams (dot)
  ca-certificates                       # pip over https
  nodejs npm                            # the book: mystmd and playwright-core (scripts/build_book.sh)
  chromium                              # the book's browser tests (headless)
)

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV="$REPO/.venv"
STAMP="$VENV/.labkit-install-stamp"
PYTHON=${PYTHON:-python3}

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 2; }

usage() {
  cat <<'EOF'
usage: ./setup.sh course [JUPYTER-ARGS...]   install everything, open JupyterLab on notebooks/
       ./setup.sh test   [PYTEST-ARGS...]    install everything, run the whole test suite
EOF
}

# --- 1. Debian packages ------------------------------------------------------

provided_packages() {
  # Names that installed packages provide: NodeSource's nodejs, for one,
  # provides (and conflicts with) npm, so asking apt for npm would fail.
  dpkg-query -W -f='${db:Status-Status}\t${Provides}\n' 2>/dev/null |
    awk -F'\t' '$1 == "installed" { n = split($2, a, ","); for (i = 1; i <= n; i++) { split(a[i], w, " "); if (w[1] != "") print w[1] } }'
}

missing_debian_packages() {
  local pkg status
  local -A provided=()
  while read -r pkg; do provided[$pkg]=1; done < <(provided_packages)
  for pkg in "${DEBIAN_PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == installed || -n "${provided[$pkg]:-}" ]] || printf '%s\n' "$pkg"
  done
}

ensure_debian_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian system: for the netns backend install the equivalents of:"
    say "  ${DEBIAN_PACKAGES[*]}"
    say "carrying on: the sim backend needs only Python"
    return 0
  fi
  local missing=()
  mapfile -t missing < <(missing_debian_packages)
  if (( ${#missing[@]} == 0 )); then
    say "Debian packages: all ${#DEBIAN_PACKAGES[@]} present"
  elif [[ $(id -u) -eq 0 ]]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends "${missing[@]}"
  else
    say "missing Debian packages: ${missing[*]}"
    say "  install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    say "  (or run this script as root); carrying on: the sim backend needs none of them"
  fi
}

# --- 2. the virtualenv --------------------------------------------------------

ensure_venv() {
  command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found: apt-get install python3 python3-venv"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$("$PYTHON" -V 2>&1) is too old: labkit needs Python 3.11 or newer"
  if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    return 0
  fi
  say "creating .venv with $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
  "$PYTHON" -m venv --clear "$VENV" ||
    die "could not create .venv: on Debian, apt-get install python3-venv"
}

# --- 3. the Python packages ---------------------------------------------------

install_key() {
  # What the install depends on: the dependency list, the Python, this checkout's path.
  "$VENV/bin/python" -c '
import hashlib, sys
print(hashlib.sha256(open("pyproject.toml", "rb").read()
                     + sys.version.encode() + sys.argv[1].encode()).hexdigest())' "$REPO"
}

ensure_python_packages() {
  local key
  key=$(install_key)
  if [[ -f "$STAMP" && "$(<"$STAMP")" == "$key" ]]; then
    say "Python packages: up to date"
    return 0
  fi
  say "installing labkit and its Python dependencies into .venv"
  "$VENV/bin/python" -m pip install --progress-bar off -e ".[course,test]"
  printf '%s\n' "$key" >"$STAMP"
}

# --- the verbs ----------------------------------------------------------------

run_course() {
  local root_args=()
  [[ $(id -u) -eq 0 ]] && root_args=(--allow-root)
  say "starting JupyterLab on notebooks/00.00-welcome.ipynb, localhost only: open the URL it prints (Ctrl-C stops it)"
  cd notebooks
  exec "$VENV/bin/jupyter" lab --ip=127.0.0.1 "${root_args[@]}" "$@" 00.00-welcome.ipynb
}

run_tests() {
  # Extra arguments: one pytest run with them (e.g. `./setup.sh test -k render`).
  if [[ $# -gt 0 ]]; then
    exec "$VENV/bin/python" -m pytest "$@"
  fi
  # 0. The book, from the notebooks' stored outputs, warnings as errors
  #    (scripts/build_book.sh; it installs its npm tools into book/ first).
  # 1. tests/: pure code, the kernel lab (as root), the learner copies' hints,
  #    the authored notebooks on the kernel lab (lax, explicit assertions),
  #    and the book in headless Chromium.
  # 2. The authored notebooks under nbval on the simulation, their stored
  #    outputs compared exactly (tests/nbval_sanitize.cfg lists what may vary).
  local rc=0
  say "building the book (scripts/build_book.sh)"
  "$REPO/scripts/build_book.sh" || rc=$?
  say "running the tests (tests/)"
  "$VENV/bin/python" -m pytest || rc=$?
  say "running the authored notebooks on the simulation, outputs compared exactly (course/)"
  LABKIT_BACKEND=sim "$VENV/bin/python" -m pytest --nbval course/ --nbval-current-env \
    --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider || rc=$?
  return "$rc"
}

main() {
  local verb=${1:-}
  case "$verb" in
    course | test) shift ;;
    -h | --help | help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  cd "$REPO"
  ensure_debian_packages
  ensure_venv
  ensure_python_packages
  case "$verb" in
    course) run_course "$@" ;;
    test)
      # The book's npm tools (mystmd, playwright-core) into book/node_modules,
      # skipped when book/package-lock.json has not changed.
      "$REPO/scripts/build_book.sh" --tools-only ||
        say "the book tools could not be installed: the book's build and browser tests will fail"
      run_tests "$@" ;;
  esac
}

main "$@"

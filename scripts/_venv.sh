# Sourced by scripts/run and scripts/test: make .venv if missing and install the project into it.
# Usage: ensure_venv [extras]   (reinstalls only when pyproject.toml changed)
# Python 3.12 or newer is needed (the routing engine's wheels, pyvalhalla, are cp312-abi3). It is
# found by find_python; a .venv made by an older Python is made again.
ensure_venv() {
  local extras="${1:-}" py
  ensure_icu_headers
  py="$(find_python)" || exit 1
  if [ -x .venv/bin/python ] && ! _python_ok .venv/bin/python; then
    echo "== .venv has $(.venv/bin/python --version 2>&1); making it again with $("$py" --version 2>&1)"
    rm -rf .venv
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv with $py ($("$py" --version 2>&1))"
    "$py" -m venv .venv
  fi
  local stamp=".venv/.installed${extras:+-$extras}"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "== installing delivery-service${extras:+[$extras]} into .venv"
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".${extras:+[$extras]}"
    touch "$stamp"
  fi
}

# True when "$1" runs and is Python 3.12 or newer (a pyenv shim for a version not selected fails
# to run: it is skipped, not trusted by its name).
_python_ok() {
  "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1
}

# Prints the Python to make .venv with: $PYTHON if set (and then only it), else the first that runs
# and is >= 3.12 of python3.12, python3.13, python3.14, python3 on PATH, pyenv's installed versions
# (oldest first: 3.12 is the version CI runs), and /usr/bin/python3.1x, /usr/local/bin/python3.1x.
# Says what to install when there is none.
find_python() {
  local candidate root
  if [ -n "${PYTHON:-}" ]; then
    if _python_ok "$PYTHON"; then echo "$PYTHON"; return 0; fi
    echo "PYTHON=$PYTHON is not a working Python 3.12 or newer ($("$PYTHON" --version 2>&1 | head -n1))" >&2
    return 1
  fi
  local candidates=(python3.12 python3.13 python3.14 python3)
  root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
  # 3.12 first (the tested one), then newer; then the system's
  for candidate in $(ls -d "$root"/versions/3.1[2-9]*/bin/python 2>/dev/null | sort -V) \
                   /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9]; do
    candidates+=("$candidate")
  done
  for candidate in "${candidates[@]}"; do
    if command -v "$candidate" >/dev/null 2>&1 && _python_ok "$candidate"; then
      command -v "$candidate"
      return 0
    fi
  done
  {
    echo "Python 3.12 or newer is needed and none was found (tried: python3.12, python3.13, python3.14,"
    echo "python3 on PATH, $root/versions/3.1x, /usr/bin/python3.1x; python3 is: $(python3 --version 2>&1))."
    echo "Install one (Debian 13 / Ubuntu 24.04: apt-get install python3 python3-venv; older systems:"
    echo "pyenv install 3.12 or the deadsnakes PPA), or set PYTHON=/path/to/python3.12."
  } >&2
  return 1
}

# Usage: ensure_debian_tools COMMAND:PACKAGE ...   (e.g. pdftoppm:poppler-utils)
# Installs the Debian packages whose commands are missing, when this user may (root with apt-get).
# Otherwise says so; the tests that need a missing tool skip with the reason (fail under CI).
ensure_debian_tools() {
  local missing=() pair
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]} (Debian)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } \
      || echo "could not install ${missing[*]}; the tests that need them will say so" >&2
  else
    echo "missing ${missing[*]} (install with apt-get); the tests that need them will say so" >&2
  fi
}

# PyICU (Vietnamese collation) has no wheels on PyPI: pip builds it against the system's ICU, which
# needs Debian's libicu-dev, pkg-config and a C++ compiler. Installed here when missing and allowed.
ensure_icu_headers() {
  if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists icu-i18n 2>/dev/null \
     && command -v g++ >/dev/null 2>&1; then
    return 0
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing libicu-dev pkg-config g++ (Debian; to build PyICU)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libicu-dev pkg-config g++ >/dev/null \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive \
           apt-get install -y --no-install-recommends libicu-dev pkg-config g++ >/dev/null; } \
      || echo "could not install libicu-dev; PyICU will not build" >&2
  else
    echo "PyICU needs ICU's headers: install libicu-dev, pkg-config and g++ (Debian/Ubuntu)" >&2
  fi
}

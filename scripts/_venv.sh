# Sourced by scripts/run and scripts/test: make .venv if missing and install the project into it.
# Usage: ensure_venv [extras]   (reinstalls only when pyproject.toml changed)
ensure_venv() {
  local extras="${1:-}" py="${PYTHON:-python3}"
  ensure_icu_headers
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Python 3.11 or newer is needed (found: $("$py" --version 2>&1)); set PYTHON=/path/to/python3.11" >&2
    exit 1
  fi
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
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

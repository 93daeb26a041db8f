# Sourced by scripts/up, scripts/test and scripts/bench: find Python >= 3.12, make .venv, install.
# Usage: bootstrap [extras]   (extras like "test")
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

find_python() {
  local cand
  for cand in python3.13 python3.12 python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$cand"; return 0
    fi
  done
  if command -v pyenv >/dev/null 2>&1; then
    for cand in "$(pyenv root)"/versions/3.1[2-9]*/bin/python3; do
      [ -x "$cand" ] && { echo "$cand"; return 0; }
    done
  fi
  for cand in "$HOME"/.pyenv/versions/3.1[2-9]*/bin/python3; do
    [ -x "$cand" ] && { echo "$cand"; return 0; }
  done
  return 1
}

bootstrap() {
  local extras="${1:-}"
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    local py
    py="$(find_python)" || { echo "llmtap needs Python >= 3.12 (not found on PATH or under pyenv)" >&2; exit 1; }
    echo "creating .venv with $py" >&2
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
  fi
  local spec="$ROOT"
  [ -n "$extras" ] && spec="$ROOT[$extras]"
  # Reinstall only when pyproject.toml changed since the last install.
  local stamp="$VENV/.llmtap-installed-$extras"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$spec" >&2
    touch "$stamp"
  fi
}

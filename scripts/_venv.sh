# Sourced by the other scripts: make .venv with Python >= 3.11 and install consentry into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
  done
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "consentry needs Python 3.11 or newer (found: $("$PY" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $("$PY" --version)" >&2
  "$PY" -m venv .venv
fi
# Dependencies come from requirements.lock (pinned, hashed: scripts/lock.sh makes it), then
# consentry itself without resolving anything; check_lock.py fails when the lock is stale.
stamp=.venv/.installed-$(cat pyproject.toml requirements.lock setup.py src/consentry/replica/_rows.c | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "==> installing consentry and its locked dependencies into .venv" >&2
  .venv/bin/python -m pip install --quiet --require-hashes -r requirements.lock
  .venv/bin/python -m pip install --quiet --no-deps -e .
  .venv/bin/python scripts/check_lock.py "${EXTRAS:-server}"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

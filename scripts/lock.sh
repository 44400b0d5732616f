#!/usr/bin/env bash
# Regenerate requirements.lock: every package of the server and dev extras, pinned with hashes,
# resolved for Python 3.11 from PyPI alone (this machine's local wheel folders are ignored, so the
# lock installs the same anywhere). Run after changing dependencies in pyproject.toml, then commit
# both files; scripts/_venv.sh refuses a lock that no longer covers pyproject.toml.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/pip-compile ]; then
  python3 -m venv .venv 2>/dev/null || true
  .venv/bin/python -m pip install --quiet "pip-tools>=7.4"
fi
env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null \
  .venv/bin/pip-compile --quiet --resolver=backtracking --generate-hashes --allow-unsafe \
  --strip-extras --extra server --extra dev --no-emit-index-url --no-emit-find-links \
  --output-file requirements.lock pyproject.toml
echo "requirements.lock written; commit it with pyproject.toml" >&2

#!/usr/bin/env bash
# Run every check: lint, format, types, and the whole test suite (unit, integration on SQLite
# and PostgreSQL, end-to-end in Chromium). Extra arguments go to pytest.
EXTRAS=server,dev
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
echo "==> ruff" >&2
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "==> mypy (strict)" >&2
.venv/bin/mypy
echo "==> pytest" >&2
mkdir -p .test-reports
exec .venv/bin/python -m pytest --junitxml=.test-reports/junit.xml "$@"

#!/usr/bin/env bash
# Run every check: lint, format, types, the whole test suite (unit, integration on SQLite
# and PostgreSQL, end-to-end in Chromium, security, fuzzing, faults), then bandit and
# pip-audit (scripts/audit.sh). Extra arguments go to pytest.
EXTRAS=server,dev
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
echo "==> ruff" >&2
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "==> mypy (strict)" >&2
.venv/bin/mypy
echo "==> pytest" >&2
mkdir -p .test-reports
status=0
.venv/bin/python -m pytest --junitxml=.test-reports/junit.xml "$@" || status=$?
# Supply chain after the tests, so a developer always sees the test results first.
bash scripts/audit.sh || { audit=$?; [ "$status" -ne 0 ] || status=$audit; }
exit "$status"

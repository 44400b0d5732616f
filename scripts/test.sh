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
echo "==> import contracts (pyproject.toml [tool.importlinter])" >&2
.venv/bin/lint-imports --no-cache
echo "==> pytest" >&2
mkdir -p .test-reports
status=0
# Two passes, each with its own junit report (.ci/run counts both): every test but those that
# restart a shared service, on every core (CONSENTRY_TEST_WORKERS, default auto; worksteal keeps
# each worker on a run of one module, so module fixtures start about once per worker), then the
# serial ones alone. A pass with nothing selected (exit 5) is no failure.
pass_status() { local rc=$1; [ "$rc" -eq 5 ] && rc=0; [ "$status" -ne 0 ] || status=$rc; }
rc=0
.venv/bin/python -m pytest -n "${CONSENTRY_TEST_WORKERS:-auto}" --dist worksteal --serial=exclude \
  --junitxml=.test-reports/junit.xml "$@" || rc=$?
pass_status "$rc"
rc=0
.venv/bin/python -m pytest -n 0 --serial=only --junitxml=.test-reports/junit-serial.xml "$@" || rc=$?
pass_status "$rc"
# Supply chain after the tests, so a developer always sees the test results first.
bash scripts/audit.sh || { audit=$?; [ "$status" -ne 0 ] || status=$audit; }
exit "$status"

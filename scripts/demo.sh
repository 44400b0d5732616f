#!/usr/bin/env bash
# Run the demo: server + Permissions page on SQLite, demo catalogue and demo customers.
EXTRAS=server
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
exec .venv/bin/consentry demo "$@"

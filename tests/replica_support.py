"""Replicas for tests, on either row store (compiled or pure Python)."""

from __future__ import annotations

import pytest

from consentry.catalogue_io import load_catalogue
from consentry.domain.decisions import CatalogueIndex
from consentry.replica.core import Replica
from consentry.replica.rows import COMPILED, new_rows
from support import MINI

CATALOGUE = load_catalogue(MINI)
INDEX = CatalogueIndex(CATALOGUE)

# Tests parametrized with ROWS run on both row stores. Without the compiled one built they are
# skipped with the reason shown, and CI refuses skips.
ROWS = [
    pytest.param(
        True,
        id="compiled-rows",
        marks=pytest.mark.skipif(COMPILED is None, reason="consentry.replica._rows is not built"),
    ),
    pytest.param(False, id="python-rows"),
]


def new_replica(compiled_rows: bool) -> Replica:
    return Replica(
        CATALOGUE,
        compiled=INDEX.compiled,
        rows=lambda capacity, bits: new_rows(capacity, bits, compiled=compiled_rows),
    )

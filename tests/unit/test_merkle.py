"""The Merkle tree is RFC 6962's: the same roots as the recursive definition, and audit paths
that lead every leaf to them."""

from __future__ import annotations

import hashlib

import pytest

from consentry.domain import merkle


def rfc6962_root(data: list[bytes]) -> bytes:
    """MTH from RFC 6962 section 2.1, written as the RFC states it."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return hashlib.sha256(b"\x01" + rfc6962_root(data[:k]) + rfc6962_root(data[k:])).digest()


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 7, 8, 9, 16, 31, 33, 100])
def test_roots_and_audit_paths_match_rfc_6962(size: int) -> None:
    data = [f"leaf-{i}".encode() for i in range(size)]
    leaves = [merkle.leaf_hash(d) for d in data]
    assert merkle.root(leaves) == rfc6962_root(data)
    for index in range(size):
        path = merkle.audit_path(leaves, index)
        assert merkle.root_from_path(leaves[index], index, size, path) == rfc6962_root(data)


def test_an_audit_path_does_not_prove_another_leaf() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(9)]
    path = merkle.audit_path(leaves, 4)
    assert merkle.root_from_path(leaves[5], 4, 9, path) != merkle.root(leaves)
    with pytest.raises(ValueError):
        merkle.root_from_path(leaves[4], 4, 9, [*path, leaves[0]])

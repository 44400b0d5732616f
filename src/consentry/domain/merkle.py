"""Merkle trees as RFC 6962 (Certificate Transparency) defines them: leaf hash
SHA-256(0x00 || data), node hash SHA-256(0x01 || left || right), and a tree of n leaves split
at the largest power of two below n (built bottom-up here: a lone last node moves up as is,
which gives the same root). Audit paths prove one leaf is in a tree of a given root."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _up(level: Sequence[bytes]) -> list[bytes]:
    sha = hashlib.sha256
    pairs = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        pairs.append(level[-1])
    return pairs


def root(leaves: Sequence[bytes]) -> bytes:
    """The root over leaf hashes (``leaf_hash`` of each leaf's data), in order."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        level = _up(level)
    return level[0]


def audit_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The sibling hashes from leaf ``index`` up to the root (RFC 6962 section 2.1.1)."""
    if not 0 <= index < len(leaves):
        raise IndexError(index)
    path: list[bytes] = []
    level = list(leaves)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        level = _up(level)
        index //= 2
    return path


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """The root a leaf hash and its audit path lead to (compare with a signed root)."""
    if not 0 <= index < size:
        raise ValueError("index outside the tree")
    node, steps = leaf, iter(path)
    width = size
    while width > 1:
        if index % 2 == 1:
            node = node_hash(next(steps), node)
        elif index + 1 < width:
            node = node_hash(node, next(steps))
        index //= 2
        width = (width + 1) // 2
    if next(steps, None) is not None:
        raise ValueError("audit path longer than the tree")
    return node

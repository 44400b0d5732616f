"""Exception types of consentry.standards. Both are ValueErrors: bad input, never a bug."""

from __future__ import annotations

__all__ = ["GPPError", "StandardsError", "TCStringError"]


class StandardsError(ValueError):
    """Base class: a consent string could not be decoded, or a model could not be encoded."""


class TCStringError(StandardsError):
    """A TC string could not be decoded, or a TCString could not be encoded."""


class GPPError(StandardsError):
    """A GPP string (or one of its sections) could not be decoded or encoded."""

"""Mapping files: another platform's export read as consentry import records.

A mapping (YAML, documented with two worked examples in docs/import.md) says where each record
field is found in a line of the export, how the platform's purpose or vendor ids and status
words translate to catalogue permissions and states, and optionally which list in a line holds
one entry per purpose (``each``)::

    source: onetrust           # events are marked import:onetrust
    format: jsonl              # or csv
    each: purposes             # optional: one record per element of this list
    fields:                    # dotted paths; "item." reads the current element of ``each``
      subject: identifier
      permission: item.Id
      state: item.TransactionType
      time: item.consentDate   # or the line's, e.g. consentCreationDate
      notice_version: item.Version
      locale: language
      record_id: [receiptId, item.Id]   # several paths are joined with ":"
    permissions: {"7c1b…": marketing.email}   # platform id -> catalogue permission
    states: {CONFIRMED: granted, WITHDRAWN: denied}
    unmapped: skip             # an id not in ``permissions``: skip (or error, the default)
    ignore_states: [NO_CHOICE] # status words that record no choice: skipped
    values: {locale: en}       # constants for fields the export does not carry
    notice_versions: {"pri_2": "2"}  # the platform's notice (version) ids -> catalogue versions
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from consentry.domain.imports import FIELDS, InvalidRecord


class MappingError(ValueError):
    """The mapping file is unusable; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class ImportMapping:
    source: str
    format: str | None
    each: str | None
    fields: Mapping[str, tuple[str, ...]]
    permissions: Mapping[str, str]
    states: Mapping[str, str]
    unmapped_skip: bool
    ignore_states: frozenset[str]
    values: Mapping[str, str]
    notice_versions: Mapping[str, str]

    def expand(self, line: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The records one line of the export holds (none for a line of unmapped ids only)."""
        items: list[Any] = [None]
        if self.each is not None:
            found = _path(line, self.each, None)
            if not isinstance(found, list):
                raise InvalidRecord(f"{self.each} is not a list")
            items = found
        out: list[dict[str, Any]] = []
        for item in items:
            record: dict[str, Any] = dict(self.values)
            for name, paths in self.fields.items():
                parts = [_path(line, p, item) for p in paths]
                if len(parts) == 1:
                    record[name] = parts[0]
                elif all(part is not None for part in parts):
                    record[name] = ":".join(str(part) for part in parts)
            foreign = record.get("permission")
            if foreign is not None:
                mapped = self.permissions.get(str(foreign))
                if mapped is None:
                    if self.unmapped_skip:
                        continue
                    raise InvalidRecord(f"no permission mapped for {foreign!r}")
                record["permission"] = mapped
            status = record.get("state")
            if status is not None and self.states:
                if str(status) in self.ignore_states:
                    continue
                word = self.states.get(str(status))
                if word is None:
                    raise InvalidRecord(f"state {status!r} has no mapping")
                record["state"] = word
            version = record.get("notice_version")
            if version is not None and self.notice_versions:
                record["notice_version"] = self.notice_versions.get(str(version), version)
            out.append(record)
        return out


def _path(line: Mapping[str, Any], path: str, item: Any) -> Any:
    node: Any = line
    steps = path.split(".")
    if steps[0] == "item":
        node, steps = item, steps[1:]
    for step in steps:
        if not isinstance(node, Mapping):
            return None
        node = node.get(step)
    return node


def _strings(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{where} must be a mapping")
    return {str(k): str(v) for k, v in value.items()}


def load_mapping(path: Path) -> ImportMapping:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: cannot read the mapping: {exc}") from exc
    if not isinstance(data, dict):
        raise MappingError(f"{path}: a mapping file is a YAML mapping")
    known = {"source", "format", "each", "fields", "permissions", "states", "unmapped"}
    known |= {"ignore_states", "values", "platform", "notice_versions"}
    extra = sorted(set(data) - known)
    if extra:
        raise MappingError(f"{path}: unknown key(s) {', '.join(extra)}")
    fields: dict[str, tuple[str, ...]] = {}
    raw_fields = data.get("fields") or {}
    if not isinstance(raw_fields, dict):
        raise MappingError(f"{path}: fields must be a mapping")
    for name, spec in raw_fields.items():
        if name not in FIELDS:
            raise MappingError(f"{path}: fields.{name} is not a record field ({', '.join(FIELDS)})")
        paths = spec if isinstance(spec, list) else [spec]
        if not paths or not all(isinstance(p, str) and p for p in paths):
            raise MappingError(f"{path}: fields.{name} must be a path or a list of paths")
        fields[name] = tuple(paths)
    unmapped = data.get("unmapped", "error")
    if unmapped not in ("error", "skip"):
        raise MappingError(f"{path}: unmapped must be error or skip")
    states = _strings(data.get("states"), f"{path}: states")
    bad = sorted(v for v in states.values() if v not in ("granted", "denied"))
    if bad:
        raise MappingError(f"{path}: states map to granted or denied, not {bad[0]!r}")
    fmt = data.get("format")
    if fmt not in (None, "jsonl", "csv"):
        raise MappingError(f"{path}: format must be jsonl or csv")
    return ImportMapping(
        source=str(data.get("source") or "file"),
        format=fmt,
        each=data.get("each"),
        fields=fields,
        permissions=_strings(data.get("permissions"), f"{path}: permissions"),
        states=states,
        unmapped_skip=unmapped == "skip",
        ignore_states=frozenset(str(s) for s in data.get("ignore_states") or ()),
        values=_strings(data.get("values"), f"{path}: values"),
        notice_versions=_strings(data.get("notice_versions"), f"{path}: notice_versions"),
    )

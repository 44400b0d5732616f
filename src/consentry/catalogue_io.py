"""Reading a catalogue file: YAML in, validated :class:`Catalogue` out, errors with line numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from consentry.domain.catalogue import Catalogue

DEFAULT_CATALOGUE = Path(__file__).parent / "catalogues" / "marketplace.yaml"


class CatalogueError(ValueError):
    """A catalogue file that cannot be used; ``problems`` lists each with its line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid catalogue\n" + "\n".join(f"  {p}" for p in problems))


def _line_index(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[path + (key.value,)] = key.start_mark.line + 1
            _line_index(value, path + (key.value,), out)
            out[path + (key.value,)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_index(item, path + (i,), out)


def _nearest_line(lines: dict[tuple[Any, ...], int], loc: tuple[Any, ...]) -> int:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def parse_catalogue(text: str, source: str = "<catalogue>") -> Catalogue:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise CatalogueError(source, [f"{line}not valid YAML: {exc}"]) from exc
    if not isinstance(data, dict) or node is None:
        raise CatalogueError(source, ["line 1: the catalogue must be a YAML mapping"])
    lines: dict[tuple[Any, ...], int] = {}
    _line_index(node, (), lines)
    try:
        return Catalogue.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            field = ".".join(str(p) for p in loc) or "(top level)"
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"line {_nearest_line(lines, loc)}: {field}: {message}")
        raise CatalogueError(source, problems) from exc


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    file = Path(path) if path is not None else DEFAULT_CATALOGUE
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(str(file), [f"cannot read the file: {exc.strerror}"]) from exc
    return parse_catalogue(text, str(file))

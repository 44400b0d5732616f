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


# Far above any real catalogue (the marketplace one is ~40 KB, ~3,000 nodes); a file past
# these is refused before it is walked, so a "billion laughs" of YAML aliases cannot hang a load.
MAX_BYTES = 2_000_000
MAX_NODES = 200_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` stands for once aliases are expanded (memoised: linear time)."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = MAX_NODES + 1  # a cycle counts as too large
    total = 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            total += _expanded_size(key, sizes) + _expanded_size(value, sizes)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            total += _expanded_size(item, sizes)
    sizes[id(node)] = total = min(total, MAX_NODES + 1)
    return total


def parse_catalogue(text: str, source: str = "<catalogue>") -> Catalogue:
    if len(text) > MAX_BYTES:
        raise CatalogueError(source, [f"line 1: the file is over {MAX_BYTES} characters"])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            raise CatalogueError(
                source, [f"line 1: over {MAX_NODES} YAML nodes once aliases are expanded"]
            )
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

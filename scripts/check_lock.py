"""Fail when requirements.lock no longer covers pyproject.toml.

Run by scripts/_venv.sh after installing the lock: every requirement of consentry and of the
extras asked for must be satisfied by what the lock installed. When a dependency was added or
raised in pyproject.toml without re-locking, this names it and says how to fix it.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement


def main(extras: list[str]) -> int:
    project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"].get(extra, [])
    stale = []
    for line in wanted:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            found = version(req.name)
        except PackageNotFoundError:
            stale.append(f"{line} (not in the lock)")
            continue
        if not req.specifier.contains(found, prereleases=True):
            stale.append(f"{line} (the lock has {found})")
    if stale:
        print("requirements.lock is out of date with pyproject.toml:", file=sys.stderr)
        for item in stale:
            print(f"  {item}", file=sys.stderr)
        print("run scripts/lock.sh and commit requirements.lock", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main([e for arg in sys.argv[1:] for e in arg.split(",") if e]))

"""YAML read with libyaml when PyYAML has it, and remembered while the file is unchanged.

The TOC and ``_config.yml`` are read by most stages of a build, several times each; the
pure-Python parser takes tens of milliseconds a time. Here the C parser reads them, and a
file is parsed again only when its status changes. A file the C parser rejects is read
again by the pure-Python one, so that an author sees PyYAML's usual message and line.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path

import yaml

from tools.core.files import read_source
from tools.core.memo import file_status

FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse(text: str) -> tuple[yaml.Node | None, object]:
    """The node tree (with line marks) and the data of one YAML document; raises
    yaml.YAMLError as the pure-Python parser words it."""
    try:
        return yaml.compose(text, Loader=FAST_LOADER), yaml.load(text, Loader=FAST_LOADER)
    except yaml.YAMLError:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)


@lru_cache(maxsize=16)
def _parsed(path: Path, status: tuple[int, ...]) -> tuple[yaml.Node | None, object]:
    return parse(read_source(path))


def read_yaml(path: Path) -> tuple[yaml.Node | None, object]:
    """:func:`parse` of the file at ``path`` (a copy of the data, which the caller may
    change); raises OSError, ProblemError (not UTF-8) or yaml.YAMLError."""
    node, data = _parsed(path, file_status(path))
    return node, copy.deepcopy(data)

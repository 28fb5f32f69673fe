"""Read notebooks exactly as myst-nb reads them at render time, with the book's settings.

The executor caches notebooks in jupyter-cache, whose key is a hash of the notebook that
myst-nb reads inside Sphinx. To make the Sphinx build find every notebook we cached, this
module builds myst-nb's own reader (``myst_nb.core.read.create_nb_reader``) from the same
Sphinx configuration that jupyter-book derives from ``_config.yml``, and applies the same
kernel-name aliases myst-nb applies before it looks a notebook up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import nbformat
import yaml
from myst_nb.core.config import NbParserConfig
from myst_nb.core.read import create_nb_reader
from myst_parser.config.main import MdParserConfig

from tools.core.files import DEFAULT_CACHE, read_source
from tools.core.problems import Problem, ProblemError, yaml_error_location
from tools.core.yamlio import read_yaml

CONFIG = "_config.yml"


@dataclass(frozen=True)
class BookSettings:
    """What execution needs from the book's configuration (``_config.yml``)."""

    book: Path
    md_config: MdParserConfig = field(compare=False)
    nb_config: NbParserConfig = field(compare=False)
    cache_path: Path  # the jupyter-cache folder
    timeout: int | None = 30
    allow_errors: bool = False
    exclude_patterns: tuple[str, ...] = ()


class ConfigError(ProblemError):
    """A ``_config.yml`` that cannot be used, with the line (and column) to open."""


def read_config(book: Path) -> dict:
    """The book's ``_config.yml`` as data ({} when there is none); raises ConfigError at
    the line and column of a YAML error."""
    path = book / CONFIG
    if not path.is_file():
        return {}
    try:
        _, data = read_yaml(path)
    except ProblemError as err:
        raise ConfigError(err.problems) from None
    except yaml.YAMLError as err:
        line, column, problem = yaml_error_location(err)
        raise ConfigError([Problem(path, line, f"malformed YAML: {problem}", column)]) from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError.at(path, 1, "expected a mapping of settings")
    return data or {}


def sphinx_config(book: Path) -> dict:
    """The Sphinx configuration jupyter-book derives from ``book/_config.yml``."""
    from jupyter_book.config import get_final_config

    read_config(book)  # a YAML error names its line, not a traceback
    config_file = book / CONFIG
    try:
        config, _ = get_final_config(
            user_yaml=config_file if config_file.is_file() else None,
            cli_config={"latex_individualpages": False},
            sourcedir=book,
        )
    except Exception as err:  # jupyter-book's schema check of the settings
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError.at(config_file, 1, f"Jupyter Book refuses the settings: "
                                             f"{first}") from err
    return config


def _prefixed(config: dict, prefix: str, names: set[str]) -> dict:
    return {key[len(prefix):]: value for key, value in config.items()
            if key.startswith(prefix) and key[len(prefix):] in names}


def book_settings(book: Path) -> BookSettings:
    """Read the book's configuration into :class:`BookSettings`."""
    book = book.resolve()
    config = sphinx_config(book)
    md_names = {f.name for f in MdParserConfig.get_fields()
                if "sphinx" not in f.metadata.get("omit", [])}
    nb_names = {f.name for f in NbParserConfig.get_fields()
                if not f.metadata.get("sphinx_exclude")}
    md_config = MdParserConfig(**_prefixed(config, "myst_", md_names))
    nb_config = NbParserConfig(**_prefixed(config, "nb_", nb_names))
    cache = Path(nb_config.execution_cache_path or DEFAULT_CACHE)
    return BookSettings(
        book=book,
        md_config=md_config,
        nb_config=nb_config,
        cache_path=cache if cache.is_absolute() else book / cache,
        timeout=nb_config.execution_timeout,
        allow_errors=nb_config.execution_allow_errors,
        exclude_patterns=tuple(nb_config.execution_excludepatterns or ()),
    )


def is_excluded(path: Path, settings: BookSettings) -> bool:
    """True when ``execute.exclude_patterns`` keeps myst-nb from executing ``path``."""
    posix = PurePosixPath(path.resolve().as_posix())
    return any(posix.match(pattern) for pattern in settings.exclude_patterns)


def read_as_mystnb(path: Path, settings: BookSettings) -> nbformat.NotebookNode | None:
    """The notebook myst-nb would hash for ``path``, or None if it is not a notebook."""
    path = path.resolve()
    text = read_source(path)
    reader = create_nb_reader(str(path), settings.md_config, settings.nb_config, text)
    if reader is None:
        return None
    notebook = reader.read(text)
    kernel = notebook.metadata.get("kernelspec", {}).get("name")
    if kernel is not None:
        for pattern, alias in (settings.nb_config.kernel_rgx_aliases or {}).items():
            if re.fullmatch(pattern, kernel):
                notebook.metadata["kernelspec"]["name"] = alias
                break
    return notebook

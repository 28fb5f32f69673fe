"""Author-year labels of the bibliography entries, as the website's citations show them.

The site cites with sphinxcontrib-bibtex's ``author_year`` reference style
(``bibtex_reference_style`` in ``_config.yml``): the last names of the authors (of the
editors when there are none, else the title), "A and B" for two, "A et al." for three or
more, then a comma and the year. The entries are read with pybtex, the parser
sphinxcontrib-bibtex itself uses, so LaTeX accents come out as the site prints them.
"""

from __future__ import annotations

from pathlib import Path

from pybtex.backends.plaintext import Backend
from pybtex.database import BibliographyData, Entry, Person, parse_file
from pybtex.richtext import Text

from tools.core.memo import FileMemo

PLAIN = Backend()  # pybtex's text backend (render_as() would look it up on every call)


def _last_names(person: Person) -> str:
    parts = [*person.rich_prelast_names, *person.rich_last_names]
    return " ".join(part.render(PLAIN) for part in parts)


def _who(entry: Entry) -> str:
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last_names(p) for p in persons]
    if not names:
        return Text.from_latex(entry.fields.get("title", "")).render(PLAIN)
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


def author_year(entry: Entry) -> tuple[str, str]:
    """The author part ("Hinton et al.") and the year of an entry."""
    return _who(entry), entry.fields.get("year", "n.d.")


def read_bibfile(path: Path) -> dict[str, tuple[str, str]]:
    """(authors, year) of every entry of one BibTeX file, by key."""
    data: BibliographyData = parse_file(str(path), "bibtex")
    return {key: author_year(entry) for key, entry in data.entries.items()}


def read_bibliography(files: list[Path], memo: FileMemo | None = None
                      ) -> dict[str, tuple[str, str]]:
    """(authors, year) of every entry of the BibTeX ``files`` that exist, by key; with
    ``memo``, a file that has not changed since it was last read is not read again."""
    found: dict[str, tuple[str, str]] = {}
    for path in files:
        if path.is_file():
            found.update(memo.value(path, read_bibfile) if memo is not None
                         else read_bibfile(path))
    return found

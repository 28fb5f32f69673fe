"""``tools new-section``: the template page, the one-line TOC edit, and refusals."""

from __future__ import annotations

from test_check_support import book_copy, problems, write

from tools.cli import main
from tools.core.sections import add_to_toc, default_title


def new_section(book, *args: str) -> int:
    return main(["new-section", "--book", str(book), *args])


def test_creates_a_section_that_passes_check(tmp_path, capsys):
    book = book_copy(tmp_path)
    toc_before = (book / "_toc.yml").read_text()
    assert new_section(book, "--chapter", "01-basics", "--slug", "third-steps",
                       "--title", "Third Steps, Faster") == 0
    page = (book / "chapters/01-basics/third-steps.md").read_text()
    assert page.startswith("---\njupytext:\n")
    assert "(sec-third-steps)=\n# Third Steps, Faster\n" in page
    assert page.rstrip().splitlines()[-6] == "## Exercises"
    assert "## Summary" in page and "```{code-cell} ipython3" in page
    toc = (book / "_toc.yml").read_text()
    assert toc == toc_before.replace(
        "          - file: chapters/01-basics/second-steps\n",
        "          - file: chapters/01-basics/second-steps\n"
        "          - file: chapters/01-basics/third-steps\n")
    assert toc.startswith("# A clean mini-book")  # comments kept
    assert "created" in capsys.readouterr().err
    assert problems(book) == []


def test_chapter_by_number_or_slug_and_title_from_the_slug(tmp_path):
    book = book_copy(tmp_path)
    assert new_section(book, "--chapter", "1", "--slug", "a-tour-of-the-basics") == 0
    assert new_section(book, "--chapter", "basics", "--slug", "more") == 0
    page = (book / "chapters/01-basics/a-tour-of-the-basics.md").read_text()
    assert "# A Tour of the Basics\n" in page
    toc = (book / "_toc.yml").read_text()
    assert toc.index("a-tour-of-the-basics") < toc.index("chapters/01-basics/more")
    assert default_title("learning-rate-and-the-loss") == "Learning Rate and the Loss"


def test_refuses_an_existing_slug_and_changes_nothing(tmp_path, capsys):
    book = book_copy(tmp_path)
    before = (book / "_toc.yml").read_text()
    page_before = (book / "chapters/01-basics/second-steps.md").read_text()
    assert new_section(book, "--chapter", "01-basics", "--slug", "second-steps") == 1
    assert "already exists: choose another slug" in capsys.readouterr().err
    assert (book / "_toc.yml").read_text() == before
    assert (book / "chapters/01-basics/second-steps.md").read_text() == page_before


def test_refuses_a_slug_listed_in_the_toc_without_a_file(tmp_path, capsys):
    book = book_copy(tmp_path)
    (book / "chapters/01-basics/second-steps.md").unlink()
    assert new_section(book, "--chapter", "01-basics", "--slug", "second-steps") == 1
    assert "is already listed: choose another slug" in capsys.readouterr().err


def test_refuses_bad_slugs_and_unknown_chapters(tmp_path, capsys):
    book = book_copy(tmp_path)
    assert new_section(book, "--chapter", "01-basics", "--slug", "Bad Slug") == 1
    assert "lower-case words joined by hyphens" in capsys.readouterr().err
    assert new_section(book, "--chapter", "07", "--slug", "x") == 1
    assert "no single chapter folder matches '07' (chapters/: 01-basics)" in \
        capsys.readouterr().err
    write(book, "chapters/02-later/index.md", "(chap-later)=\n# Later\n")
    assert new_section(book, "--chapter", "02-later", "--slug", "x") == 1
    assert "lists no chapter 'chapters/02-later/index': add the chapter first" in \
        capsys.readouterr().err


def test_toc_edit_for_a_chapter_without_sections_and_with_nested_ones():
    toc = ("root: index  # the landing page\n"
           "parts:\n"
           "  - caption: A\n"
           "    chapters:\n"
           "      - file: chapters/01-a/index   # no sections yet\n"
           "      - file: chapters/02-b/index\n"
           "        sections:\n"
           "          - file: chapters/02-b/one\n"
           "            sections:\n"
           "              - file: chapters/02-b/one-detail\n"
           "\n"
           "  # back matter follows\n"
           "  - caption: B\n")
    first = add_to_toc(toc, "01-a", "chapters/01-a/new")
    assert first.splitlines()[4:7] == ["      - file: chapters/01-a/index   # no sections yet",
                                       "        sections:",
                                       "          - file: chapters/01-a/new"]
    second = add_to_toc(toc, "02-b", "chapters/02-b/two")
    assert second.splitlines()[9:11] == ["              - file: chapters/02-b/one-detail",
                                         "          - file: chapters/02-b/two"]
    assert second.endswith("  # back matter follows\n  - caption: B\n")

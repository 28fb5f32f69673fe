"""``tools check`` structure rules: front matter, title and label, exercises, stored
outputs, TOC in sync with chapters/. Each test breaks one rule in the clean fixture."""

from __future__ import annotations

import json

import nbformat
from test_check_support import (
    FRONT,
    SECTION,
    book_copy,
    broken,
    line_of,
    problems,
    section,
    write,
)

CELL = "```{code-cell} ipython3\nimport torch\n\ntorch.ones(2)\n```"


def test_the_clean_fixture_has_no_problems(tmp_path):
    assert problems(book_copy(tmp_path)) == []


def test_section_without_front_matter(tmp_path):
    found, _ = broken(tmp_path, section(CELL, front=None))
    assert found == [f"{SECTION}:1: no front matter: a section starts with the "
                     "jupytext/kernelspec front matter of the section template "
                     "(`make new-section` writes it)"]


def test_front_matter_without_kernelspec(tmp_path):
    front = FRONT.replace("kernelspec:\n  name: python3\n  display_name: Python 3\n", "")
    found, _ = broken(tmp_path, section(CELL, front=front))
    assert f"{SECTION}:1: the front matter has no kernelspec (name: python3): its code " \
           "cells would not run" in found


def test_front_matter_without_the_myst_format(tmp_path):
    front = "---\nkernelspec:\n  name: python3\n  display_name: Python 3\n---\n"
    found, _ = broken(tmp_path, section(CELL, front=front))
    assert found == [f"{SECTION}:1: the front matter does not declare the MyST notebook "
                     "format (jupytext: text_representation: format_name: myst): its code "
                     "cells would not run"]


def test_page_without_a_title(tmp_path):
    found, _ = broken(tmp_path, section(CELL, label=None, title=None))
    assert [p for p in found if p.startswith(SECTION)] == [
        f"{SECTION}:1: no H1 title (`# Title`): a page has exactly one, with a "
        "`(sec-<slug>)=` label line right above it"]


def test_two_titles(tmp_path):
    found, text = broken(tmp_path, section(CELL + "\n\n# Another Title\n"))
    assert found == [f"{SECTION}:{line_of(text, '# Another')}: a second H1 title (the first "
                     f"is at line {line_of(text, '# Second')}): a page has exactly one; "
                     "use `##` for its sections"]


def test_a_comment_in_a_code_cell_is_no_title(tmp_path):
    found, _ = broken(tmp_path, section("```{code-cell} ipython3\n# a comment\n1 + 1\n```"))
    assert found == []


def test_title_without_label(tmp_path):
    found, text = broken(tmp_path, section(CELL, label=""))
    assert [p for p in found if p.startswith(SECTION)] == [
        f"{SECTION}:{line_of(text, '# Second')}: the H1 title has no label: put a "
        "`(sec-<slug>)=` line right above it"]
    # ... and the references to the label it lost are reported where they are
    assert "chapters/01-basics/index.md:5: {ref}`sec-second-steps`: no such label in the " \
           "book (a `(name)=` line, a figure's name or a directive's :name:)" in found


def test_label_with_the_wrong_prefix(tmp_path):
    found, text = broken(tmp_path, section(CELL, label="(chap-second)="))
    assert f"{SECTION}:{line_of(text, '(chap-second)=')}: label 'chap-second' of the page " \
           "title should start with 'sec-'" in found


def test_chapter_index_label_starts_with_chap(tmp_path):
    rel = "chapters/01-basics/index.md"
    found, _ = broken(tmp_path, "(sec-basics)=\n# Basics\n\n{ref}`sec-first-steps`.\n", rel)
    assert found == [f"{rel}:1: label 'sec-basics' of the page title should start with "
                     "'chap-'"]


def test_section_without_exercises(tmp_path):
    found, text = broken(tmp_path, section(CELL + "\n\n## Summary\n\n- Done.", exercises=""))
    assert found == [f"{SECTION}:{len(text.splitlines())}: no `## Exercises` section: every "
                     "section ends with exercises (see CONTRIBUTING.md)"]


def test_exercises_must_close_the_section(tmp_path):
    text = section(CELL) + "\n## Further Reading\n\nA book.\n"
    found, _ = broken(tmp_path, text)
    assert found == [f"{SECTION}:{line_of(text, '## Further')}: `## Further Reading` follows "
                     f"`## Exercises` (line {line_of(text, '## Exercises')}): exercises "
                     "close the section"]


def test_ipynb_source_with_outputs(tmp_path):
    book = book_copy(tmp_path)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Notes"),
                nbformat.v4.new_code_cell("1 + 1", execution_count=1, outputs=[
                    nbformat.v4.new_output("execute_result", {"text/plain": "2"},
                                           execution_count=1)])]
    rel = "chapters/01-basics/scratch.ipynb"
    nbformat.write(nb, book / rel)
    text = (book / rel).read_text()
    found = problems(book)
    line = line_of(text, '"outputs"')
    assert f"{rel}:{line}: code cell 1 has stored outputs: clear " \
           "them before committing (Jupyter: Edit > Clear Outputs of All Cells); the build " \
           "executes every notebook" in found
    assert json.loads(text)  # a real notebook


def test_output_block_in_a_myst_source(tmp_path):
    found, text = broken(tmp_path, section(CELL + "\n\n```{output}\n2\n```"))
    assert found == [f"{SECTION}:{line_of(text, '{output}')}: a stored output block: "
                     "remove it; outputs come from executing the code cells"]


def test_outputs_in_code_cell_options(tmp_path):
    cell = "```{code-cell} ipython3\n---\noutputs: [2]\n---\n1 + 1\n```"
    found, text = broken(tmp_path, section(cell))
    assert found == [f"{SECTION}:{line_of(text, '{code-cell}')}: code cell 1 keeps outputs "
                     "in its options: remove them; the build executes every notebook"]


def test_file_under_chapters_missing_from_the_toc(tmp_path):
    book = book_copy(tmp_path)
    write(book, "chapters/01-basics/orphan.md", section(CELL, label="(sec-orphan)="))
    assert problems(book) == ["chapters/01-basics/orphan.md:1: not in _toc.yml: add it "
                              "under its chapter (`make new-section` does), or delete it"]


def test_data_folders_are_not_pages(tmp_path):
    book = book_copy(tmp_path)
    write(book, "chapters/01-basics/data/README.md", "Where the data comes from.\n")
    assert problems(book) == []


def test_toc_entry_without_a_file(tmp_path):
    book = book_copy(tmp_path)
    toc = (book / "_toc.yml").read_text()
    toc = toc.replace("          - file: chapters/01-basics/second-steps\n",
                      "          - file: chapters/01-basics/second-steps\n"
                      "          - file: chapters/01-basics/missing\n")
    write(book, "_toc.yml", toc)
    assert problems(book) == [f"_toc.yml:{line_of(toc, 'missing')}: 'chapters/01-basics/"
                              "missing' names no file (chapters/01-basics/missing.md or "
                              ".ipynb)"]


def test_every_problem_is_reported_in_book_order(tmp_path):
    book = book_copy(tmp_path)
    write(book, SECTION, section(CELL, label="", exercises=""))
    write(book, "chapters/01-basics/index.md", "# Basics\n")
    found = problems(book)
    index, first = "chapters/01-basics/index.md", "chapters/01-basics/first-steps.md"
    assert [p.split(":")[0] for p in found] == [index, first, SECTION, SECTION]
    assert [int(p.split(":")[1]) for p in found[2:]] == sorted(
        int(p.split(":")[1]) for p in found[2:])


def test_malformed_toc_is_one_problem(tmp_path):
    book = book_copy(tmp_path)
    write(book, "_toc.yml", "format: jb-book\nroot: index\nparts: [\n")
    found = problems(book)
    assert len(found) == 1 and found[0].startswith("_toc.yml:4: malformed YAML")


def test_toc_structure_errors_name_their_line(tmp_path):
    """sphinx-external-toc decides what the TOC means; its errors get the line they are
    about (an entry without a file, a page listed twice, a missing root)."""
    book = book_copy(tmp_path)
    toc = (book / "_toc.yml").read_text()
    no_file = toc.replace("          - file: chapters/01-basics/second-steps\n",
                          "          - title: Second steps\n")
    write(book, "_toc.yml", no_file)
    assert problems(book)[0].startswith(
        f"_toc.yml:{line_of(no_file, 'title: Second')}: entry does not contain "
        "one of")
    twice = toc + "          - file: chapters/01-basics/first-steps\n"
    write(book, "_toc.yml", twice)
    found = problems(book)
    assert found[0].startswith(f"_toc.yml:{len(twice.splitlines())}: document file used "
                               "multiple times: 'chapters/01-basics/first-steps'")
    write(book, "_toc.yml", toc.replace("root: index\n", ""))
    assert problems(book)[0].startswith("_toc.yml:") and "'root' key not found" in \
        problems(book)[0]


def test_an_option_continued_on_an_indented_line_is_refused(tmp_path):
    """MyST reads `:key: value` options one line each: an indented continuation ends
    them, so the `:name:` below it would silently become content."""
    body = (":::{note}\n:class: a long value\n  continued here\n:name: note-x\nText.\n:::\n\n"
            ":::{note}\n---\nclass: a long value\n  continued in YAML\nname: note-y\n---\n"
            "Text.\n:::\n")
    found, text = broken(tmp_path, section(body))
    line = line_of(text, "  continued here")
    assert found == [f"{SECTION}:{line}: {{note}}: this indented line ends the `:key:` "
                     "options (MyST reads it, and any option after it, as content); write "
                     "long option values in a `---` YAML block instead"]


def test_a_math_alphabet_as_a_bare_script_is_refused(tmp_path):
    r"""MathJax draws `_\mathcal{X}`, but unicode-math stops the PDF build there."""
    body = ("Inline $\\mathrm{P}^\\mathbf{T}$ and fine $x_{\\mathcal{X}}$, $n_\\text{in}$.\n\n"
            "$$\nf = \\min_\\mathcal{X} g\n$$\n")
    found, text = broken(tmp_path, section(body))
    assert found == [
        f"{SECTION}:{line_of(text, 'Inline')}: math: `^\\mathbf{{T}}`: a script that is a "
        "math alphabet command needs braces, or the PDF build stops (unicode-math): "
        "write `^{\\mathbf{T}}`",
        f"{SECTION}:{line_of(text, 'f = ')}: math: `_\\mathcal{{X}}`: a script that is a "
        "math alphabet command needs braces, or the PDF build stops (unicode-math): "
        "write `_{\\mathcal{X}}`"]


def test_an_equation_label_on_its_own_line_is_refused(tmp_path):
    body = "$$\nE = mc^2\n$$\n(eq-energy)\n\nand $$a = b$$ (eq-fine)\n"
    found, text = broken(tmp_path, section(body))
    assert found == [f"{SECTION}:{line_of(text, '(eq-energy)')}: math: `(eq-energy)` on a "
                     "line of its own is text, not a label: put it after the closing `$$`, "
                     "as `$$ (eq-energy)`"]

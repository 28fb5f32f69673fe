"""``tools check`` reference and image rules: every {ref}/{numref}/{eq}/{cite} target
exists, labels are unique, images exist and have alt text."""

from __future__ import annotations

from test_check_support import SECTION, book_copy, broken, line_of, problems, section, write

NO_LABEL = "no such label in the book (a `(name)=` line, a figure's name or a directive's :name:)"


def test_unknown_ref_in_a_multi_line_paragraph(tmp_path):
    found, text = broken(tmp_path, section("""
        A first line of the paragraph,
        then a second that points to {ref}`sec-nowhere`.
        """))
    assert found == [f"{SECTION}:{line_of(text, 'sec-nowhere')}: {{ref}}`sec-nowhere`: "
                     f"{NO_LABEL}"]


def test_unknown_ref_in_a_list_and_inside_a_directive(tmp_path):
    found, text = broken(tmp_path, section("""
        - an item about {ref}`sec-list-item`

        :::{note}
        A note that points to {ref}`sec-in-a-note`.
        :::
        """))
    assert found == [
        f"{SECTION}:{line_of(text, 'sec-list-item')}: {{ref}}`sec-list-item`: {NO_LABEL}",
        f"{SECTION}:{line_of(text, 'sec-in-a-note')}: {{ref}}`sec-in-a-note`: {NO_LABEL}"]


def test_ref_with_an_explicit_title_and_numref_format(tmp_path):
    found, text = broken(tmp_path, section("""
        See {ref}`the first steps <sec-first-steps>` and {numref}`Fig. %s <fig-missing>`.
        """))
    assert found == [f"{SECTION}:{line_of(text, 'fig-missing')}: {{numref}}`fig-missing`: "
                     f"{NO_LABEL}"]


def test_targets_from_every_page_kind_resolve(tmp_path):
    # a figure named in code-cell metadata, a figure directive, an equation, a section
    found, _ = broken(tmp_path, section("""
        {numref}`fig-first-parabola`, {numref}`fig-first-diagram`, {eq}`eq-first-parabola`,
        {ref}`sec-first-steps`, {cite:p}`cauchy1847methode`.
        """))
    assert found == []


def test_eq_needs_an_equation_label(tmp_path):
    found, text = broken(tmp_path, section("By {eq}`eq-missing` and {eq}`sec-first-steps`."))
    line = line_of(text, "eq-missing")
    assert found == [
        f"{SECTION}:{line}: {{eq}}`eq-missing`: no equation has this label (`$$ ... $$ "
        "(label)`)",
        f"{SECTION}:{line}: {{eq}}`sec-first-steps`: no equation has this label (`$$ ... $$ "
        "(label)`)"]


def test_unknown_citation_key_among_several(tmp_path):
    found, text = broken(tmp_path, section("As shown {cite}`cauchy1847methode,nobody2020`."))
    assert found == [f"{SECTION}:{line_of(text, 'nobody2020')}: {{cite}}`nobody2020`: no "
                     "entry with this key in references.bib"]


def test_duplicate_label(tmp_path):
    found, text = broken(tmp_path, section("""
        (sec-first-steps)=
        ## A Second Target Named Like the First Section
        """))
    first = tmp_path / "book" / "chapters/01-basics/first-steps.md"
    assert found == [f"{SECTION}:{line_of(text, '(sec-first-steps)=')}: label "
                     f"'sec-first-steps' is defined twice (first at {first}:11)"]


def test_equation_label_in_a_math_directive(tmp_path):
    found, _ = broken(tmp_path, section("""
        ```{math}
        :label: eq-second
        y = 2
        ```

        See {eq}`eq-second`.
        """))
    assert found == []


def test_figure_directive_with_missing_image_and_no_alt(tmp_path):
    found, text = broken(tmp_path, section("""
        ```{figure} img/nothing.svg
        :name: fig-nothing

        A caption.
        ```
        """))
    line = line_of(text, "{figure}")
    assert found == [
        f"{SECTION}:{line}: {{figure}} has no alt text: add `:alt:` describing the image "
        "for readers who cannot see it",
        f"{SECTION}:{line}: {{figure}} image 'img/nothing.svg' not found"]


def test_image_paths_from_the_book_root_and_with_a_wildcard(tmp_path):
    found, _ = broken(tmp_path, section("""
        ```{image} /chapters/01-basics/img/diagram.svg
        :alt: A grey box.
        ```

        ```{image} img/diagram.*
        :alt: The same box, as SVG for the web and PDF for the book.
        ```
        """))
    assert found == []


def test_markdown_and_html_images_need_alt_text(tmp_path):
    found, text = broken(tmp_path, section("""
        ![](img/diagram.svg)

        <img src="img/gone.png" alt="A gone image.">
        """))
    assert found == [
        f"{SECTION}:{line_of(text, '![]')}: image 'img/diagram.svg' has no alt text: write it "
        "between the brackets of ![...](...)",
        f"{SECTION}:{line_of(text, '<img')}: image 'img/gone.png' not found"]


def test_figure_cell_without_alt_text(tmp_path):
    found, text = broken(tmp_path, section("""
        ```{code-cell} ipython3
        ---
        mystnb:
          figure:
            caption: A line.
            name: fig-second-line
        ---
        import matplotlib.pyplot as plt

        plt.plot([0, 1])
        ```
        """))
    assert found == [f"{SECTION}:{line_of(text, '{code-cell}')}: code cell 1 makes a figure "
                     "but has no alt text: add `mystnb: image: alt:` describing it"]


def test_labels_of_pages_outside_the_toc_do_not_count(tmp_path):
    book = book_copy(tmp_path)
    write(book, "chapters/01-basics/orphan.md", "(sec-orphan)=\n# Orphan\n")
    text = write(book, SECTION, section("See {ref}`sec-orphan`.")).read_text()
    found = problems(book)
    assert f"{SECTION}:{line_of(text, 'sec-orphan')}: {{ref}}`sec-orphan`: {NO_LABEL}" in found

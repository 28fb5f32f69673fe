"""Exported notebooks hold plain CommonMark: ``tools.render.commonmark`` rewrites MyST
labels, roles and directives, with the website's numbers from ``tools.render.website``."""

from __future__ import annotations

import base64
import html
import re
import subprocess
import sys

import nbformat
import pytest
from conftest import REPO, build, make_book, output_of
from markdown_it import MarkdownIt
from nbconvert import HTMLExporter

from tools.core.mystnb import book_settings, read_as_mystnb
from tools.core.toc import read_toc
from tools.render.colab import colab_ready
from tools.render.commonmark import to_commonmark
from tools.render.website import Target, Website, build_website, website

BASE = "https://example.org/book/"
DOC = "chapters/ch/page"  # the page the unit tests convert cells of
SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4"/></svg>'
REQUIREMENT = "dlbook==0.1.0"
# A role's name in braces, not a LaTeX argument such as the `ref` of `\textrm{ref}`.
ROLE = re.compile(r"(?<![A-Za-z])\{(?:ref|numref|eq|doc|cite(?::\w+)?|math|sub|sup|abbr)\}")
LABEL_LINE = re.compile(r"^\s*\([^()\s]+\)=\s*$", re.M)
COLON_DIRECTIVE = re.compile(r"^[\s>]*:{3,}\s*\{", re.M)
CODE = re.compile(r"<code[^>]*>.*?</code>", re.S)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Website:
    """A hand-made website: one page per kind of target, with known numbers."""
    book = tmp_path_factory.mktemp("site")
    (book / "chapters/ch/img").mkdir(parents=True)
    (book / "chapters/ch/img/plot.svg").write_text(SVG)
    chapter = Target("chapters/ch/index", "", "section", (7,), "Convolutional Networks")
    page = Target(DOC, "", "section", (7, 2), "Convolutions for Images")
    preface = Target("book/preface", "", "section", (), "Preface")
    references = Target("book/bibliography", "", "section", (), "Bibliography")
    return Website(
        book=book, base_url=BASE, md_config=book_settings(REPO).md_config,
        pages={t.docname: t for t in (chapter, page, preface, references)},
        labels={
            "sec-conv": Target(DOC, "sec-conv", "section", (7, 2), "Convolutions for Images"),
            "sec-cnn": Target("chapters/ch/index", "sec-cnn", "section", (7,),
                              "Convolutional Networks"),
            "sec-preface": Target("book/preface", "sec-preface", "section", (), "Preface"),
            "fig-conv": Target(DOC, "fig-conv", "figure", (7, 2, 1), "A kernel."),
            "table-sizes": Target("chapters/ch/index", "table-sizes", "table", (7, 1), "Sizes"),
        },
        equations={
            "eq-corr": Target(DOC, "equation-eq-corr", "equation", (7, 2, 1)),
            "eq-far": Target("chapters/lin/model", "equation-eq-far", "equation", (3, 1, 2)),
        },
        citations={"rumelhart1986learning": ("Rumelhart et al.", "1986"),
                   "kingma2015adam": ("Kingma and Ba", "2015")},
        bibliography="book/bibliography",
    )


def convert(site: Website, text: str) -> str:
    return to_commonmark(text, site, DOC).text


def link(text: str, path: str) -> str:
    return f"[{text}]({BASE}{path})"


CONV = link("Section 7.2, Convolutions for Images", "chapters/ch/page.html#sec-conv")
BIB = f"{BASE}book/bibliography.html"


def test_labels_comments_and_breaks_are_dropped(site):
    assert convert(site, "(sec-conv)=\n# Title\n\n% a comment\nText\n\n+++\n") == \
        "# Title\n\nText\n\n"
    assert convert(site, "(sec-conv)=\r\n# Title\r\n") == "# Title\n"


@pytest.mark.parametrize(("source", "expected"), [
    ("{ref}`sec-conv` shows", f"{CONV} shows"),
    ("{ref}`sec-cnn`",
     link("Chapter 7, Convolutional Networks", "chapters/ch/index.html#sec-cnn")),
    ("{ref}`sec-preface`", link("Preface", "book/preface.html#sec-preface")),
    ("{ref}`this part <sec-conv>`", link("this part", "chapters/ch/page.html#sec-conv")),
    ("{numref}`fig-conv`", link("Figure 7.2.1", "chapters/ch/page.html#fig-conv")),
    ("{ref}`fig-conv`", link("Figure 7.2.1", "chapters/ch/page.html#fig-conv")),
    ("{numref}`Plot %s <fig-conv>`", link("Plot 7.2.1", "chapters/ch/page.html#fig-conv")),
    ("{numref}`table-sizes`", link("Table 7.1", "chapters/ch/index.html#table-sizes")),
    ("{doc}`index`", link("Chapter 7, Convolutional Networks", "chapters/ch/index.html")),
    ("{doc}`The preface </book/preface>`", link("The preface", "book/preface.html")),
    ("{ref}`Sec-Conv`", link("Section 7.2, Convolutions for Images",
                             "chapters/ch/page.html#sec-conv")),  # names ignore case
    ("{ref}`no-such-label`", "no-such-label"),
])
def test_references_link_to_the_website_with_its_numbers(site, source, expected):
    assert convert(site, source) == expected


def test_equation_references_are_numbers(site):
    assert convert(site, "By {eq}`eq-corr`.") == "By (7.2.1)."  # on this page: tagged below
    assert convert(site, "By {eq}`eq-far`.") == \
        f"By {link('(3.1.2)', 'chapters/lin/model.html#equation-eq-far')}."


def test_citations_are_author_year_links_to_the_bibliography(site):
    assert convert(site, "{cite}`rumelhart1986learning,kingma2015adam`") == \
        f"[[Rumelhart et al., 1986]({BIB}), [Kingma and Ba, 2015]({BIB})]"
    assert convert(site, "{cite:t}`kingma2015adam` showed") == \
        f"Kingma and Ba [[2015]({BIB})] showed"
    rendered = MarkdownIt("commonmark").render(convert(site, "{cite:p}`kingma2015adam`"))
    assert rendered == f'<p>[<a href="{BIB}">Kingma and Ba, 2015</a>]</p>\n'


def test_equation_labels_become_tags(site):
    assert convert(site, "$$\ny = x\n$$ (eq-corr)\n") == "$$\ny = x\n\\tag{7.2.1} $$\n"
    assert convert(site, "$$ y = x $$ (eq-corr)") == "$$ y = x \\tag{7.2.1} $$"
    # a numbered environment numbers itself: no second tag
    align = "$$\n\\begin{align} a &= b \\end{align}\n$$ (eq-corr)\n"
    assert convert(site, align) == "$$\n\\begin{align} a &= b \\end{align}\n$$\n"
    assert convert(site, "```{math}\n:label: eq-corr\n\ny = x\n```\n") == \
        "$$\ny = x\n\\tag{7.2.1}\n$$\n"
    assert convert(site, ":::{math}\na\n\nb\n:::") == \
        "$$\n\\begin{aligned}\n\\begin{split}a\\end{split} \\\\\n\\begin{split}b\\end{split}\n" \
        "\\end{aligned}\n$$"


def test_admonitions_become_quoted_blocks(site):
    assert convert(site, ":::{note}\nSee {ref}`sec-conv`.\n:::\n") == \
        f"> **Note**\n>\n> See {CONV}.\n"
    assert convert(site, "```{warning}\nOne.\n\nTwo.\n```") == \
        "> **Warning**\n>\n> One.\n>\n> Two."
    assert convert(site, "```{admonition} Careful now\n:class: tip\nText\n```") == \
        "> **Careful now**\n>\n> Text"
    assert convert(site, "- item\n\n  :::{tip}\n  Inside a list.\n  :::\n") == \
        "- item\n\n  > **Tip**\n  >\n  > Inside a list.\n"
    assert convert(site, "> :::{seealso}\n> Quoted.\n> :::\n") == \
        "> > **See also**\n> >\n> > Quoted.\n"


def test_figures_carry_their_image_and_caption(site):
    converted = to_commonmark("```{figure} img/plot.svg\n:name: fig-conv\n:alt: A plot.\n\n"
                              "A kernel, from {ref}`sec-conv`.\n\nA legend.\n```\n", site, DOC)
    assert converted.text == (f"![A plot.](attachment:plot.svg)\n\n**Figure 7.2.1:** A kernel,"
                              f" from {CONV}.\n\nA legend.\n")
    data = converted.attachments["plot.svg"]["image/svg+xml"]
    assert base64.b64decode(data).decode() == SVG
    remote = convert(site, ":::{figure} https://example.org/a.png\n:alt: Remote.\n:::")
    assert remote == "![Remote.](https://example.org/a.png)"


def test_other_directives(site):
    assert convert(site, "```{code-block} python\nprint(1)\n```") == "```python\nprint(1)\n```"
    assert convert(site, "```{toctree}\n:maxdepth: 1\n\nindex\nThe preface </book/preface>\n```") \
        == (f"- {link('Chapter 7, Convolutional Networks', 'chapters/ch/index.html')}\n"
            f"- {link('The preface', 'book/preface.html')}")
    assert convert(site, "```{bibliography}\n```") == \
        f"*This part of the page is shown on the {link('website', 'chapters/ch/page.html')}.*"


def test_other_roles_and_what_is_left_alone(site):
    assert convert(site, "{math}`x^2` and H{sub}`2`O") == "$x^2$ and H<sub>2</sub>O"
    code = "`` {ref}`sec-conv` `` stays, ```{note}``` too, {ref}`sec-conv` not"
    assert convert(site, code) == f"`` {{ref}}`sec-conv` `` stays, ```{{note}}``` too, {CONV} not"
    assert convert(site, "```python\n{ref}`sec-conv`\n```") == "```python\n{ref}`sec-conv`\n```"
    assert convert(site, "[see {ref}`sec-conv`](https://a.example)") == \
        "[see Section 7.2, Convolutions for Images](https://a.example)"  # no link in a link


def test_converting_twice_changes_nothing(site):
    source = ("(sec-conv)=\n# T\n\n{ref}`sec-conv`, {eq}`eq-far`, {cite}`kingma2015adam`.\n\n"
              "$$\nx\n$$ (eq-corr)\n\n:::{note}\nN\n:::\n\n```{figure} img/plot.svg\n"
              ":name: fig-conv\n:alt: A.\n\nC.\n```\n")
    once = convert(site, source)
    assert once != source
    assert convert(site, once) == once


def test_colab_ready_converts_every_markdown_cell():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("(sec-x)=\n# X\n\nSee {ref}`sec-conv-for-images`."),
        nbformat.v4.new_code_cell("x = 1  # {ref}`sec-conv-for-images` in code stays"),
    ])
    doc = "chapters/07-cnn/padding-stride"
    ready = colab_ready(nb, REQUIREMENT, REPO, doc)
    site = website(REPO)
    target = site.labels["sec-conv-for-images"]
    assert site.base_url.startswith("https://")
    assert ready.cells[1].source == (f"# X\n\nSee [Section {target.numbered}, {target.title}]"
                                     f"({site.url(target, doc)}).")
    assert ready.cells[2].source == nb.cells[1].source
    nb.cells[0].source += "\n\n$$\nx\n$$ (eq-x)"
    bare = colab_ready(nb, REQUIREMENT)  # where the page is not known: no numbers, no links
    assert bare.cells[1].source == "# X\n\nSee sec-conv-for-images.\n\n$$\nx\n$$"


def test_website_is_computed_again_when_a_page_changes(tmp_path):
    book = make_book(tmp_path / "book", "commonmark")
    first = website(book)
    assert website(book) is first
    page = book / "two" / "only.md"
    page.write_text(page.read_text().replace("(sec-only)=", "(sec-only-renamed)="))
    second = website(book)
    assert second is not first
    assert "sec-only-renamed" in second.labels and "sec-only-renamed" not in first.labels


# --- the whole real book, without a build -------------------------------------------------


def site_docname(site: Website, href: str) -> str | None:
    """The TOC page a link to the website points at (None: not a link to the site)."""
    if not href.startswith(site.base_url):
        return None
    path = href[len(site.base_url):].split("#")[0]
    assert path.endswith(".html"), href
    return path.removesuffix(".html")


def leftovers(markdown: str, rendered: str) -> list[str]:
    """MyST syntax that a CommonMark reader would show as text."""
    text = CODE.sub("", rendered)  # code spans and blocks may show anything
    found = [m.group(0) for m in ROLE.finditer(html.unescape(text))]
    found += ["```{" for _ in re.finditer(r'class="language-\{', rendered)]
    found += [m.group(0) for m in COLON_DIRECTIVE.finditer(markdown)]
    found += [m.group(0) for m in LABEL_LINE.finditer(markdown)]
    found += [m.group(0) for m in re.finditer(r"\$\$\s*\([\w:-]+\)", markdown)]
    return found


@pytest.fixture(scope="module")
def real_cells() -> list[tuple[str, str]]:
    """(docname, source) of every Markdown cell of every notebook page of the book."""
    settings = book_settings(REPO)
    cells = []
    for entry in read_toc(REPO).entries:
        notebook = read_as_mystnb(entry.path, settings) if entry.path else None
        for cell in notebook.cells if notebook else []:
            if cell.cell_type == "markdown":
                cells.append((entry.name, cell.source))
    return cells


def test_every_markdown_cell_of_the_book_becomes_commonmark(real_cells):
    site = website(REPO)
    pages = {e.name for e in read_toc(REPO).entries}
    commonmark = MarkdownIt("commonmark")
    roles = links = 0
    for doc, source in real_cells:
        converted = to_commonmark(source, site, doc).text
        rendered = commonmark.render(converted)
        assert leftovers(converted, rendered) == [], (doc, converted)
        roles += len(re.findall(r"\{(?:ref|numref|doc|cite)\}`", source))
        for href in re.findall(r'<a href="([^"]*)"', rendered):
            target = site_docname(site, html.unescape(href))
            if target is not None:
                assert target in pages, (doc, href)  # a page the site build makes
                links += 1
    assert roles > 100 and links >= roles  # the book's references did become links


def test_a_real_page_renders_with_nbconvert(real_cells):
    site = website(REPO)
    doc, _ = next((d, s) for d, s in real_cells
                  if all(r in s for r in ("{ref}`", "{cite}`", "{eq}`")))
    settings = book_settings(REPO)
    page = next(e.path for e in read_toc(REPO).entries if e.name == doc)
    ready = colab_ready(read_as_mystnb(page, settings), REQUIREMENT, REPO, doc)
    body, _ = HTMLExporter().from_notebook_node(ready)
    cells = [c.source for c in ready.cells if c.cell_type == "markdown"]
    assert leftovers("\n".join(cells), body) == []
    hrefs = [html.unescape(h) for h in re.findall(r'<a href="([^"]*)"', body)]
    on_site = [h for h in hrefs if site_docname(site, h) is not None]
    assert on_site and all(site_docname(site, h) in site.pages for h in on_site)
    assert f'href="{site.url(site.pages[site.bibliography], doc)}"' in body


# --- a built fixture book: the numbers are the site's ------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The commonmark fixture book, built (HTML) and exported (notebooks)."""
    book = make_book(tmp_path_factory.mktemp("cmbook") / "book", "commonmark")
    result = build(book)
    assert result.returncode == 0, output_of(result)[-4000:]
    exported = subprocess.run([sys.executable, "-m", "tools", "notebooks", "--book",
                               str(book)], cwd=REPO, capture_output=True, text=True,
                              timeout=600)
    assert exported.returncode == 0, exported.stderr
    return book


def html_of(book, docname: str) -> str:
    return (book / "_build" / "html" / f"{docname}.html").read_text(encoding="utf-8")


def shown_number(page: str, target: Target) -> str | None:
    """The number the built page shows for ``target`` (None: no number shown)."""
    at = page.find(f'id="{target.anchor}"')
    assert at >= 0, f"no element with id {target.anchor}"
    patterns = {
        "section": r'<h[1-6][^>]*>(?:<span class="section-number">([\d.]+)\. </span>)?',
        "figure": r'<span class="caption-number">Fig\. ([\d.]+) </span>',
        "table": r'<span class="caption-number">Table ([\d.]+) </span>',
        "equation": r'<span class="eqno">\(([\d.]+)\)',
    }
    match = re.compile(patterns[target.kind]).search(page, at)
    return match.group(1) if match else None


@pytest.mark.slow
def test_numbers_and_anchors_are_those_of_the_built_site(built):
    site = build_website(built)
    assert {t.kind for t in site.labels.values()} >= {"section", "figure", "table"}
    for label, target in [*site.labels.items(), *site.equations.items()]:
        page = html_of(built, target.docname)
        assert (shown_number(page, target) or "") == target.numbered, label
    for docname, target in site.pages.items():  # the page's own title, not the theme's
        title = next(h for h in re.findall(r"<h1>(.*?)</h1>", html_of(built, docname), re.S)
                     if 'class="headerlink"' in h)
        number = re.match(r'<span class="section-number">([\d.]+)\. </span>', title)
        assert (number.group(1) if number else "") == target.numbered, docname
    # what the fixture is there to show
    assert site.pages["one/first"].number == (1, 2)  # after the chapter page's own heading
    assert site.pages["two/only"].number == (2, 1)  # parts continue the chapter numbers
    assert site.labels["fig-first-curve"].number == (1, 2, 2)  # a code cell's figure
    assert site.labels["fig-preface-dot"].number == (1,)  # unnumbered front matter


@pytest.mark.slow
def test_citations_read_as_on_the_built_site(built):
    site = build_website(built)
    page = html.unescape(re.sub(r"</?em>", "", html_of(built, "one/first"))).replace("\xa0", " ")
    for key in ("cauchy1847methode", "rumelhart1986learning", "vandermaaten2008visualizing"):
        who, year = site.citations[key]
        assert f">{who}, {year}</a>" in page, key
    assert "Pérez and Granger" in page and site.citations["perez2007ipython"] == (
        "Pérez and Granger", "2007")


@pytest.mark.slow
def test_exported_notebook_renders_with_working_links(built):
    site = build_website(built)
    notebook = nbformat.read(built / "_build/notebooks/one/first.ipynb", as_version=4)
    nbformat.validate(notebook)  # attachments included
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    body, _ = HTMLExporter().from_notebook_node(notebook)
    assert leftovers(markdown, body) == []
    hrefs = {html.unescape(h) for h in re.findall(r'<a href="([^"]*)"', body)}
    on_site = [h for h in hrefs if site_docname(site, h) is not None]
    assert len(on_site) >= 8
    for href in on_site:
        page, _, anchor = href[len(site.base_url):].partition("#")
        built_page = built / "_build" / "html" / page
        assert built_page.is_file(), href
        assert not anchor or f'id="{anchor}"' in built_page.read_text(encoding="utf-8"), href
    assert 'src="data:image/svg+xml;base64,' in body  # the figure travels in the notebook
    assert "Figure 1.2.1:" in markdown and "\\tag{1.2.1}" in markdown
    assert "> **Note**" in markdown

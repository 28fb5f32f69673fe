"""The good fixture book builds and its pages carry math, SVG figures, refs and citations."""

from __future__ import annotations

import re

HTML = "_build/html"


def page(book, name: str) -> str:
    return (book / HTML / f"{name}.html").read_text(encoding="utf-8")


def test_every_toc_page_is_built(good_book):
    for name in ("index", "chapter/index", "chapter/sample", "bibliography"):
        assert (good_book / HTML / f"{name}.html").is_file(), name


def test_math_is_present_and_numbered(good_book):
    html = page(good_book, "chapter/sample")
    assert "f(x) = x^2 + 1" in html
    assert re.search(r'id="equation-eq-sample-parabola"', html)
    # The {eq} role resolved to the equation's number, not to the raw label.
    assert re.search(r'href="#equation-eq-sample-parabola"', html)


def test_figure_is_svg_with_alt_text_and_number(good_book):
    html = page(good_book, "chapter/sample")
    images = re.findall(r'<img alt="([^"]+)" src="([^"]+)"', html)
    figures = [(alt, src) for alt, src in images if "_images/" in src]
    assert figures, "no figure image in the page"
    alt, src = figures[0]
    assert alt == "A parabola with its minimum at x equals zero."
    assert src.endswith(".svg")
    assert (good_book / HTML / "chapter" / src).resolve().is_file()
    assert re.search(r"Fig\. 1\.1\.1", html)


def test_cross_reference_and_citation_resolved(good_book):
    home = page(good_book, "index")
    assert 'href="chapter/sample.html#sec-sample"' in home
    sample = page(good_book, "chapter/sample")
    assert "Cauchy, 1847" in sample
    assert "Méthode générale" in page(good_book, "bibliography")


def test_math_ships_with_the_site(good_book):
    html = page(good_book, "chapter/sample")
    assert 'src="../_static/mathjax/tex-mml-chtml.js' in html
    assert "cdn.jsdelivr" not in html
    fonts = good_book / HTML / "_static/mathjax/output/chtml/fonts/woff-v2"
    assert any(fonts.glob("*.woff"))


def test_launch_and_download_buttons(good_book):
    html = page(good_book, "chapter/sample")
    # Colab opens the executed notebook that publishing pushes to the `notebooks` branch;
    # the download button serves the executed copy shipped with the site.
    assert ("colab.research.google.com/github/dl-by-doing/dl-by-doing/blob/notebooks/"
            "chapter/sample.ipynb") in html
    assert "_notebooks/chapter/sample.ipynb" in html
    assert (good_book / HTML / "_notebooks/chapter/sample.ipynb").is_file()


def test_no_change_rebuild_keeps_output(good_book):
    from conftest import build, output_of

    before = (good_book / HTML / "chapter/sample.html").read_text()
    result = build(good_book)
    assert result.returncode == 0, output_of(result)[-3000:]
    assert "Executing notebook" not in output_of(result)
    assert (good_book / HTML / "chapter/sample.html").read_text() == before

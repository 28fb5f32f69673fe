"""`make pdf` on the good fixture book gives a real PDF: pages, headings, bibliography."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from conftest import build, output_of

pytestmark = pytest.mark.slow


def pdf_text(pdf) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout


def pdf_pages(pdf) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    return int(next(ln.split()[-1] for ln in info.splitlines() if ln.startswith("Pages:")))


@pytest.fixture(scope="module")
def fixture_pdf(good_book):
    if shutil.which("xelatex") is None or shutil.which("pdftotext") is None:
        pytest.fail("the PDF test needs TeX and poppler-utils: run `make test-deps`")
    result = build(good_book, "pdf")
    assert result.returncode == 0, output_of(result)[-4000:]
    return good_book / "_build" / "latex" / "book.pdf"


def test_pdf_has_title_toc_and_sections(fixture_pdf):
    assert pdf_pages(fixture_pdf) >= 5
    text = pdf_text(fixture_pdf)
    assert "Deep Learning by Doing" in text
    assert "CONTENTS" in text
    assert "Sample Section Heading" in text


def test_pdf_numbers_equations_and_keeps_vector_figures(fixture_pdf):
    text = pdf_text(fixture_pdf)
    assert "(1.1)" in text, "the display equation carries no number"
    latex_dir = fixture_pdf.parent
    tex = (latex_dir / "book.tex").read_text(encoding="utf-8")
    figures = re.findall(r"\\sphinxincludegraphics(?:\[[^]]*\])?\{\{([^}]+)\}(\.\w+)\}", tex)
    assert figures, "no figure in the LaTeX source"
    assert {ext for _, ext in figures} == {".pdf"}, figures
    assert any(name.endswith("arrow") for name, _ in figures), "the SVG figure is missing"
    assert "from input to output" in text  # its caption: the SVG was converted, not dropped


def test_pdf_has_bibliography_entry(fixture_pdf):
    text = pdf_text(fixture_pdf)
    assert "Cauchy" in text and "1847" in text

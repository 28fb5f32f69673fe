"""The real book: it executes (smoke profile) and renders, and its math renders offline."""

from __future__ import annotations

import re
import subprocess
import sys

import browser
import pytest
from conftest import ARTIFACTS, REPO, output_of

from tools.core.toc import toc_sources

pytestmark = pytest.mark.slow
SITE = REPO / "_build" / "html"


@pytest.fixture(scope="session")
def real_site():
    result = subprocess.run(
        [sys.executable, "-m", "tools", "html", "--profile", "smoke"],
        cwd=REPO, capture_output=True, text=True, timeout=2400,
    )
    assert result.returncode == 0, output_of(result)[-6000:]
    return SITE


def test_every_toc_page_is_rendered(real_site):
    for source in toc_sources(REPO):
        html = real_site / source.relative_to(REPO).with_suffix(".html")
        assert html.is_file(), f"{source} was not rendered"


def test_executed_pages_have_outputs_and_no_errors(real_site):
    for source in toc_sources(REPO):
        html = (real_site / source.relative_to(REPO).with_suffix(".html")).read_text()
        assert "Traceback (most recent call last)" not in html, source
        assert "cell_output" in html or "{code-cell}" not in source.read_text(), source


@pytest.mark.parametrize("name", ["index", "chapters/02-preliminaries/tensors"])
def test_math_renders_offline_in_chromium(real_site, name):
    if browser.chromium() is None:
        pytest.fail("the browser test needs Debian's chromium: run `make test-deps`")
    page = real_site / f"{name}.html"
    dom = browser.rendered_dom(page)
    slug = name.replace("/", "-")
    browser.screenshot(page, ARTIFACTS / f"{slug}.png")
    assert re.search(r"<mjx-container[^>]*jax=\"CHTML\"", dom), "MathJax did not render"
    body = dom.split("<article", 1)[-1]
    assert "\\(" not in body and "\\[" not in body, "raw TeX left on the page"
    assert "Deep Learning by Doing" in dom


def test_smoke_pages_say_what_was_reduced_and_that_the_reader_runs_in_full(real_site):
    """The note ending each page states the page's own declared reductions."""
    from tools.core.notebook import read_notebook
    from tools.execution.kernel_env import smoke_settings
    from tools.sphinx.execution import smoke_summary

    declared = 0
    for source in toc_sources(REPO):
        if source.suffix != ".md" or "{code-cell}" not in source.read_text():
            continue
        html = (real_site / source.relative_to(REPO).with_suffix(".html")).read_text()
        assert "nothing is reduced and you get the full run" in html, source
        front = read_notebook(source).metadata.get("smoke")
        declared += front is not None
        assert smoke_summary(smoke_settings(front)) in html, source
    assert declared >= 8  # the chapter 8 networks declare their own

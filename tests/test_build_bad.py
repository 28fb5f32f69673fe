"""Bad input stops the build with a non-zero exit, names the file, and loses nothing."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import BOOKS, build, output_of

CASES = {
    # fixture layer: (file the message must name, a pattern the message must contain)
    "bad-cell": ("chapter/sample.md", r"ValueError: deliberate failure"),
    "bad-syntax": ("chapter/sample.md", r"sample\.md:2[0-9]: code cell 1: SyntaxError"),
    "bad-ref": ("index.md", r"index\.md:4: WARNING: undefined label: 'sec-nowhere'"),
    "bad-image": ("index.md", r"index\.md:\d+: WARNING: image file not readable"),
    "bad-toc": ("_toc.yml", r"_toc\.yml:1[01]: malformed YAML"),
}


@pytest.mark.parametrize("layer", sorted(CASES))
def test_bad_input_fails_clearly_and_keeps_the_site(built_copy, layer):
    named_file, pattern = CASES[layer]
    site = built_copy / "_build" / "html"
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*.html")}
    shutil.copytree(BOOKS / layer, built_copy, dirs_exist_ok=True)

    result = build(built_copy)
    log = output_of(result)

    assert result.returncode != 0, log[-3000:]
    assert str(built_copy / named_file) in log or named_file in log, log[-3000:]
    assert re.search(pattern, log), log[-3000:]
    assert "left as it was" in log
    after = {p.relative_to(site): p.read_bytes() for p in site.rglob("*.html")}
    assert after == before, "the previous good site was modified"
    assert not (built_copy / "_build" / "html.new").exists()

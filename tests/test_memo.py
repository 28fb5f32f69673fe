"""What rebuilds remember between runs: per-file memos, stable digests, YAML read once,
the bibliography style's memo, publishing by hard links, and the output scanner."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from pybtex.database import parse_string
from pybtex.style.formatting.plain import Style as PlainStyle

from tools.core import memo as memo_module
from tools.core.memo import FileMemo, Memo, digest_of, file_status
from tools.core.yamlio import parse, read_yaml
from tools.render.build import stage_copy
from tools.render.jupyterbook import scanned_output
from tools.sphinx import bibtex

PROJECT = Path(__file__).resolve().parents[1]


def counting(result):
    calls = []

    def compute(path: Path):
        calls.append(path)
        return {"value": result, "text": path.read_text()}

    return compute, calls


def test_a_value_is_computed_again_only_when_its_file_or_extra_key_changes(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("one")
    compute, calls = counting(1)
    memo = FileMemo(tmp_path, "test")
    assert memo.value(page, compute, extra=3)["text"] == "one"
    memo.save()
    again = FileMemo(tmp_path, "test")  # as the next run reads it
    assert again.value(page, compute, extra=3)["text"] == "one"
    assert len(calls) == 1
    assert again.value(page, compute, extra=4)["text"] == "one"  # another place in the TOC
    assert len(calls) == 2
    before = page.stat()
    page.write_text("two")  # same size, old modification time put back
    os.utime(page, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert again.value(page, compute, extra=4)["text"] == "two"  # the change time moved
    assert len(calls) == 3


def test_a_remembered_value_is_a_copy_the_caller_may_change(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("one")
    compute, calls = counting(1)
    memo = FileMemo(tmp_path, "test")
    memo.value(page, compute)["value"] = "changed by the caller"
    assert memo.value(page, compute)["value"] == 1 and len(calls) == 1


def test_a_new_context_or_new_code_starts_afresh(tmp_path: Path, monkeypatch):
    page = tmp_path / "page.md"
    page.write_text("one")
    compute, calls = counting(1)
    first = FileMemo(tmp_path, "test", context="settings A")
    first.value(page, compute)
    first.save()
    FileMemo(tmp_path, "test", context="settings B").value(page, compute)
    assert len(calls) == 2
    monkeypatch.setattr(memo_module, "code_digest", lambda: "the tools changed")
    FileMemo(tmp_path, "test", context="settings A").value(page, compute)
    assert len(calls) == 3


def test_an_unreadable_memo_is_an_empty_one(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("one")
    compute, calls = counting(1)
    memo = FileMemo(tmp_path, "test")
    memo.value(page, compute)
    memo.save()
    memo.path.write_bytes(memo.path.read_bytes()[:20])  # truncated, as by a crash
    assert FileMemo(tmp_path, "test").value(page, compute)["text"] == "one"
    assert len(calls) == 2


def test_a_keyed_memo_needs_the_same_check(tmp_path: Path):
    memo = Memo(tmp_path, "keyed")
    memo.put("key", "check 1", [1, 2])
    memo.save()
    again = Memo(tmp_path, "keyed")
    assert again.get("key", "check 1") == (True, [1, 2])
    assert again.get("key", "check 2") == (False, None)
    assert again.get("other", "check 1") == (False, None)


def test_a_memo_in_a_folder_that_cannot_be_written_costs_nothing_but_time(tmp_path: Path):
    (tmp_path / "_build").write_text("a file where the folder should be")
    memo = Memo(tmp_path, "keyed")
    memo.put("key", None, 1)
    memo.save()  # no exception
    assert Memo(tmp_path, "keyed").get("key") == (False, None)


@dataclass(frozen=True)
class Block:
    names: frozenset
    path: Path


def test_a_digest_is_the_same_in_every_process():
    value = [Block(frozenset({"alpha", "beta", "gamma", "delta"}), Path("a/b.md")), {"k": 1}]
    script = ("import sys; sys.path[:0] = [{tests!r}, {root!r}]\n"
              "from pathlib import Path\nfrom test_memo import Block\n"
              "from tools.core.memo import digest_of\n"
              "print(digest_of([Block(frozenset({{'alpha', 'beta', 'gamma', 'delta'}}), "
              "Path('a/b.md')), {{'k': 1}}]))").format(tests=str(PROJECT / "tests"),
                                                        root=str(PROJECT))
    digests = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env={**os.environ, "PYTHONHASHSEED": seed},
                              check=True).stdout.strip() for seed in ("1", "2", "3")}
    assert digests == {digest_of(value)}
    assert digest_of([Block(frozenset({"alpha"}), Path("a/b.md")), {"k": 1}]) != digest_of(value)


def test_file_status_changes_with_every_write(tmp_path: Path):
    path = tmp_path / "f"
    path.write_text("x")
    before = file_status(path)
    path.write_text("y")
    assert file_status(path) != before


def test_yaml_is_read_once_per_file_version_and_errors_read_as_pyyaml_words_them(tmp_path):
    path = tmp_path / "_toc.yml"
    path.write_text("root: index\nparts:\n  - caption: A\n")
    node, data = read_yaml(path)
    assert data == {"root": "index", "parts": [{"caption": "A"}]}
    assert node.value[0][0].start_mark.line == 0
    data["root"] = "changed by the caller"
    assert read_yaml(path)[1]["root"] == "index"
    path.write_text("root: other\n")
    assert read_yaml(path)[1] == {"root": "other"}
    bad = "root: index\nparts: [unclosed\n"
    with pytest.raises(yaml.YAMLError) as ours:
        parse(bad)
    with pytest.raises(yaml.YAMLError) as pure:
        yaml.safe_load(bad)
    assert str(ours.value) == str(pure.value)


BIB = """@article{smith2001,
  author = {Smith, Jane and Doe, John},
  title = {A Study of {Things}},
  journal = {Journal of Results},
  year = {2001},
  volume = {3},
  pages = {1--10}
}
"""


def test_the_bibliography_style_formats_as_plain_and_remembers(tmp_path, monkeypatch):
    entry = parse_string(BIB, "bibtex").entries["smith2001"]
    plain = PlainStyle().format_entry("1", entry).text.render_as("text")
    memo = Memo(tmp_path, "bibtex")
    monkeypatch.setattr(bibtex, "_memo", memo)
    calls = []
    original = PlainStyle.format_entry

    def counted(self, label, entry, bib_data=None):
        calls.append(label)
        return original(self, label, entry, bib_data=bib_data)

    monkeypatch.setattr(PlainStyle, "format_entry", counted)
    style = bibtex.Style()
    assert style.format_entry("1", entry).text.render_as("text") == plain
    assert style.format_entry("1", entry).text.render_as("text") == plain
    assert calls == ["1"]
    edited = parse_string(BIB.replace("2001}", "2002}"), "bibtex").entries["smith2001"]
    assert "2002" in style.format_entry("1", edited).text.render_as("text")
    assert calls == ["1", "1"]


def test_publishing_links_unchanged_files_and_never_touches_the_published_ones(tmp_path):
    produced, published, staging = tmp_path / "produced", tmp_path / "html", tmp_path / "new"
    (produced / "sub").mkdir(parents=True)
    (produced / "same.html").write_text("same")
    (produced / "sub" / "changed.html").write_text("old")
    stage_copy(produced, tmp_path / "nothing-yet", published)
    (produced / "sub" / "changed.html").write_text("new version")
    (produced / "added.html").write_text("added")
    stage_copy(produced, published, staging)
    assert (staging / "same.html").stat().st_ino == (published / "same.html").stat().st_ino
    assert (staging / "sub" / "changed.html").read_text() == "new version"
    assert (published / "sub" / "changed.html").read_text() == "old"
    assert (staging / "added.html").read_text() == "added"
    assert not (published / "added.html").exists()


def test_the_scanner_sees_python_and_child_process_output_and_restores_the_streams(capfd):
    lines = []
    with scanned_output(lines.append):
        print("from python", flush=True)
        print("WARNING: from stderr", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-c", "print('from a child')"], check=True)
    print("after", flush=True)
    assert [line.strip() for line in lines] == ["from python", "WARNING: from stderr",
                                                "from a child"]
    out = capfd.readouterr().out
    assert "from a child" in out and "after" in out


def test_page_templates_are_compiled_once_into_the_memo_folder(tmp_path: Path):
    from types import SimpleNamespace

    from jinja2 import DictLoader, Environment

    from tools.sphinx.templates import _cache_templates

    environment = Environment(loader=DictLoader({"page.html": "{{ title }}!"}))
    app = SimpleNamespace(srcdir=str(tmp_path),
                          builder=SimpleNamespace(templates=SimpleNamespace(
                              environment=environment)))
    _cache_templates(app)
    assert environment.get_template("page.html").render(title="Hi") == "Hi!"
    assert list((tmp_path / "_build" / ".memo" / "jinja").iterdir())  # compiled, kept
    latex = SimpleNamespace(srcdir=str(tmp_path), builder=SimpleNamespace())
    _cache_templates(latex)  # no templates: nothing to do, no error

"""Sharded execution and cache bundles: N machines each run one shard of the fixture
book, export a bundle, and a fourth machine imports them all and renders the book with
nothing left to execute."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from test_execute import CACHE, NOTEBOOKS, edit, execute, make_book, stamps, text_outputs

from tools.execution.bundles import BundleError, export_bundle, import_bundles
from tools.execution.manifest import load_manifest
from tools.execution.shards import Shard, ShardError, parse_shard, planned_loads, split
from tools.render.build import Build, run_build

REPO = Path(__file__).resolve().parents[1]


def test_shard_syntax_counts_from_zero():
    assert parse_shard("0/4") == Shard(0, 4) and str(parse_shard(" 3 / 4 ")) == "3/4"
    for bad in ("4/4", "1", "-1/3", "a/b", "0/0"):
        with pytest.raises(ShardError, match="K/N|K must be"):
            parse_shard(bad)


def test_split_is_deterministic_complete_and_balanced():
    durations = {f"p{n}.md": float(s) for n, s in enumerate([50, 40, 30, 20, 10, 10, 5])}
    shards = split(durations, 3)
    again = split(dict(reversed(list(durations.items()))), 3)
    assert [set(s) for s in shards] == [set(s) for s in again]  # membership: order-free
    assert sorted(n for s in shards for n in s) == sorted(durations)
    loads = planned_loads(durations, 3)
    assert max(loads) / (sum(loads) / 3) <= 1.15
    assert [len(s) for s in split(dict.fromkeys("abcdefg"), 3)] == [3, 2, 2]  # by count


def bundle_of(tmp_path: Path, index: int, count: int) -> Path:
    """A clean copy of the fixture ("a clone") that runs shard index/count, exported."""
    clone = make_book(tmp_path / f"clone{index}")
    code, ran, output = execute(clone, shard=Shard(index, count))
    assert code == 0, output
    bundle = tmp_path / f"shard{index}.zip"
    export_bundle(clone, bundle, "smoke")
    return bundle


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("shards")
    return [bundle_of(root, k, 3) for k in range(3)]


def test_three_shards_cover_the_book_once(bundles):
    names = [n for b in bundles for n in zipfile.ZipFile(b).namelist() if n.endswith(".ipynb")]
    assert sorted(names) == sorted(f"notebooks/{n}.ipynb" for n in NOTEBOOKS)


@pytest.mark.slow
def test_imported_shards_render_with_nothing_to_execute(bundles, tmp_path, capfd):
    single = make_book(tmp_path / "single")
    assert execute(single)[0] == 0
    merged = make_book(tmp_path / "merged")
    assert import_bundles(merged, bundles, "smoke") == 3
    code, ran, output = execute(merged)
    assert code == 0 and ran == set() and "all 3 notebook(s) cached" in output
    assert run_build(Build(merged, "html", "smoke")) == 0
    log = capfd.readouterr().err
    assert "to run" not in log  # the build executed nothing
    for name in NOTEBOOKS:
        assert text_outputs(merged, name) == text_outputs(single, name)
    shards = {e.shard for e in load_manifest(merged / CACHE).entries.values()}
    assert shards == {"0/3", "1/3", "2/3"}
    page = (merged / "_build" / "html" / "chapter" / "standalone.html").read_text()
    assert re.search(r"smoke profile on CPU .*\(shard [012]/3 of a sharded run\)", page)
    assert "Outputs on this site come from the smoke profile" in page  # the banner


def test_refused_bundles_leave_the_cache_untouched(bundles, tmp_path):
    book = make_book(tmp_path / "book")
    assert execute(book)[0] == 0
    before = stamps(book)
    edit(book / "chapter" / "standalone.md", "```{code-cell} ipython3\n",
         "```{code-cell} ipython3\nstale = True\n")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(bundles[0].read_bytes()[:-200])
    with pytest.raises(BundleError) as err:
        import_bundles(book, [*bundles, truncated], "smoke")
    text = str(err.value)
    assert "chapter/standalone.md: refused, stale: the sources changed since (code)" in text
    assert "truncated.zip:1: not a" in text
    assert stamps(book) == before
    with pytest.raises(BundleError, match="made with the smoke profile; this import is for "
                                          "full"):
        import_bundles(book, bundles[:1], "full")
    assert stamps(book) == before


def test_the_cache_command(bundles, tmp_path):
    book = make_book(tmp_path / "book")
    done = subprocess.run([sys.executable, "-m", "tools", "cache", "import", "--book",
                           str(book), "--profile", "smoke", *map(str, bundles)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "cache import: 3 notebook(s) stored from 3 bundle(s)" in done.stderr
    assert set(stamps(book)) == set(NOTEBOOKS)


def test_dry_run_says_what_would_run_and_runs_nothing(bundles, tmp_path):
    book = make_book(tmp_path / "book")
    code, ran, output = execute(book, dry_run=True)
    assert code == 1 and ran == set() and "3 of 3 notebook(s) would run" in output
    assert "chapter/standalone.md" in output and "new" in output
    import_bundles(book, bundles, "smoke")
    code, ran, output = execute(book, dry_run=True)
    assert code == 0 and ran == set() and "all 3 notebook(s) cached" in output


def test_a_bundle_of_another_schema_is_refused(bundles, tmp_path):
    old = tmp_path / "old.zip"
    with zipfile.ZipFile(bundles[0]) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.namelist():
            data = source.read(item)
            if item == "bundle.json":
                data = data.replace(b'"schema": 1', b'"schema": 0')
            target.writestr(item, data)
    book = make_book(tmp_path / "book")
    with pytest.raises(BundleError, match=r"old.zip:1: bundle format 1, cache schema 0: "
                                          r"this version reads format 1, schema 1"):
        import_bundles(book, [old], "smoke")
    assert stamps(book) == {}


def test_the_full_profile_path_on_cpu(tmp_path):
    """No GPU here: the full profile of the fixture, sharded, bundled and merged, on CPU."""
    made = []
    for k in range(2):
        clone = make_book(tmp_path / f"clone{k}")
        code, _, output = execute(clone, profile="full", shard=Shard(k, 2))
        assert code == 0, output
        made.append(tmp_path / f"full{k}.zip")
        export_bundle(clone, made[-1], "full")
    merged = make_book(tmp_path / "merged")
    assert import_bundles(merged, made, "full") == 3
    code, ran, output = execute(merged, profile="full", dry_run=True)
    assert code == 0 and ran == set(), output
    assert {e.profile for e in load_manifest(merged / CACHE).entries.values()} == {"full"}


def test_notebooks_start_longest_first():
    from types import SimpleNamespace

    from tools.execution.engine import longest_first

    jobs = [SimpleNamespace(name=n) for n in ("short.md", "new.md", "long.md", "mid.md")]
    manifest = SimpleNamespace(entries={"short.md": SimpleNamespace(seconds=2.0),
                                        "long.md": SimpleNamespace(seconds=30.0),
                                        "mid.md": SimpleNamespace(seconds=10.0)})
    order = [job.name for job in longest_first(jobs, manifest)]
    assert order == ["long.md", "new.md", "mid.md", "short.md"]  # new: the mean, 14 s

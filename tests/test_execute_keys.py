"""Unit tests of the execution engine's pure parts: dependency graph, cache key, reader,
manifest, worker slots, profile. No kernel starts here."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from tools.core.mystnb import book_settings, read_as_mystnb
from tools.core.python import python_of_cell
from tools.execution.keys import DataFilesError, KeyParts, data_digests, explain, kernel_digest
from tools.execution.manifest import Entry, load_manifest
from tools.execution.pool import make_slots
from tools.execution.progress import Row, table
from tools.library.deps import notebook_dependencies
from tools.library.graph import normalised_digest, read_library

LIBRARY = {
    "__init__.py": '''
        """Stand-in for the generated library."""
        from .base import *
        from .models import *
        from . import other
        from .other import standalone
        ''',
    "base.py": '''
        import torch
        from torch import nn


        def helper(x):
            """A helper."""
            return x + 1


        def add_to_class(Class):
            def wrapper(obj):
                setattr(Class, obj.__name__, obj)
            return wrapper


        class Base:
            def f(self):
                return 1


        class Unused:
            pass
        ''',
    "models.py": '''
        import sys

        from .base import Base, add_to_class, helper
        import dlbook

        d2l = sys.modules[__name__]


        class Child(Base):
            def g(self):
                return 2


        def calls_helper(n):
            return helper(n)


        def shadows_helper(n):
            helper = 3
            return helper + n


        def through_package(n):
            return dlbook.base.helper(n)


        def through_alias(n):
            return d2l.calls_helper(n)


        @add_to_class(Child)
        def extra(self):
            return 3


        def lazy(n):
            from dlbook.other import standalone
            return standalone() + n


        def lazy_relative(n):
            from .other import standalone as s
            return s() + n


        def lazy_module(n):
            import dlbook.other
            return dlbook.other.standalone() + n
        ''',
    "other.py": '''
        def standalone():
            return 0
        ''',
}


@pytest.fixture()
def library(tmp_path: Path) -> Path:
    root = tmp_path / "dlbook"
    root.mkdir()
    for name, text in LIBRARY.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


def deps(root: Path, *cells: str) -> set[str]:
    return set(notebook_dependencies(list(cells), read_library(root)))


@pytest.mark.parametrize(("cells", "expected"), [
    (["import dlbook\nc = dlbook.Child()"],
     {"dlbook.models:Child", "dlbook.base:Base", "dlbook.models:Child.extra",
      "dlbook.base:add_to_class"}),
    (["from dlbook import calls_helper\ncalls_helper(1)"],
     {"dlbook.models:calls_helper", "dlbook.base:helper"}),
    (["import dlbook as d\nd.shadows_helper(1)"], {"dlbook.models:shadows_helper"}),
    (["import dlbook\ndlbook.through_package(1)"],
     {"dlbook.models:through_package", "dlbook.base:helper"}),
    (["import dlbook\ndlbook.through_alias(1)"],
     {"dlbook.models:through_alias", "dlbook.models:calls_helper", "dlbook.base:helper"}),
    (["from dlbook.other import standalone as s", "s()"], {"dlbook.other:standalone"}),
    (["import dlbook\ndlbook.lazy(1)"], {"dlbook.models:lazy", "dlbook.other:standalone"}),
    (["import dlbook\ndlbook.lazy_relative(1)"],
     {"dlbook.models:lazy_relative", "dlbook.other:standalone"}),
    (["import dlbook\ndlbook.lazy_module(1)"],
     {"dlbook.models:lazy_module", "dlbook.other:standalone"}),
    (["import dlbook.other\ndlbook.other.standalone()"], {"dlbook.other:standalone"}),
    (["import dlbook", "%time dlbook.standalone()"], {"dlbook.other:standalone"}),
    (["import torch\nx = torch.ones(2)", "import dlbook"], set()),
    (["import dlbook\nprint(dlbook.torch.ones(1))"], set()),  # an import of the library's
])
def test_notebook_dependencies(library: Path, cells, expected):
    assert deps(library, *cells) == expected


def test_bare_module_use_depends_on_everything_it_exports(library: Path):
    found = deps(library, "import dlbook\nprint(dir(dlbook))")
    assert {"dlbook.base:Unused", "dlbook.models:Child", "dlbook.other:standalone"} <= found


def test_an_edit_changes_exactly_the_dependents_digests(library: Path):
    notebooks = {"child": ["import dlbook\ndlbook.Child()"],
                 "helper": ["import dlbook\ndlbook.calls_helper(1)"],
                 "other": ["import dlbook\ndlbook.standalone()"]}
    before = {k: notebook_dependencies(v, read_library(library)) for k, v in notebooks.items()}
    base = library / "base.py"
    base.write_text(base.read_text().replace("return x + 1", "return x + 2"))
    after = {k: notebook_dependencies(v, read_library(library)) for k, v in notebooks.items()}
    assert [k for k in notebooks if before[k] != after[k]] == ["helper"]
    base.write_text(base.read_text().replace("return 1\n", "return 5\n"))
    again = {k: notebook_dependencies(v, read_library(library)) for k, v in notebooks.items()}
    assert [k for k in notebooks if after[k] != again[k]] == ["child"]


def test_digest_ignores_docstrings_comments_and_layout():
    import ast

    one = ast.parse('def f(x):\n    """Old doc."""\n    return x  # note\n')
    two = ast.parse('\n\ndef f(x):\n    """New doc, section 3.2."""\n\n    return (x)\n')
    three = ast.parse("def f(x):\n    return x + 1\n")
    assert normalised_digest(one) == normalised_digest(two) != normalised_digest(three)


def test_magics_become_python():
    assert "run_line_magic" in python_of_cell("%matplotlib inline\nx = 1")
    assert python_of_cell("x = (") is None


def test_data_digests(tmp_path: Path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("1,2\n")
    (tmp_path / "data" / "b.csv").write_text("3,4\n")
    memo: dict = {}
    found = data_digests(["data/*.csv", "data", "nothing.txt"], tmp_path, {}, memo)
    assert set(found) == {"data/*.csv:data/a.csv", "data/*.csv:data/b.csv",
                          "data:data/a.csv", "data:data/b.csv", "nothing.txt"}
    assert found["nothing.txt"] == "missing"
    (tmp_path / "data" / "a.csv").write_text("1,3\n")
    changed = data_digests(["data/*.csv"], tmp_path, {}, memo)
    assert changed["data/*.csv:data/a.csv"] != found["data/*.csv:data/a.csv"]
    mirror = tmp_path / "mirror"
    (mirror / "set").mkdir(parents=True)
    (mirror / "set" / "x.bin").write_bytes(b"\0")
    entry = "$DLBOOK_DATA_MIRROR/set/x.bin"
    assert data_digests([entry], tmp_path, {}, memo) == {entry: "mirror-unset"}
    assert len(data_digests([entry], tmp_path, {"DLBOOK_DATA_MIRROR": str(mirror)},
                            memo)[f"{entry}:set/x.bin"]) == 64
    for bad in ("data/a.csv", ["../secret"], [1]):
        with pytest.raises(DataFilesError):
            data_digests(bad, tmp_path, {}, memo)


def test_key_parts_and_reasons():
    old = KeyParts("c1", "smoke", "k", {"dlbook.m:f": "1", "dlbook.m:g": "2"}, {})
    new = KeyParts("c1", "full", "k", {"dlbook.m:f": "1", "dlbook.m:g": "3"}, {})
    assert old.key != new.key
    assert explain(None, new) == "new"
    assert explain(json.loads(json.dumps(old.__dict__)), new) == "profile smoke→full; library g"
    assert kernel_digest({"IPYTHONDIR": "/a", "X": "1"}) == \
        kernel_digest({"IPYTHONDIR": "/b", "X": "1"}) != kernel_digest({"X": "2"})


NOTEBOOK = """\
---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  name: python3
  display_name: Python 3
---
# Title

Some prose.

```{code-cell} ipython3
x = 1
```
"""


def test_cache_hash_ignores_prose_but_not_code(tmp_path: Path):
    from jupyter_cache import get_cache

    cache = get_cache(tmp_path / "cache")
    settings = book_settings(tmp_path)
    page = tmp_path / "page.md"

    def cache_hash(text: str) -> str:
        page.write_text(text)
        return cache.create_hashed_notebook(read_as_mystnb(page, settings))[1]

    first = cache_hash(NOTEBOOK)
    assert cache_hash(NOTEBOOK.replace("Some prose.", "Other prose.")) == first
    assert cache_hash(NOTEBOOK.replace("x = 1", "x = 2")) != first
    page.write_text("# Plain page\n")
    assert read_as_mystnb(page, settings) is None


def test_manifest_round_trip_and_corruption(tmp_path: Path):
    manifest = load_manifest(tmp_path)
    manifest.entries["a.md"] = Entry("k", {}, "smoke", "CPU (2 cores)", 1.5,
                                     "2026-11-27T10:00:00+00:00", "h")
    manifest.save()
    assert load_manifest(tmp_path).entries["a.md"].stamp == "k@2026-11-27T10:00:00+00:00"
    manifest.path.write_text("{not json")
    assert load_manifest(tmp_path).entries == {}


def test_slots_share_cores_or_pin_gpus(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cpu = make_slots(None, [], cores=4)
    assert len(cpu) == 4 and cpu[0].env["OMP_NUM_THREADS"] == "1"
    assert make_slots(2, [], cores=4)[1].env["OMP_NUM_THREADS"] == "2"
    gpu = make_slots(None, ["H100", "H100"], cores=16)
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in gpu] == ["0", "1"]
    assert gpu[0].device == "GPU H100" and gpu[0].env["OMP_NUM_THREADS"] == "8"
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert make_slots(1, [], cores=4)[0].env["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert make_slots(None, ["A100"], cores=2)[0].env["CUDA_VISIBLE_DEVICES"] == "3"


def test_table_lists_every_notebook():
    text = table([Row("a.md", 1.25, "executed", "code"), Row("b.md", None, "cached")])
    assert "a.md" in text and "1.2 s" in text and "cached" in text


def test_profile_resolution():
    from tools.execution.kernel_env import resolve_profile

    assert resolve_profile("full", []) == "full" and resolve_profile("smoke", ["H100"]) == "smoke"
    assert resolve_profile("auto", ["H100"]) == "full"
    assert resolve_profile("auto", []) == "smoke"
    with pytest.raises(ValueError):
        resolve_profile("huge", [])


def test_gpus_are_those_the_kernels_torch_sees(tmp_path):
    """The probe runs the kernels' Python: a torch without CUDA (a stand-in module that
    says no GPU, on a machine where nvidia-smi might list one) counts no GPU, and a torch
    that sees two devices under CUDA_VISIBLE_DEVICES counts those two."""
    from tools.execution.devices import detect_gpus

    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os, types\n"
        "_ids = [i for i in os.environ.get('CUDA_VISIBLE_DEVICES', '').split(',') if i]\n"
        "cuda = types.SimpleNamespace(is_available=lambda: bool(_ids),\n"
        "    device_count=lambda: len(_ids), get_device_name=lambda i: f'Fake {_ids[i]}')\n")
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path)}
    dev = tmp_path / "dev"  # a machine whose driver made GPU device files
    dev.mkdir()
    (dev / "nvidiactl").touch()
    assert detect_gpus(env, dev) == []
    assert detect_gpus({**env, "CUDA_VISIBLE_DEVICES": "2,5"}, dev) == ["Fake 2", "Fake 5"]
    # no device files: no kernel can see a GPU, whatever torch would say; not probed
    assert detect_gpus({**env, "CUDA_VISIBLE_DEVICES": "2,5"}, tmp_path / "none") == []


def test_kernels_get_smoke_reductions_only_under_smoke():
    from tools.execution.kernel_env import kernel_environment, page_environment, smoke_settings

    base = kernel_environment(Path("."), {"DLBOOK_SMOKE": "stale"})
    assert "DLBOOK_SMOKE" not in base and "DLBOOK_PROFILE" not in base
    smoke = page_environment(base, smoke_settings({"max_epochs": 2}))
    assert json.loads(smoke["DLBOOK_SMOKE"])["max_epochs"] == 2
    assert "DLBOOK_SMOKE" not in page_environment({**base, "DLBOOK_SMOKE": "x"}, None)


def test_data_mirror_comes_from_one_place(tmp_path, monkeypatch):
    """make and python -m tools see the same mirror, and its path is not in the key."""
    from tools.execution.kernel_env import kernel_environment

    book, mirror = tmp_path / "main", tmp_path / "shared" / "data"
    book.mkdir()
    mirror.mkdir(parents=True)
    monkeypatch.delenv("DLBOOK_DATA_MIRROR", raising=False)
    assert kernel_environment(book)["DLBOOK_DATA_MIRROR"] == str(mirror)
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", "/elsewhere")
    assert kernel_environment(book)["DLBOOK_DATA_MIRROR"] == "/elsewhere"
    assert kernel_digest(kernel_environment(book, {})) == kernel_digest(
        kernel_environment(book, {"DLBOOK_DATA_MIRROR": "/elsewhere"}))

"""Unit tests of the extraction helpers: name analysis, import layout, text edits."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from test_extract_support import REPO, files_of, page, write_book

from tools.core.problems import ProblemError
from tools.library.edit import Rewrite, indent_block, rewrite
from tools.library.imports import ImportAtom, import_lines, sort_imports
from tools.library.names import references

RUFF = Path(sys.executable).with_name("ruff")


def code(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def test_references_know_scope_and_timing():
    refs, bare = references(code("""
        @deco(A)
        class C(Base):
            x = K
            def m(self, d=D):
                y = [q for q in Q]
                return y, W, dlbook.plot(self), (lambda: L)
        """))
    found = {(r.name, r.deferred, r.owner, r.qualified) for r in refs}
    assert found == {
        ("deco", False, None, False), ("A", False, None, False),
        ("Base", False, None, False), ("K", False, None, False),
        ("D", False, None, False), ("Q", True, "m", False), ("W", True, "m", False),
        ("plot", True, "m", True), ("L", True, "m", False)}
    assert bare == []
    assert [b.line for b in references("x = dlbook\n")[1]] == [1]


def test_import_lines_are_one_plain_statement_per_distinct_atom():
    atoms = [ImportAtom("torch", "nn"), ImportAtom("os"), ImportAtom("torch", "nn"),
             ImportAtom("torch.nn", "functional", "F"), ImportAtom("numpy", None, "np")]
    assert import_lines(atoms, "  ") == [
        "  import numpy as np", "  import os", "  from torch import nn",
        "  from torch.nn import functional as F"]
    assert import_lines(reversed(atoms)) == [line.strip() for line in import_lines(atoms)]


def test_sort_imports_lays_out_imports_as_ruff_sorts_them():
    atoms = [ImportAtom("torch"), ImportAtom("torch.nn", "functional", "F"),
             ImportAtom("torch", "nn"), ImportAtom("os"), ImportAtom("os.path"),
             ImportAtom("matplotlib.pyplot", None, "plt"), ImportAtom("pathlib", "Path"),
             ImportAtom("dlbook.ch03_linear", "Module"), ImportAtom("dlbook.ch03_linear",
                                                                    "add_to_class"),
             ImportAtom("dlbook.ch03_linear", "DATA_HUB"), ImportAtom("IPython"),
             ImportAtom("torch.nn", "init"), ImportAtom("__future__", "annotations")]
    long = [ImportAtom("dlbook.ch05_multilayer_perceptrons", f"name_number_{i}")
            for i in (7, 2, 10, 0, 5, 3, 1, 4)]
    module = "\n".join(['"""Doc."""', "", *import_lines(atoms), "",
                        "def f():", '    """Doc."""', *import_lines(long, "    "),
                        "    return name_number_0", ""])
    files = {"dlbook/ch09_x.py": module, "book/api.md": "# API\nimport b\nimport a\n"}
    done = sort_imports(files)
    assert list(done) == list(files) and done["book/api.md"] == files["book/api.md"]
    assert done["dlbook/ch09_x.py"].split("\n") == [
        '"""Doc."""', "",
        "from __future__ import annotations", "",
        "import os", "import os.path", "from pathlib import Path", "",
        "import IPython", "import matplotlib.pyplot as plt", "import torch",
        "from torch import nn", "from torch.nn import functional as F",
        "from torch.nn import init", "",
        "from dlbook.ch03_linear import DATA_HUB, Module, add_to_class", "", "",
        "def f():", '    """Doc."""',
        "    from dlbook.ch05_multilayer_perceptrons import (",
        *[f"        name_number_{i}," for i in (0, 1, 2, 3, 4, 5, 7, 10)],
        "    )", "    return name_number_0", ""]


def test_sort_imports_names_the_file_ruff_cannot_read():
    files = {"dlbook/ok.py": "import os\n", "dlbook/bad.py": "import os\ndef f(:\n"}
    with pytest.raises(ProblemError) as caught:
        sort_imports(files)
    problems = caught.value.problems
    assert {str(p.path) for p in problems} == {"dlbook/bad.py"} and problems[0].line == 2
    assert "ruff could not sort the imports" in problems[0].message


def test_rewrite_handles_one_liners_and_plain_docstrings():
    note = ("Defined in X.",)
    assert rewrite("def f(): return dlbook.g()  #@save", Rewrite(note=note)) == (
        'def f():\n    """Defined in X."""\n    return g()')
    assert rewrite("def f():\n    'Doc.'\n    return 1", Rewrite(note=note)) == (
        'def f():\n    """Doc.\n\n    Defined in X.\n    """\n    return 1')
    assert rewrite('class C:\n    """Doc."""\n    x = 1', Rewrite(note=note)) == (
        'class C:\n    """Doc.\n\n    Defined in X.\n    """\n    x = 1')
    lazy = (("f", ("    from dlbook.ch09 import g",)),)
    assert rewrite('def f():\n    """Doc\n    more."""\n    return g()',
                   Rewrite(note=note, lazy=lazy)) == (
        'def f():\n    """Doc\n    more.\n\n    Defined in X.\n    """\n'
        '    from dlbook.ch09 import g\n    return g()')


def test_indent_keeps_multiline_strings_but_indents_docstrings():
    text = code('''
        def m(self):
            """Doc
            continued."""
            sql = """
        SELECT 1
        """
            return sql
        ''')
    indented = indent_block(text, "    ")
    assert "        continued.\"\"\"" in indented
    assert "\nSELECT 1\n" in indented  # the string's value is unchanged
    method = ast.parse("class X:\n" + indented).body[0].body[0]
    assert method.body[1].value.value == "\nSELECT 1\n"
    assert ast.get_docstring(method) == "Doc\ncontinued."


def test_awkward_layouts_generate_valid_lint_clean_code(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        #@save
        def traced(f):
            return f
        """, """
        #@save
        def add_to_class(Class):
            def wrapper(obj):
                setattr(Class, obj.__name__, obj)
            return wrapper
        """, """
        #@save
        class Board:
            '''Draw things.'''
            def draw(self): return 'é'
        """), "chapters/02-b/t.md": page("sec-t", """
        #@save
        def late_helper():
            return 'ü'
        """, """
        #@save
        def greet(name):
            return f'''Hello,
        {name}'''
        """, """
        @dlbook.add_to_class(dlbook.Board)  #@save
        @dlbook.traced
        def draw(self):
            text = '''
        multi-line, not indented
        '''
            return dlbook.late_helper() + text
        """)})
    files = files_of(tmp_path)
    out = tmp_path / "out"
    (out / "dlbook").mkdir(parents=True)
    for rel, text in files.items():
        if rel.startswith("dlbook/"):
            (out / rel).write_text(text, encoding="utf-8")
    shutil.copy2(REPO / "pyproject.toml", out / "pyproject.toml")
    lint = subprocess.run([str(RUFF), "check", "--no-cache", "dlbook"], cwd=out, text=True,
                          capture_output=True, check=False)
    assert lint.returncode == 0, lint.stdout + files["dlbook/ch01_a.py"]
    script = "import dlbook; print(repr(dlbook.Board().draw()), repr(dlbook.greet('x')))"
    run = subprocess.run([sys.executable, "-c", script], cwd=out, text=True,
                         capture_output=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == repr("ü\nmulti-line, not indented\n") + " " + repr(
        "Hello,\nx")
    module = files["dlbook/ch01_a.py"]
    assert "    @traced\n    def draw(self):" in module
    assert "        from dlbook.ch02_b import late_helper\n" in module


def test_unqualifying_keeps_continuation_lines_aligned():
    source = code('''
        def f(self):
            x = dlbook.set_axes(self.axes,
                                self.y, dlbook.g(1,
                                                 2))
            y = foo(a, dlbook.h(b),
                c)
            return x, y
        ''')
    assert rewrite(source, Rewrite()) == code('''
        def f(self):
            x = set_axes(self.axes,
                         self.y, g(1,
                                   2))
            y = foo(a, h(b),
                c)
            return x, y
        ''')

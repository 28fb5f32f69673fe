"""The rules of ``#@save`` extraction (docs/library.md), one tiny book per rule."""

from __future__ import annotations

import ast

from test_extract_support import files_of, page, problems_of, write_book

IMPORTS = """
    #@save
    import math

    import numpy as np
    """


def defs(text: str) -> list[str]:
    """Names of the top-level definitions of a generated module."""
    names = []
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets]
        elif isinstance(node, ast.AnnAssign):
            names.append(node.target.id)
    return names


def test_mark_above_or_on_the_def_line_saves_one_definition_with_decorators(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page(
        "sec-s", IMPORTS,
        """
        #@save
        def area(r):
            return math.pi * r ** 2
        """,
        """
        @staticmethod
        def unrelated():
            return 1
        """,
        """
        #@save
        @np.vectorize
        def cached(n):
            return n
        """,
        """
        class Circle:  #@save
            def __init__(self, r):
                self.r = r
        def not_saved():
            pass
        """)})
    module = files_of(tmp_path)["dlbook/ch01_a.py"]
    assert defs(module) == ["area", "cached", "Circle"]
    assert "@np.vectorize\ndef cached(n):" in module
    assert "#@save" not in module.split('"""')[1]
    assert "class Circle:\n" in module


def test_import_runs_form_a_pool_and_each_module_gets_what_it_uses(tmp_path):
    write_book(tmp_path, {
        "book/preface.md": page("sec-preface", IMPORTS, """
            #@save
            import os
            from collections import OrderedDict as OD
            x = 1
            import sys
            """),
        "chapters/01-a/s.md": page("sec-s", """
            #@save
            def area(r):
                return math.pi * r ** 2
            """),
        "chapters/02-b/t.md": page("sec-t", """
            #@save
            def mean(xs):
                return np.mean(xs), os.sep
            """)})
    files = files_of(tmp_path)
    first, second = files["dlbook/ch01_a.py"], files["dlbook/ch02_b.py"]
    assert "import math\n" in first and "numpy" not in first and "import os" not in first
    assert "import os\n\nimport numpy as np\n" in second and "math" not in second
    assert "dlbook/ch00_front_matter.py" not in files  # imports alone make no module


def test_assignment_is_saved_like_a_definition(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        #@save
        DATA_HUB = dict()
        """, """
        DATA_URL: str = 'https://example.org/'  #@save
        """)})
    module = files_of(tmp_path)["dlbook/ch01_a.py"]
    assert defs(module) == ["DATA_HUB", "DATA_URL"]
    assert "# Defined in section sec-s (chapters/01-a/s.md).\nDATA_HUB = dict()" in module
    assert "DATA_URL: str = 'https://example.org/'\n" in module


def test_add_to_class_becomes_a_method_in_the_class_body(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        #@save
        def add_to_class(Class):
            def wrapper(obj):
                setattr(Class, obj.__name__, obj)
            return wrapper
        """, """
        #@save
        class Trainer:
            \"\"\"Fit models.\"\"\"

            def fit(self):
                raise NotImplementedError

            def other(self):
                return 0
        """, """
        @add_to_class(Trainer)  #@save
        def fit(self):
            return 1
        """), "chapters/02-b/t.md": page("sec-t", """
        import dlbook
        """, """
        @dlbook.add_to_class(dlbook.Trainer)  #@save
        def prepare(self, batch):
            \"\"\"Move a batch.

            Longer text.
            \"\"\"
            return batch
        """)})
    module = files_of(tmp_path)["dlbook/ch01_a.py"]
    tree = ast.parse(module)
    trainer = next(n for n in tree.body if isinstance(n, ast.ClassDef))
    methods = [n.name for n in trainer.body if isinstance(n, ast.FunctionDef)]
    assert methods == ["fit", "other", "prepare"]
    assert "NotImplementedError" not in module and "add_to_class(Trainer)" not in module
    assert "Defined in section sec-t (chapters/02-b/t.md)." in module
    assert defs(module).count("fit") == 0 and "dlbook/ch02_b.py" not in files_of(tmp_path)


def test_later_definition_replaces_earlier_in_its_place(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        #@save
        def show(x):
            \"\"\"A stub.\"\"\"
            raise NotImplementedError
        """, """
        #@save
        def twice(x):
            return show(x) * 2
        """), "chapters/02-b/t.md": page("sec-t", """
        #@save
        def helper():
            return 3
        """, """
        import dlbook
        """, """
        #@save replace
        def show(x):
            \"\"\"The real thing.\"\"\"
            return dlbook.helper() + x
        """)})
    files = files_of(tmp_path)
    first = files["dlbook/ch01_a.py"]
    assert defs(first) == ["show", "twice"] and "NotImplementedError" not in first
    assert "#@save replace" not in first
    assert "The real thing" in first and "sec-t" in first
    # helper lives in a later chapter: imported inside the function, so no import cycle.
    assert "    from dlbook.ch02_b import helper\n    return helper() + x" in first
    assert defs(files["dlbook/ch02_b.py"]) == ["helper"]


def test_replacing_another_chapter_s_name_must_be_marked(tmp_path):
    """A name from another chapter is replaced only by a block marked '#@save replace'
    (the error names both places); within one chapter a later definition replaces an
    earlier one as before; 'replace' with nothing to replace is an error too."""
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        #@save
        def show(x):
            return x
        """), "chapters/01-a/u.md": page("sec-u", """
        #@save
        def show(x):
            return 3 * x
        """), "chapters/02-b/t.md": page("sec-t", """
        #@save
        def show(x):
            return 4 * x
        """, """
        #@save replace
        def fresh():
            return 5
        """)})
    found = problems_of(tmp_path)
    assert len(found) == 2, found
    assert found[0].startswith("chapters/02-b/t.md:")
    assert ("'show' is already defined by another chapter, at chapters/01-a/u.md:"
            in found[0]) and "mark this block '#@save replace'" in found[0]
    assert found[1].startswith("chapters/02-b/t.md:")
    assert "'fresh' is marked #@save replace, but no earlier #@save block" in found[1]


def test_library_names_are_rewritten_to_explicit_imports(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        #@save
        class Module:
            pass
        """, """
        #@save
        def plot(x):
            return x
        """), "chapters/02-b/t.md": page("sec-t", """
        import dlbook
        """, """
        #@save
        class Linear(dlbook.Module):
            def show(self):
                return dlbook.plot(self)
        """)})
    second = files_of(tmp_path)["dlbook/ch02_b.py"]
    assert "from dlbook.ch01_a import Module, plot\n" in second
    assert "class Linear(Module):" in second and "return plot(self)" in second
    assert "dlbook." not in second.split('"""')[-1]


def test_docstrings_name_the_defining_section(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        #@save
        def one(): return 1
        """, """
        #@save
        def two():
            return 2
        """, """
        #@save
        def three():
            'Three.'
            return 3
        """)})
    module = files_of(tmp_path)["dlbook/ch01_a.py"]
    namespace: dict = {}
    exec(compile(module, "m", "exec"), namespace)
    for name in ("one", "two", "three"):
        assert namespace[name].__doc__.strip().endswith(
            "Defined in section sec-s (chapters/01-a/s.md).")
    assert namespace["three"].__doc__.startswith("Three.")
    assert namespace["one"]() == 1


def test_cells_with_magics_still_save_their_definitions(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        %matplotlib inline
        #@save
        def f():
            return 1
        """)})
    assert defs(files_of(tmp_path)["dlbook/ch01_a.py"]) == ["f"]


def test_init_reexports_public_names_in_book_order_with_the_version(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        #@save
        def zeta(): pass
        """, """
        #@save
        def _private(): pass
        """), "chapters/02-b/t.md": page("sec-t", """
        #@save
        def alpha(): pass
        """)})
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1.2.3"\n')
    init = files_of(tmp_path)["dlbook/__init__.py"]
    assert '__version__ = "1.2.3"' in init
    assert init.index('"zeta"') < init.index('"alpha"') and '"_private"' not in init


def test_api_page_lists_names_signatures_and_links(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        #@save
        class Box:
            \"\"\"Hold a value.\"\"\"
            def __init__(self, value=0):
                self.value = value
            def get(self, default=None):
                \"\"\"Return the value.\"\"\"
                return self.value
        """, """
        #@save
        def double(x, *, times=2):
            \"\"\"Double ``x``.

            More.
            \"\"\"
            return x * times
        """)})
    api = files_of(tmp_path)["book/api.md"]
    assert "(sec-api)=\n# The dlbook Library\n" in api
    assert "- `class Box`: Hold a value. ({ref}`sec-s`)" in api
    assert "  - `__init__(value=0)` ({ref}`sec-s`)" in api
    assert "  - `get(default=None)`: Return the value. ({ref}`sec-s`)" in api
    assert "- `double(x, *, times=2)`: Double ``x``. ({ref}`sec-s`)" in api


def test_mark_after_another_comment_and_replaced_class_with_later_names(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        def plot(x=[]):  # noqa: B006  #@save
            return x
        """, """
        #@save
        class Board:
            pass
        """), "chapters/02-b/t.md": page("sec-t", """
        #@save
        def helper():
            return 1
        """, """
        #@save replace
        class Board:
            \"\"\"The real board.\"\"\"

            def draw(self):
                return dlbook.helper()
        """)})
    module = files_of(tmp_path)["dlbook/ch01_a.py"]
    assert "def plot(x=[]):  # noqa: B006\n" in module
    assert ("    def draw(self):\n        from dlbook.ch02_b import helper\n"
            "        return helper()") in module


def test_saved_code_may_import_hand_written_modules_of_the_package(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", """
        #@save
        from dlbook import _support
        """, """
        #@save
        def epochs(n):
            return _support.cap(n)
        """)})
    (tmp_path / "dlbook").mkdir()
    (tmp_path / "dlbook" / "_support.py").write_text("def cap(n):\n    return min(n, 2)\n")
    module = files_of(tmp_path)["dlbook/ch01_a.py"]
    assert "\nfrom dlbook import _support\n" in module
    (tmp_path / "dlbook" / "_support.py").unlink()
    assert "can import from dlbook only its hand-written modules" in problems_of(tmp_path)[0]

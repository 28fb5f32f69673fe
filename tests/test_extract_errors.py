"""Every extraction error names the Markdown file and line, and nothing is written."""

from __future__ import annotations

import textwrap

import pytest
from test_extract_support import page, problems_of, run_tools, write_book

ADD_TO_CLASS = """
    #@save
    def add_to_class(Class):
        def wrapper(obj):
            setattr(Class, obj.__name__, obj)
        return wrapper
    """

# The line of a cell's first code line: front matter (9), blank, label, H1, blank, fence.
FIRST_CELL = 15


def one_section(tmp_path, *cells: str) -> list[str]:
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s", *cells)})
    return problems_of(tmp_path)


def cell_line(cells_before: list[str], line: int) -> int:
    """The file line of ``line`` (1-based) of the cell that follows ``cells_before``."""
    skip = sum(len(textwrap.dedent(c).strip("\n").split("\n")) + 3 for c in cells_before)
    return FIRST_CELL + skip + line - 1


def test_syntax_error_in_a_saved_block(tmp_path):
    found = one_section(tmp_path, "#@save\ndef f(:\n    pass")
    assert found == [f"chapters/01-a/s.md:{FIRST_CELL + 1}: SyntaxError in a cell with "
                     "#@save: invalid syntax"]


def test_add_to_class_naming_an_unknown_class(tmp_path):
    method = "@add_to_class(Missing)  #@save\ndef f(self):\n    return 1"
    found = one_section(tmp_path, ADD_TO_CLASS, method)
    line = cell_line([ADD_TO_CLASS], 1)
    assert found == [f"chapters/01-a/s.md:{line}: add_to_class: class 'Missing' is unknown: "
                     "no earlier #@save block defines it"]


def test_add_to_class_naming_a_function(tmp_path):
    found = one_section(tmp_path, ADD_TO_CLASS,
                        "@add_to_class(add_to_class)  #@save\ndef f(self):\n    return 1")
    assert "class 'add_to_class' is unknown: it is a def" in found[0]


def test_two_different_definitions_of_one_name_in_one_section(tmp_path):
    first = "#@save\ndef f():\n    return 1"
    found = one_section(tmp_path, first, "#@save\ndef f():\n    return 2")
    line = cell_line([first], 2)
    assert found == [f"chapters/01-a/s.md:{line}: 'f' is saved twice in this section, "
                     f"differently (first at chapters/01-a/s.md:{FIRST_CELL + 1}); keep one"]


def test_identical_repeated_definition_is_not_an_error(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page(
        "sec-s", "#@save\ndef f():\n    return 1", "#@save\ndef f():\n    return 1")})
    assert run_tools("lib", "--book", str(tmp_path)).returncode == 0


def test_undefined_name(tmp_path):
    found = one_section(tmp_path, "#@save\ndef f():\n    x = 1\n    return x + helper()")
    assert found == [f"chapters/01-a/s.md:{FIRST_CELL + 3}: name 'helper' is not defined: "
                     "not a builtin, not imported by an earlier #@save import block, not "
                     "defined by an earlier #@save block"]


def test_name_defined_later_in_the_book_is_undefined(tmp_path):
    write_book(tmp_path, {
        "chapters/01-a/s.md": page("sec-s", "#@save\ndef f():\n    return g()"),
        "chapters/01-a/t.md": page("sec-t", "#@save\ndef g():\n    return 1")})
    assert problems_of(tmp_path)[0].startswith(
        f"chapters/01-a/s.md:{FIRST_CELL + 2}: name 'g' is not defined")


def test_import_not_saved_does_not_count(tmp_path):
    found = one_section(tmp_path, "import math", "#@save\ndef f():\n    return math.pi")
    assert "name 'math' is not defined" in found[0]


def test_qualified_name_must_be_a_library_definition(tmp_path):
    found = one_section(tmp_path, "#@save\nimport math",
                        "#@save\ndef f():\n    return dlbook.math.pi + dlbook.nothing")
    line = cell_line(["#@save\nimport math"], 3)
    assert found == [
        f"chapters/01-a/s.md:{line}: dlbook.math is not a library definition ('math' is "
        "imported by a saved import block: use it directly)",
        f"chapters/01-a/s.md:{line}: dlbook.nothing is not defined by an earlier #@save "
        "block (or this one)"]


@pytest.mark.parametrize("cell, line, message", [
    ("def f():\n    #@save\n    def g():\n        pass", 2,
     "#@save marks a statement that is not at the top level of the cell"),
    ("def f():\n    return 1  #@save", 2,
     "#@save marks a statement that is not at the top level of the cell"),
    ("x = 1\n#@save\nprint(x)", 2, "#@save marks a statement of type Expr"),
    ("#@save\nfor i in range(3):\n    pass", 1, "#@save marks a statement of type For"),
    ("x = 1\n#@save", 2, "#@save marks no top-level statement: nothing to save follows it"),
    ("#@save\na, b = 1, 2", 1, "a saved assignment must bind exactly one name"),
    ("#@save\nfrom math import *", 2, "a saved import cannot use '*'"),
])
def test_mark_on_something_that_cannot_be_saved(tmp_path, cell, line, message):
    found = one_section(tmp_path, cell)
    assert len(found) == 1
    assert found[0].startswith(f"chapters/01-a/s.md:{FIRST_CELL + line - 1}: {message}")


def test_import_and_definition_of_one_name_clash(tmp_path):
    found = one_section(tmp_path, "#@save\nimport math", "#@save\ndef math():\n    pass")
    assert "'math' is defined here but is also imported by the saved import block at " \
           f"chapters/01-a/s.md:{FIRST_CELL + 1}" in found[0]


def test_later_name_needed_at_import_time(tmp_path):
    write_book(tmp_path, {
        "chapters/01-a/s.md": page("sec-s", "#@save\nclass Base:\n    pass",
                                   "#@save\nclass Model:\n    pass"),
        "chapters/02-b/t.md": page("sec-t", "#@save\nclass Late:\n    pass",
                                   "#@save replace\nclass Model(dlbook.Late):\n    pass")})
    found = problems_of(tmp_path)
    assert len(found) == 1 and found[0].startswith("chapters/02-b/t.md:")
    assert "'Late' is needed when dlbook.ch01_a is imported" in found[0]


def test_errors_exit_non_zero_and_write_nothing(tmp_path):
    write_book(tmp_path, {
        "chapters/01-a/s.md": page("sec-s", "#@save\ndef good():\n    return 1"),
        "chapters/02-b/t.md": page("sec-t", "#@save\ndef bad():\n    return nope")})
    result = run_tools("lib", "--book", str(tmp_path))
    assert result.returncode == 1
    assert f"chapters/02-b/t.md:{FIRST_CELL + 2}: name 'nope' is not defined" in result.stderr
    assert not (tmp_path / "dlbook").exists() and not (tmp_path / "book").exists()
    check = run_tools("lib", "--check", "--book", str(tmp_path))
    assert check.returncode == 1 and "name 'nope'" in check.stderr


def test_toc_naming_a_missing_page_is_an_error(tmp_path):
    write_book(tmp_path, {"chapters/01-a/s.md": page("sec-s")})
    toc = tmp_path / "_toc.yml"
    toc.write_text(toc.read_text() + "      - file: chapters/01-a/gone\n")
    result = run_tools("lib", "--book", str(tmp_path))
    assert result.returncode == 1 and "'chapters/01-a/gone' names no file" in result.stderr


def test_qualified_name_the_block_binds_itself(tmp_path):
    write_book(tmp_path, {
        "chapters/01-a/s.md": page("sec-s", "#@save\nclass Module:\n    pass"),
        "chapters/01-a/t.md": page("sec-t", "#@save\nclass Module(dlbook.Module):\n    pass")})
    found = problems_of(tmp_path)
    assert len(found) == 1
    assert "dlbook.Module cannot become a plain name here: this block binds 'Module'" in \
        found[0]


def test_line_too_long_for_the_generated_library(tmp_path):
    too_long = "    return " + " + ".join(["value"] * 12)  # 104 characters
    fits_alone = "    return " + " + ".join(["value"] * 11)  # 96, but 100 in a class
    cell = f"#@save\ndef f(value):\n{too_long}"
    method = f"@dlbook.add_to_class(dlbook.C)  #@save\ndef m(self, value):\n{fits_alone}"
    found = one_section(tmp_path, ADD_TO_CLASS, "#@save\nclass C:\n    pass", cell, method)
    assert len(found) == 2
    assert "this line is 104 characters long in the generated library; the limit" in found[0]
    assert "this line is 100 characters long in the generated library once indented into " \
           "its class; the limit is 99" in found[1]

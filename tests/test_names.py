"""Unit tests of the one free-name analysis (`tools.library.names.uses`) and of its users:
the saved-code references, the library's dependency graph, the add_to_class detector."""

from __future__ import annotations

import ast
import textwrap

import pytest

from tools.library.graph import parse_module, references, statement_text
from tools.library.names import FROM, IMPORT, Use, add_to_class_target, analyse, uses


def code(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def chains(text: str) -> set[tuple[str, ...]]:
    return {use.chain for use in uses(text)}


def test_uses_are_the_longest_attribute_chains_with_their_context():
    found = uses(code("""
        import numpy as np
        def norm(x):
            return np.linalg.norm(x) + dlbook.corr2d(x).sum()
        """))
    assert found == (
        Use(("np", "linalg", "norm"), 3, True, "norm"),
        Use(("dlbook", "corr2d"), 3, True, "norm"))


def test_comprehension_variables_are_not_free():
    text = code("""
        squares = [x * x for x in xs if x]
        pairs = {k: v for k, v in table}
        def f(rows):
            return sum(len(r) for r in rows)
        """)
    assert chains(text) == {("xs",), ("table",), ("sum",), ("len",)}
    assert references([text]) == chains(text)


def test_class_body_names_are_not_seen_by_methods():
    text = code("""
        class C:
            k = 1
            v = k
            def m(self):
                return k
        """)
    assert [(u.chain, u.line, u.deferred, u.owner, u.certain) for u in uses(text)] == [
        (("k",), 3, False, None, False),  # the body's own k (or a global one, before it)
        (("k",), 5, True, "m", True)]  # a method sees the global k only
    refs = analyse(text).refs
    assert [(r.name, r.line, r.deferred, r.owner) for r in refs] == [("k", 5, True, "m")]


def test_global_and_nonlocal_declarations():
    text = code("""
        def outer():
            counter = 0
            def inner():
                nonlocal counter
                global total
                counter += 1
                total = total + counter
            return inner
        """)
    assert chains(text) == {("total",)}


def test_a_name_imported_inside_a_function_goes_through_its_import():
    text = code("""
        def lazy(n):
            from .other import helper as h
            import dlbook.other
            import torch.nn as nn
            def inner():
                return h.scale(n) + (lambda: dlbook.other.standalone())()
            return inner() + nn.ReLU()
        """)
    assert chains(text) == {(FROM, "1", "other", "helper", "scale"),
                            (IMPORT, "dlbook", "other", "standalone"),
                            (IMPORT, "torch.nn", "ReLU")}
    # no free name of the block: only dlbook.NAME, which counts wherever it is written
    assert [(r.name, r.qualified) for r in analyse(text).refs] == [("other", True)]


def test_a_name_imported_twice_in_a_function_keeps_both_imports():
    text = code("""
        def pick(fast):
            if fast:
                from .fast import impl
            else:
                from .slow import impl
            return impl()
        """)
    assert chains(text) == {(FROM, "1", "fast", "impl"), (FROM, "1", "slow", "impl")}


def test_saved_code_references_keep_dlbook_uses_wherever_written():
    refs = analyse("def f(dlbook):\n    return dlbook.plot(1)\n").refs
    assert [(r.name, r.deferred, r.owner, r.qualified) for r in refs] == [
        ("plot", True, "f", True)]
    assert [b.line for b in analyse("dlbook = 1\nprint(dlbook)\n").bare] == [1, 2]


def test_statement_text_takes_decorators_and_leaves_neighbours():
    source = code("""
        @deco(1)
        def f():
            return 1
        a = 1; b = (
            2); c = 3
        """)
    lines, body = source.split("\n"), ast.parse(source).body
    assert statement_text(lines, body[0]) == "@deco(1)\ndef f():\n    return 1"
    assert [statement_text(lines, n) for n in body[1:]] == ["a = 1", "b = (\n    2)", "c = 3"]


def test_a_library_symbol_refers_to_names_other_statements_define():
    module = parse_module("dlbook.m", code("""
        import torch
        class A:
            pass
        class B(A):
            def make(self):
                return B(), torch.zeros(1)
        SIZE = len([n for n in range(3)])
        """), "dlbook")
    assert module.refs["B"] == {("A",), ("B",), ("torch", "zeros")}
    assert module.refs["SIZE"] == {("len",), ("range",)}


@pytest.mark.parametrize(("decorator", "qualifiers", "target"), [
    ("@add_to_class(C)", frozenset({"dlbook"}), "C"),
    ("@dlbook.add_to_class(dlbook.C)", frozenset({"dlbook"}), "C"),
    ("@d2l.add_to_class(C)", frozenset({"dlbook"}), None),
    ("@d2l.add_to_class(C)", None, "C"),
    ("@add_to_class(C, D)", frozenset({"dlbook"}), ""),
    ("@add_to_class(other.C)", frozenset({"dlbook"}), ""),
    ("@functools.cache", frozenset({"dlbook"}), None),
])
def test_one_add_to_class_detector(decorator, qualifiers, target):
    """None: not the decorator; "": the decorator without one class name."""
    node = ast.parse(f"{decorator}\ndef m(self):\n    return 1\n").body[0]
    found, name = add_to_class_target(node, qualifiers)
    assert (found is not None, name) == (target is not None, target or None)


def test_the_library_attaches_add_to_class_methods_to_their_class():
    module = parse_module("dlbook.m", code("""
        @add_to_class(Trainer)
        def fit(self):
            return helper()
        """), "dlbook")
    assert module.attached == {"Trainer": {"Trainer.fit"}}
    assert module.refs["Trainer.fit"] == {("add_to_class",), ("Trainer",), ("helper",)}

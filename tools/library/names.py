"""Find the names a block of saved Python code takes from outside itself, statically.

``symtable`` decides which names are free (neither parameters, locals nor closures) and
``ast`` says where each one is written. Nothing is imported or executed. Every reference
records whether it is *deferred* (inside a function body, so looked up when the function
runs) or needed when the module is imported, and which top-level function or method of
the block holds it, so that the library generator can place imports safely.
"""

from __future__ import annotations

import ast
import builtins
import functools
import symtable
from dataclasses import dataclass

LIBRARY = "dlbook"
MODULE_DUNDERS = frozenset(
    {"__name__", "__file__", "__doc__", "__spec__", "__loader__", "__package__",
     "__builtins__"})
BUILTINS = frozenset(dir(builtins)) | MODULE_DUNDERS
COMPREHENSIONS = frozenset({"listcomp", "setcomp", "dictcomp", "genexpr"})
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class Ref:
    """One outside name a block uses; ``line`` counts from the block's first line."""

    name: str
    line: int
    deferred: bool  # inside a function body: looked up only when that function runs
    owner: str | None  # the top-level function, or method of a top-level class, holding it
    qualified: bool = False  # written ``dlbook.NAME``


@dataclass(frozen=True)
class BareLibrary:
    """A use of the name ``dlbook`` other than ``dlbook.NAME`` (not allowed in saved code)."""

    line: int


class _Locator(ast.NodeVisitor):
    """Walk a block, noting each loaded name and ``dlbook.NAME`` with its context."""

    def __init__(self) -> None:
        self.deferred = False
        self.owner: str | None = None
        self.owner_level = True  # a function met here becomes an owner
        self.names: dict[tuple[str, bool, str | None], int] = {}
        self.first_line: dict[str, int] = {}
        self.qualified: dict[tuple[str, bool, str | None], int] = {}
        self.bare: list[int] = []

    def _context(self, deferred: bool, owner: str | None, owner_level: bool, nodes) -> None:
        saved = self.deferred, self.owner, self.owner_level
        self.deferred, self.owner, self.owner_level = deferred, owner, owner_level
        for node in nodes:
            self.visit(node)
        self.deferred, self.owner, self.owner_level = saved

    def _signature_parts(self, args: ast.arguments) -> list[ast.AST]:
        parts: list[ast.AST] = [*args.defaults, *(d for d in args.kw_defaults if d)]
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        every += [a for a in (args.vararg, args.kwarg) if a]
        return parts + [a.annotation for a in every if a.annotation]

    def _function(self, node) -> None:
        outer = [*node.decorator_list, *self._signature_parts(node.args)]
        outer += [node.returns] if node.returns else []
        for part in outer:
            self.visit(part)
        owner = node.name if self.owner_level else self.owner
        self._context(True, owner, False, node.body)

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for part in self._signature_parts(node.args):
            self.visit(part)
        self._context(True, self.owner, False, [node.body])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for part in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(part)
        # Methods of a top-level class own their bodies; deeper classes do not.
        self._context(self.deferred, self.owner, self.owner_level and self.owner is None,
                      node.body)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name) and node.value.id == LIBRARY:
            key = (node.attr, self.deferred, self.owner)
            self.qualified.setdefault(key, node.lineno)
            return
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == LIBRARY:
            self.bare.append(node.lineno)
        elif isinstance(node.ctx, ast.Load):
            self.names.setdefault((node.id, self.deferred, self.owner), node.lineno)
            self.first_line.setdefault(node.id, node.lineno)


def _free(table, deferred: bool, owner: str | None, owner_level: bool, found: set) -> None:
    is_module = table.get_type() == "module"
    for symbol in table.get_symbols():
        if symbol.is_referenced() and symbol.is_global() and not (
                is_module and symbol.is_local()):
            found.add((symbol.get_name(), deferred, owner))
    for child in table.get_children():
        kind, name = child.get_type(), child.get_name()
        if kind == "function" and name in COMPREHENSIONS:
            _free(child, deferred, owner, False, found)
        elif kind == "function":
            real = name != "lambda" and owner_level
            _free(child, True, name if real else owner, False, found)
        elif kind == "class":
            _free(child, deferred, owner, owner_level and owner is None, found)
        else:  # annotation and type-parameter scopes (Python 3.12+)
            _free(child, deferred, owner, False, found)


@functools.lru_cache(maxsize=4096)
def parsed(text: str) -> ast.Module:
    """``ast.parse(text)``, cached: callers must not change the tree."""
    return ast.parse(text)


@dataclass(frozen=True)
class Analysis:
    refs: tuple[Ref, ...]
    bare: tuple[BareLibrary, ...]
    bound: frozenset[str]  # every name bound in any scope (assigned, imported, parameter)


@functools.lru_cache(maxsize=4096)
def analyse(text: str) -> Analysis:
    """The outside names used by the code ``text`` (first occurrence per context), the
    bare uses of ``dlbook``, and the names it binds. Raises SyntaxError."""
    table = symtable.symtable(text, "<saved>", "exec")
    free: set[tuple[str, bool, str | None]] = set()
    _free(table, False, None, True, free)
    bound: set[str] = set()
    tables = [table]
    while tables:
        scope = tables.pop()
        bound.update(s.get_name() for s in scope.get_symbols()
                     if s.is_assigned() or s.is_imported() or s.is_parameter())
        tables += scope.get_children()
    locator = _Locator()
    locator.visit(parsed(text))
    refs = [Ref(name, locator.names.get((name, deferred, owner),
                                        locator.first_line.get(name, 1)), deferred, owner)
            for name, deferred, owner in free if name != LIBRARY]
    refs += [Ref(name, line, deferred, owner, True)
             for (name, deferred, owner), line in locator.qualified.items()]
    refs.sort(key=lambda r: (r.line, r.name, r.qualified, r.deferred, r.owner or ""))
    return Analysis(tuple(refs), tuple(BareLibrary(n) for n in locator.bare),
                    frozenset(bound))


def references(text: str) -> tuple[list[Ref], list[BareLibrary]]:
    """The outside names used by the code ``text``, first occurrence per context."""
    analysis = analyse(text)
    return list(analysis.refs), list(analysis.bare)


def bound_names(text: str) -> frozenset[str]:
    """Every name the code binds in any of its scopes (assigned, imported, a parameter)."""
    return analyse(text).bound


def library_attributes(tree: ast.AST) -> list[ast.Attribute]:
    """Every ``dlbook.NAME`` expression in ``tree``, in source order."""
    found = [node for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
             and node.value.id == LIBRARY]
    return sorted(found, key=lambda n: (n.lineno, n.col_offset))


@functools.lru_cache(maxsize=4096)
def library_attributes_of(text: str) -> tuple[ast.Attribute, ...]:
    """``library_attributes`` of the code ``text``, cached (nodes must not be changed)."""
    return tuple(library_attributes(parsed(text))) if LIBRARY in text else ()


def first_line(node: ast.stmt) -> int:
    """The first line of a statement, decorators included."""
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def defined_name(node: ast.stmt) -> str | None:
    """The one module-level name a def, class or single-name assignment binds."""
    if isinstance(node, (*FUNCTIONS, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and len(node.targets) == 1:
        target = node.targets[0]
        return target.id if isinstance(target, ast.Name) else None
    if isinstance(node, ast.AnnAssign) and node.value is not None:
        return node.target.id if isinstance(node.target, ast.Name) else None
    return None

"""Find the names a block of Python code takes from outside itself, statically.

One walk over the code's syntax tree (``ast``), guided by its symbol tables (``symtable``,
which knows Python's scoping: comprehensions, class bodies, ``global`` and ``nonlocal``),
finds every *use* of a name that the code does not bind itself, as the longest attribute
chain it starts (``np.linalg.norm``). Each use records its line, whether it is *deferred*
(inside a function body, so looked up when the function runs) or needed when the module
is imported, and which top-level function or method of the block holds it. A name bound by
an import inside an enclosing function is reported through that import, as a chain headed
``FROM`` or ``IMPORT``, so that the library's dependency graph (:mod:`tools.library.graph`)
can follow the lazy imports between library modules.

From the uses come the references that the library generator checks and places imports
for (:func:`references`, with the ``dlbook.NAME`` uses). The ``add_to_class`` decorator is
recognised here too, for saved blocks and for the library's modules. Nothing is imported
or executed.
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
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
SAVED_QUALIFIERS = frozenset({LIBRARY})  # saved code calls ``dlbook.add_to_class``
FROM, IMPORT = "<from>", "<import>"  # heads of chains that go through a function's import
Chain = tuple[str, ...]
_TABLE_NAMES = {ast.Lambda: "lambda", ast.ListComp: "listcomp", ast.SetComp: "setcomp",
                ast.DictComp: "dictcomp", ast.GeneratorExp: "genexpr"}


@dataclass(frozen=True)
class Use:
    """One use of an outside name, as the attribute chain it starts (``("np", "linalg")``).

    ``line`` counts from the text's first line. ``certain`` is False when the name may
    still be the code's own: bound by the module or class body that uses it (such a body
    looks a name up outside until it binds it), or unknown to the symbol tables (an
    annotation that ``from __future__ import annotations`` leaves unevaluated).
    """

    chain: Chain
    line: int
    deferred: bool  # inside a function body: looked up only when that function runs
    owner: str | None  # the top-level function, or method of a top-level class, holding it
    certain: bool = True


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


def attribute_chain(node: ast.AST) -> Chain | None:
    """``("a", "b", "c")`` for the expression ``a.b.c``; None when it is not a name's."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return (node.id, *reversed(parts))
    return None


def _import_prefixes(node: ast.Import | ast.ImportFrom) -> dict[str, Chain]:
    """What each name an import binds stands for, as a chain prefix."""
    if isinstance(node, ast.ImportFrom):
        return {a.asname or a.name: (FROM, str(node.level), node.module or "", a.name)
                for a in node.names if a.name != "*"}
    return {(a.asname or a.name.split(".")[0]): (IMPORT, a.name if a.asname
                                                  else a.name.split(".")[0])
            for a in node.names}


def _function_imports(node: ast.AST) -> dict[str, list[Chain]]:
    """The names that imports in a function's own body bind (not in nested scopes)."""
    found: dict[str, list[Chain]] = {}
    todo: list[ast.AST] = list(getattr(node, "body", []))
    while todo:
        sub = todo.pop(0)
        if isinstance(sub, (*FUNCTIONS, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(sub, (ast.Import, ast.ImportFrom)):
            for name, prefix in _import_prefixes(sub).items():
                found.setdefault(name, []).append(prefix)
        todo.extend(ast.iter_child_nodes(sub))
    return found


def _lookup(table: symtable.SymbolTable, name: str) -> symtable.Symbol | None:
    try:
        return table.lookup(name)
    except KeyError:
        return None


class _Scope:
    """A symbol table met during the walk, the imports of its function, and its children
    (by name and line) not yet matched to the syntax tree."""

    def __init__(self, table: symtable.SymbolTable, imports: dict[str, list[Chain]]) -> None:
        self.table, self.kind, self.imports = table, table.get_type(), imports
        self.children: dict[tuple[str, int], list[symtable.SymbolTable]] = {}
        for child in table.get_children():
            key = (child.get_name(), child.get_lineno())
            self.children.setdefault(key, []).append(child)

    def child(self, name: str, line: int) -> symtable.SymbolTable:
        """The table of the nested scope ``name`` opened on ``line`` (looking through
        annotation and type-parameter scopes); its own table when none is found."""
        if self.children.get((name, line)):
            return self.children[(name, line)].pop(0)
        todo = [c for c in self.table.get_children()
                if c.get_type() not in ("function", "class")]
        while todo:
            table = todo.pop(0)
            for child in table.get_children():
                if (child.get_name(), child.get_lineno()) == (name, line):
                    return child
            todo += [c for c in table.get_children()
                     if c.get_type() not in ("function", "class")]
        return self.table


def _signature_parts(args: ast.arguments) -> list[ast.AST]:
    """Defaults then annotations: what a def evaluates in its enclosing scope."""
    parts: list[ast.AST] = [*args.defaults, *(d for d in args.kw_defaults if d)]
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a]
    return parts + [a.annotation for a in every if a.annotation]


class _Walker(ast.NodeVisitor):
    """Walk a block with its symbol tables, noting each use of an outside name and each
    appearance of the name ``dlbook``.

    Nested scopes are visited in the order ``symtable`` opens them (defaults, annotations
    and decorators before a function's body; a comprehension's first iterable outside it),
    so that same-named scopes on one line match their tables in order.
    """

    def __init__(self, table: symtable.SymbolTable) -> None:
        self.scopes = [_Scope(table, {})]
        self.deferred = False
        self.owner: str | None = None
        self.owner_level = True  # a function met here becomes an owner
        self.found: list[tuple[int, int, Use]] = []
        self.library: list[tuple[int, int, str | None, bool, str | None]] = []

    def _enter(self, node: ast.AST, name: str, parts: list, deferred: bool,
               owner: str | None, owner_level: bool, imports=None) -> None:
        table = self.scopes[-1].child(name, node.lineno)
        saved = self.deferred, self.owner, self.owner_level
        self.deferred, self.owner, self.owner_level = deferred, owner, owner_level
        self.scopes.append(_Scope(table, imports or {}))
        for part in parts:
            self.visit(part)
        self.scopes.pop()
        self.deferred, self.owner, self.owner_level = saved

    def _visit_all(self, nodes: list) -> None:
        for node in nodes:
            self.visit(node)

    def _function(self, node) -> None:
        self._visit_all([*_signature_parts(node.args), *([node.returns] if node.returns
                                                         else []), *node.decorator_list])
        owner = node.name if self.owner_level else self.owner
        self._enter(node, node.name, node.body, True, owner, False, _function_imports(node))

    visit_FunctionDef = _function
    visit_AsyncFunctionDef = _function

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._visit_all(_signature_parts(node.args))
        self._enter(node, "lambda", [node.body], True, self.owner, False)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_all([*node.bases, *node.keywords, *node.decorator_list])
        # Methods of a top-level class own their bodies; deeper classes do not.
        self._enter(node, node.name, node.body, self.deferred, self.owner,
                    self.owner_level and self.owner is None)

    def _comprehension(self, node) -> None:
        first, *rest = node.generators
        self.visit(first.iter)
        results = [node.value, node.key] if isinstance(node, ast.DictComp) else [node.elt]
        self._enter(node, _TABLE_NAMES[type(node)], [first.target, *first.ifs, *rest,
                                                      *results],
                    self.deferred, self.owner, self.owner_level)

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain = attribute_chain(node)
        if chain is None:
            self.generic_visit(node)
        else:
            self._use(chain, node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._use((node.id,), node)
        elif node.id == LIBRARY:
            self._library(None, node)

    def _library(self, attr: str | None, node: ast.expr) -> None:
        self.library.append((node.lineno, node.col_offset, attr, self.deferred, self.owner))

    def _use(self, chain: Chain, node: ast.expr) -> None:
        if chain[0] == LIBRARY:
            self._library(chain[1] if len(chain) > 1 else None, node)
        for head, certain in self._resolve(chain[0]):
            use = Use((*head, *chain[1:]), node.lineno, self.deferred, self.owner, certain)
            self.found.append((node.lineno, node.col_offset, use))

    def _resolve(self, name: str) -> list[tuple[Chain, bool]]:
        """What a use of ``name`` here stands for: nothing (a local of the code), the free
        name itself, or the imports of an enclosing function that bind it; and whether
        the use certainly reaches outside the code."""
        scope = self.scopes[-1]
        symbol = _lookup(scope.table, name)
        if symbol is None:
            return [((name,), False)]
        if scope.kind == "module":
            return [((name,), not symbol.is_local())]
        if name in scope.imports:
            return [(prefix, True) for prefix in scope.imports[name]]
        if symbol.is_global():
            return [((name,), True)]
        if scope.kind == "class" and symbol.is_local():
            return [(head, False) for head, _ in self._outside(name)]
        if symbol.is_free() or scope.kind == "class":
            return self._outside(name)
        return []  # a local of this function

    def _outside(self, name: str) -> list[tuple[Chain, bool]]:
        """``name`` as the scopes around the current one see it (class bodies skipped)."""
        for scope in reversed(self.scopes[:-1]):
            if scope.kind == "class":
                continue
            if scope.kind == "module":
                break
            if name in scope.imports:
                return [(prefix, True) for prefix in scope.imports[name]]
            symbol = _lookup(scope.table, name)
            if symbol is None or symbol.is_free():
                continue
            if symbol.is_global():
                break
            return []  # bound by an enclosing function
        return [((name,), True)]


@dataclass(frozen=True)
class _Scan:
    uses: tuple[Use, ...]
    library: tuple[tuple[str | None, int, bool, str | None], ...]  # attr, line, context
    bound: frozenset[str]


def _bound(table: symtable.SymbolTable) -> frozenset[str]:
    """Every name bound in any scope of ``table`` (assigned, imported, a parameter)."""
    bound: set[str] = set()
    tables = [table]
    while tables:
        scope = tables.pop()
        bound.update(s.get_name() for s in scope.get_symbols()
                     if s.is_assigned() or s.is_imported() or s.is_parameter())
        tables += scope.get_children()
    return frozenset(bound)


@functools.lru_cache(maxsize=4096)
def _scan(text: str) -> _Scan:
    """The one walk over ``text``: its uses, its ``dlbook`` names, the names it binds."""
    table = symtable.symtable(text, "<saved>", "exec")
    walker = _Walker(table)
    walker.visit(parsed(text))
    found = tuple(use for *_, use in sorted(walker.found, key=lambda f: f[:2]))
    library = tuple((attr, line, deferred, owner)
                    for line, _, attr, deferred, owner in sorted(walker.library,
                                                                 key=lambda f: f[:2]))
    return _Scan(found, library, _bound(table))


def uses(text: str) -> tuple[Use, ...]:
    """Every use of an outside name in the code ``text``, in source order (cached).
    Raises SyntaxError."""
    return _scan(text).uses


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
    bare uses of ``dlbook``, and the names it binds. Raises SyntaxError.

    Only certain uses of plain names count (not those through a function's import);
    ``dlbook.NAME`` counts wherever it is written."""
    scan = _scan(text)
    first: dict[tuple[str, bool, str | None, bool], int] = {}
    for use in scan.uses:
        if use.certain and use.chain[0] not in (LIBRARY, FROM, IMPORT):
            first.setdefault((use.chain[0], use.deferred, use.owner, False), use.line)
    bare = []
    for attr, line, deferred, owner in scan.library:
        if attr is None:
            bare.append(BareLibrary(line))
        else:
            first.setdefault((attr, deferred, owner, True), line)
    refs = sorted((Ref(name, line, deferred, owner, qualified)
                   for (name, deferred, owner, qualified), line in first.items()),
                  key=lambda r: (r.line, r.name, r.qualified, r.deferred, r.owner or ""))
    return Analysis(tuple(refs), tuple(bare), scan.bound)


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


def _calls_add_to_class(decorator: ast.expr, qualifiers: frozenset[str] | None) -> bool:
    chain = attribute_chain(decorator.func) if isinstance(decorator, ast.Call) else None
    if not chain or chain[-1] != "add_to_class":
        return False
    return len(chain) == 1 or qualifiers is None or (len(chain) == 2
                                                     and chain[0] in qualifiers)


def add_to_class_target(node: ast.stmt, qualifiers: frozenset[str] | None = SAVED_QUALIFIERS
                        ) -> tuple[ast.Call | None, str | None]:
    """(decorator, class name) when ``node`` is decorated ``add_to_class(C)``.

    The decorator is called ``add_to_class`` or ``Q.add_to_class`` for a name Q in
    ``qualifiers`` (any attribute chain when None, as a library module may call itself
    ``d2l``); the class is written ``C`` or ``dlbook.C``. The class name is None when the
    call does not name exactly one class."""
    for decorator in getattr(node, "decorator_list", []):
        if not _calls_add_to_class(decorator, qualifiers):
            continue
        arg = decorator.args[0] if len(decorator.args) == 1 else None
        named = attribute_chain(arg) if arg is not None and not decorator.keywords else None
        if named and (len(named) == 1 or (len(named) == 2 and named[0] == LIBRARY)):
            return decorator, named[-1]
        return decorator, None
    return None, None


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

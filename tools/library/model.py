"""Resolve the saved blocks of the whole book, in book order, into the library's contents.

Applies the rules of docs/library.md: a later definition of a name replaces the earlier
one in the earlier one's place; ``add_to_class`` methods join their class; imports form a
pool that modules draw on. Checks that every name a block uses exists at that point of
the book, and collects every problem (as ``path:line: message``) instead of stopping.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from tools.core.problems import Problem
from tools.library.imports import ImportAtom, ImportProblem, atoms_of
from tools.library.names import BUILTINS, LIBRARY, Ref, bound_names, parsed, references
from tools.library.saved import Saved, Section


@dataclass
class Entry:
    """A library name: where it lives (its first definition) and its final code."""

    name: str
    module: str
    slot: int  # position in book order of the first definition
    saved: Saved
    methods: dict[str, Saved] = field(default_factory=dict)  # add_to_class, by name

    @property
    def public(self) -> bool:
        return not self.name.startswith("_")


@dataclass(frozen=True)
class Module:
    """One generated module: the library code of one chapter."""

    name: str
    folder: str  # POSIX folder of its sources, relative to the book root
    entries: tuple[Entry, ...]


@dataclass(frozen=True)
class Library:
    modules: tuple[Module, ...]
    imports: dict[str, tuple[ImportAtom, ...]]  # the import pool, by bound name
    homes: dict[str, tuple[int, Entry]] = field(default_factory=dict)  # name -> module

    def __post_init__(self) -> None:
        for index, module in enumerate(self.modules):
            for entry in module.entries:
                self.homes[entry.name] = (index, entry)

    def entry(self, name: str) -> Entry | None:
        home = self.homes.get(name)
        return home[1] if home else None

    def position(self, name: str) -> tuple[int, int]:
        """(module index, slot) of a library name: its place in the generated code."""
        index, entry = self.homes[name]
        return index, entry.slot


FRONT_MODULE = "ch00_front_matter"


def module_name(section: Section) -> str:
    """``chapters/02-preliminaries/x.md`` → ``ch02_preliminaries``; other pages → front."""
    parts = section.rel.split("/")
    if len(parts) < 3 or parts[0] != "chapters":
        return FRONT_MODULE
    slug = "".join(c if c.isalnum() else "_" for c in parts[1]).lower()
    return f"ch{slug}" if slug[:1].isdigit() else slug


def module_folder(section: Section) -> str:
    parts = section.rel.split("/")
    return "/".join(parts[:2]) if module_name(section) != FRONT_MODULE else parts[0]


class _Resolver:
    def __init__(self, handwritten: frozenset[str]) -> None:
        self.handwritten = handwritten
        self.entries: dict[str, Entry] = {}
        self.defined: dict[str, Saved] = {}  # first definition of each library name
        self.pool: dict[str, list[ImportAtom]] = {}
        self.imported_at: dict[str, Saved] = {}
        self.in_section: dict[tuple, Saved] = {}
        self.problems: list[Problem] = []
        self.slots = 0

    def problem(self, saved: Saved, line: int, message: str) -> None:
        self.problems.append(Problem(saved.section.path, saved.line + line - 1, message))

    def add_imports(self, saved: Saved) -> None:
        for node in parsed(saved.text).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                try:
                    atoms = atoms_of(node)
                except ImportProblem as err:
                    self.problem(saved, err.line, str(err))
                    continue
                for atom in atoms:
                    self.add_atom(saved, node.lineno, atom)

    def add_atom(self, saved: Saved, line: int, atom: ImportAtom) -> None:
        name = atom.bound
        if atom.module.split(".")[0] == LIBRARY and not self.handwritten_import(atom):
            self.problem(saved, line, f"saved code can import from {LIBRARY} only its "
                                      f"hand-written modules, as in 'from {LIBRARY} import "
                                      f"_support' (found: {sorted(self.handwritten)})")
        elif name in self.defined:
            other = self.defined[name]
            self.problem(saved, line, f"'{name}' is imported here but is a library name "
                                      f"defined at {other.where()}")
        else:
            known = self.pool.get(name, [])
            keep = [a for a in known if atom.plain_dotted and a.plain_dotted and a != atom]
            self.pool[name] = [*keep, atom]
            self.imported_at.setdefault(name, saved)

    def handwritten_import(self, atom: ImportAtom) -> bool:
        """``from dlbook import _x`` or ``from dlbook._x import y``, _x hand-written."""
        parts = atom.module.split(".")
        if atom.name is None:
            return False  # ``import dlbook._x`` would bind the name dlbook
        module = atom.name if len(parts) == 1 else parts[1]
        return module in self.handwritten

    def check_names(self, saved: Saved) -> None:
        try:
            refs, bare = references(saved.text)
        except SyntaxError as err:  # e.g. a name bound both global and nonlocal
            self.problem(saved, err.lineno or 1, f"SyntaxError: {err.msg}")
            return
        own = {saved.name} if saved.kind != "method" else set()
        for use in bare:
            self.problem(saved, use.line, f"use the library's names as {LIBRARY}.NAME, "
                                          f"not the module {LIBRARY} itself")
        bound = bound_names(saved.text)
        for ref in refs:
            if ref.qualified and ref.name in bound:
                self.problem(saved, ref.line, f"{LIBRARY}.{ref.name} cannot become a plain "
                                              f"name here: this block binds '{ref.name}' "
                                              "itself; rename one of them")
                continue
            if ref.name in own or ref.name in self.defined:
                continue
            if not ref.qualified and (ref.name in BUILTINS or ref.name in self.pool):
                continue
            self.problem(saved, ref.line, self.unknown(ref))

    def unknown(self, ref: Ref) -> str:
        if ref.qualified:
            if ref.name in self.pool:
                return (f"{LIBRARY}.{ref.name} is not a library definition ('{ref.name}' is "
                        "imported by a saved import block: use it directly)")
            return (f"{LIBRARY}.{ref.name} is not defined by an earlier #@save block "
                    "(or this one)")
        return (f"name '{ref.name}' is not defined: not a builtin, not imported by an "
                "earlier #@save import block, not defined by an earlier #@save block")

    def same_section(self, saved: Saved, key: tuple) -> bool:
        """True (and a problem noted) when ``key`` was saved differently in this section."""
        earlier = self.in_section.get((saved.section.index, *key))
        self.in_section[(saved.section.index, *key)] = saved
        if earlier is None or ast.dump(ast.parse(earlier.text)) == ast.dump(
                ast.parse(saved.text)):
            return False
        what = f"{key[0]}.{key[1]}" if len(key) == 2 else key[0]
        self.problem(saved, 1, f"'{what}' is saved twice in this section, differently "
                               f"(first at {earlier.where()}); keep one")
        return True

    def add_method(self, saved: Saved) -> None:
        if "add_to_class" not in self.defined:
            self.problem(saved, saved.dropped[0], f"{LIBRARY}.add_to_class is not defined by "
                                                  "an earlier #@save block")
        entry = self.entries.get(saved.target)
        if entry is None or entry.saved.kind != "class":
            what = "no earlier #@save block defines it" if entry is None else (
                f"it is a {entry.saved.kind}, defined at {entry.saved.where()}")
            self.problem(saved, saved.dropped[0],
                         f"add_to_class: class '{saved.target}' is unknown: {what}")
            return
        if not self.same_section(saved, (saved.target, saved.name)):
            entry.methods[saved.name] = saved

    def add_definition(self, saved: Saved) -> None:
        name = saved.name
        if name in self.pool:
            other = self.imported_at[name]
            self.problem(saved, 1, f"'{name}' is defined here but is also imported by the "
                                   f"saved import block at {other.where()}")
            return
        if self.same_section(saved, (name,)):
            return
        entry = self.entries.get(name)
        if entry is None:
            if saved.replaces:
                self.problem(saved, 1, f"'{name}' is marked #@save replace, but no earlier "
                                       "#@save block defines it: drop 'replace'")
            self.entries[name] = Entry(name, module_name(saved.section), self.slots, saved)
            self.defined[name] = saved
            self.slots += 1
            return
        if entry.module != module_name(saved.section) and not saved.replaces:
            self.problem(saved, 1, f"'{name}' is already defined by another chapter, at "
                                   f"{entry.saved.where()}; to replace it from here on, "
                                   "mark this block '#@save replace' (else rename it)")
            return
        entry.saved, entry.methods = saved, {}  # it replaces the earlier one, in its place

    def add(self, saved: Saved) -> None:
        if saved.kind == "import":
            self.add_imports(saved)
            return
        self.check_names(saved)
        if saved.kind == "method":
            self.add_method(saved)
        else:
            self.add_definition(saved)


def resolve(blocks: list[Saved], handwritten: frozenset[str] = frozenset()
            ) -> tuple[Library, list[Problem]]:
    """The library that ``blocks`` (in book order) define, and the problems found.

    ``handwritten`` names the hand-written modules of the package, which saved code may
    import (``from dlbook import _smoke``)."""
    resolver = _Resolver(handwritten)
    for saved in blocks:
        resolver.add(saved)
    modules: dict[str, tuple[str, list[Entry]]] = {}
    first_section: dict[str, int] = {}
    for entry in sorted(resolver.entries.values(), key=lambda e: e.slot):
        section = resolver.defined[entry.name].section
        modules.setdefault(entry.module, (module_folder(section), []))[1].append(entry)
        first_section.setdefault(entry.module, section.index)
    order = sorted(modules, key=lambda m: (m != FRONT_MODULE, first_section[m]))
    library = Library(
        tuple(Module(name, modules[name][0], tuple(modules[name][1])) for name in order),
        {name: tuple(atoms) for name, atoms in resolver.pool.items()})
    return library, resolver.problems

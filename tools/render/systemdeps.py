"""The system programs that the PDF build and the test suite call, and how to get them.

The Debian packages live in two lists, read here and by the Makefile:
``requirements/apt-pdf.txt`` (TeX, for ``make pdf``) and ``requirements/apt-test.txt``
(what the tests add: Chromium, poppler). ``make test`` runs :func:`ensure` before pytest:
every program present, it passes; something missing on Debian or Ubuntu as root, it
installs the missing packages with apt-get; otherwise it stops, naming each missing
program and the command that installs it on this kind of machine, before any test runs.

Everything about the machine comes in a :class:`Machine` (its PATH, whether it runs as
root, its kind), so the tests can describe a machine without changing this one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.core.files import PROJECT_ROOT

PDF_LIST = PROJECT_ROOT / "requirements" / "apt-pdf.txt"
TEST_LIST = PROJECT_ROOT / "requirements" / "apt-test.txt"
MACTEX = "--cask mactex-no-gui"


@dataclass(frozen=True)
class Tool:
    """A program called by name: any one of ``names`` on PATH will do."""

    names: tuple[str, ...]
    debian: str      # the Debian/Ubuntu package that provides it
    fedora: str      # the Fedora package
    brew: str        # what ``brew install`` takes on macOS
    needed_by: str

    @property
    def label(self) -> str:
        return " or ".join(self.names)


TOOLS = (
    Tool(("xelatex",), "texlive-xetex", "texlive-xetex", MACTEX,
         "make pdf and tests/test_pdf.py"),
    Tool(("latexmk",), "latexmk", "latexmk", MACTEX, "make pdf (Sphinx's LaTeX build)"),
    Tool(("xindy",), "xindy", "texlive-xindy", MACTEX, "make pdf (the index under xelatex)"),
    Tool(("rsvg-convert",), "librsvg2-bin", "librsvg2-tools", "librsvg",
         "make pdf (SVG figures converted to PDF)"),
    Tool(("pdftotext",), "poppler-utils", "poppler-utils", "poppler", "tests/test_pdf.py"),
    Tool(("pdfinfo",), "poppler-utils", "poppler-utils", "poppler", "tests/test_pdf.py"),
    Tool(("chromium", "chromium-browser"), "chromium", "chromium", "--cask chromium",
         "tests/test_book.py (headless, tests/browser.py)"),
)


@dataclass(frozen=True)
class Machine:
    """What the check knows of a machine: the PATH it searches, whether it runs as root,
    and its kind: ``debian`` (Debian, Ubuntu and their derivatives), ``fedora``,
    ``macos`` or ``other``."""

    path: str
    root: bool
    system: str

    def which(self, program: str) -> str | None:
        return shutil.which(program, path=self.path)

    @property
    def can_install(self) -> bool:
        return self.system == "debian" and self.root and self.which("apt-get") is not None


@dataclass(frozen=True)
class Report:
    """What is missing: programs not on PATH, and (where dpkg-query answers) listed
    Debian packages that are not installed, such as fonts, which no PATH shows."""

    tools: tuple[Tool, ...]
    packages: tuple[str, ...]
    dpkg: bool = False  # whether dpkg-query said which packages are installed

    @property
    def ok(self) -> bool:
        return not self.tools and not self.packages

    def debian_packages(self, listed: list[str]) -> list[str]:
        """The Debian packages that would bring everything missing, in list order: all
        of ``listed`` when dpkg-query could not tell which are installed."""
        wanted = set(self.packages) | {tool.debian for tool in self.tools}
        if not self.dpkg:
            wanted |= set(listed)
        return [name for name in dict.fromkeys(listed) if name in wanted] + sorted(
            wanted - set(listed))


@dataclass(frozen=True)
class Outcome:
    """The end of :func:`ensure`: what is still missing, and apt-get's exit status when
    it ran (``None``: nothing was installed)."""

    report: Report
    apt_status: int | None = None


def system_kind(os_release: Path = Path("/etc/os-release"), platform: str = sys.platform) -> str:
    """``debian``, ``fedora``, ``macos`` or ``other``, from ``/etc/os-release``'s ID and
    ID_LIKE."""
    if platform == "darwin":
        return "macos"
    try:
        text = os_release.read_text(encoding="utf-8")
    except OSError:
        return "other"
    ids: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            ids.update(value.strip().strip('"').split())
    if ids & {"debian", "ubuntu"}:
        return "debian"
    if ids & {"fedora", "rhel", "centos"}:
        return "fedora"
    return "other"


def this_machine() -> Machine:
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    return Machine(os.environ.get("PATH", os.defpath), root, system_kind())


def read_list(listing: Path) -> list[str]:
    """The package names of an apt list: one a line, ``#`` comments and blanks skipped."""
    lines = listing.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def listed_packages() -> list[str]:
    """Every Debian package the tests need: the TeX set, then the test list."""
    return list(dict.fromkeys(read_list(PDF_LIST) + read_list(TEST_LIST)))


def missing_tools(machine: Machine, tools: tuple[Tool, ...] = TOOLS) -> tuple[Tool, ...]:
    return tuple(tool for tool in tools if not any(map(machine.which, tool.names)))


def uninstalled(machine: Machine, packages: list[str]) -> tuple[str, ...] | None:
    """The ``packages`` dpkg does not show as installed; ``None`` off Debian or without
    dpkg-query."""
    dpkg_query = machine.which("dpkg-query")
    if machine.system != "debian" or dpkg_query is None:
        return None
    result = subprocess.run([dpkg_query, "-W", "-f=${Package}\t${Status}\n", *packages],
                            capture_output=True, text=True, env=_env(machine))
    installed = set()
    for line in result.stdout.splitlines():
        name, _, status = line.partition("\t")
        if status.split()[-1:] == ["installed"]:
            installed.add(name.partition(":")[0])
    return tuple(name for name in packages if name not in installed)


def examine(machine: Machine, packages: list[str]) -> Report:
    """What ``machine`` lacks: the programs the tests call, and, where dpkg-query answers,
    the listed ``packages``."""
    debs = uninstalled(machine, packages) if packages else ()
    return Report(missing_tools(machine), debs or (), dpkg=debs is not None)


def apt_commands(machine: Machine, packages: list[str]) -> list[list[str]]:
    apt_get = machine.which("apt-get") or "apt-get"
    return [[apt_get, "update", "-q"],
            [apt_get, "install", "-y", "-q", "--no-install-recommends", *packages]]


def ensure(machine: Machine, packages: list[str], *, install: bool) -> Outcome:
    """Check; where something is missing, ``install`` is asked and the machine can
    (:attr:`Machine.can_install`), run apt-get for the missing packages and check again."""
    report = examine(machine, packages)
    if report.ok or not (install and machine.can_install):
        return Outcome(report)
    status = 0
    for command in apt_commands(machine, report.debian_packages(packages)):
        status = subprocess.run(command, env=_env(machine)).returncode
        if status != 0:
            break
    return Outcome(examine(machine, packages), status)


def advice(machine: Machine, outcome: Outcome, packages: list[str]) -> list[str]:
    """The lines that say what is missing and how to install it on ``machine``."""
    report = outcome.report
    lines = ["make test needs programs and packages this machine lacks; no test was run:"]
    lines += [f"  {tool.label}: for {tool.needed_by}" for tool in report.tools]
    debs = report.debian_packages(packages)
    if outcome.apt_status:
        lines.append(f"apt-get failed (exit status {outcome.apt_status}; its output is "
                     "above)")
    elif outcome.apt_status == 0:
        lines.append("apt-get ran, yet these are still missing: is PATH complete?")
    if machine.system == "debian":
        if report.packages:
            lines.append(f"  Debian packages not installed: {', '.join(report.packages)}")
        if machine.which("apt-get") is None:
            lines.append(f"install the Debian packages {' '.join(debs)} (no apt-get on PATH)")
            return lines
        sudo = "" if machine.root else "sudo "
        lines.append(f"install them once{'' if machine.root else ' as root'}: "
                     f"{sudo}make test-deps")
        lines.append(f"  (or only these: {sudo}apt-get install --no-install-recommends "
                     f"{' '.join(debs)})")
        return lines
    if machine.system == "fedora":
        fedora = " ".join(dict.fromkeys(tool.fedora for tool in report.tools))
        lines.append(f"install them: sudo dnf install {fedora}")
    elif machine.system == "macos":
        lines += [f"install them: brew install {what}"
                  for what in dict.fromkeys(tool.brew for tool in report.tools)]
    else:
        lines.append("install them with this system's package manager: TeX Live (xelatex, "
                     "latexmk, xindy), librsvg (rsvg-convert), poppler (pdftotext, "
                     "pdfinfo), Chromium")
    lines.append("each program must be on PATH under the name shown; the PDF also needs "
                 "the GNU FreeFont fonts (requirements/apt-pdf.txt is the Debian set)")
    return lines


def _env(machine: Machine) -> dict[str, str]:
    return {**os.environ, "PATH": machine.path, "DEBIAN_FRONTEND": "noninteractive"}

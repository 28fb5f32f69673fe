"""Render the book with Jupyter Book, strictly, without ever replacing good output with bad.

Each builder works in its own folder (``_build/.work-<builder>``) and its result is copied
into ``_build/html`` or ``_build/latex`` only when the whole build succeeded, so a failed
build leaves the previous site and PDF exactly as they were. When nothing the build reads
has changed since its last success (:mod:`tools.render.inputs`), it stops at once; the
modules that only a real build needs (the library generator, the executor, myst-nb) are
imported after that check, so this path costs about a tenth of a second.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tools.core.interrupts import interruptible
from tools.core.lock import BuildLocked, build_lock
from tools.core.problems import Problem, ProblemError, say
from tools.render import inputs
from tools.render.systemdeps import PDF_LIST, read_list

OUTPUT_NAMES = {"html": "html", "pdflatex": "latex"}
PROBLEM_MARKERS = ("WARNING:", "ERROR:", "CRITICAL:", "Executing notebook failed",
                   "Exception occurred", "Error:")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
FAILED_LATEX = "latex-failed"  # marker: the last LaTeX run failed


@dataclass(frozen=True)
class Build:
    """One build request: which book, which Sphinx builder, which execution profile."""

    book: Path
    builder: str = "html"
    profile: str = "auto"

    @property
    def work(self) -> Path:
        return self.book / "_build" / f".work-{self.builder}"

    @property
    def produced(self) -> Path:
        return self.work / "_build" / OUTPUT_NAMES[self.builder]

    @property
    def landmark(self) -> str:
        """The file a complete output has: the site's index page, or the PDF."""
        return "index.html" if self.builder == "html" else "book.pdf"

    @property
    def output(self) -> Path:
        return self.book / "_build" / OUTPUT_NAMES[self.builder]


def precheck(book: Path) -> list[Problem]:
    """Problems found before anything runs: the configuration, the TOC, code-cell syntax."""
    from tools.core.memo import FileMemo
    from tools.core.mystnb import ConfigError, read_config
    from tools.core.python import syntax_problems
    from tools.core.toc import TocError, toc_sources

    try:
        read_config(book)
        sources = toc_sources(book)
    except (ConfigError, TocError) as err:
        return list(err.problems)
    memo = FileMemo(book, "syntax")
    problems = syntax_problems(sources, memo)
    memo.save()
    return problems


def jupyter_book_arguments(build: Build) -> list[str]:
    return ["build", str(build.book), "--path-output", str(build.work),
            "--builder", build.builder, "--warningiserror", "--keep-going"]


def render(build: Build, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run Jupyter Book on ``build`` in this process; its exit status and the problem
    lines of its output (which is echoed as it comes)."""
    from tools.render.jupyterbook import book_process, jupyter_book, scanned_output

    problems: list[str] = []

    def scan(line: str) -> None:
        plain = ANSI.sub("", line).rstrip()
        if any(marker in plain for marker in PROBLEM_MARKERS):
            problems.append(plain)

    with scanned_output(scan), book_process(build.book, env):
        code = jupyter_book(jupyter_book_arguments(build))
    return code, problems


def stage_copy(produced: Path, previous: Path, staging: Path) -> None:
    """Make ``staging`` a copy of ``produced``. A file the last published output
    (``previous``) holds in the same version (published files are copies that keep the
    size and modification time of what was produced) is hard-linked from there instead
    of copied, so an edit that rewrote three pages copies three pages. Published files
    are never written to afterwards, only replaced or removed, so the link is safe."""
    for folder, _, names in os.walk(produced):
        rel = Path(folder).relative_to(produced)
        (staging / rel).mkdir(parents=True, exist_ok=True)
        for name in names:
            source, target, old = Path(folder, name), staging / rel / name, previous / rel / name
            try:
                now, then = source.stat(), old.stat()
                if (now.st_size, now.st_mtime_ns) == (then.st_size, then.st_mtime_ns):
                    os.link(old, target)
                    continue
            except OSError:
                pass  # not published before, or no links on this file system: copy
            shutil.copy2(source, target)


def publish(produced: Path, output: Path, landmark: str) -> None:
    """Replace ``output`` by a copy of ``produced`` in two renames, after checking that
    the copy holds ``landmark`` (``index.html``, ``book.pdf``). The staging folders are
    this process's own; the caller holds the build lock."""
    staging = output.with_name(f"{output.name}.new-{os.getpid()}")
    retired = output.with_name(f"{output.name}.old-{os.getpid()}")
    for leftover in (staging, retired):
        shutil.rmtree(leftover, ignore_errors=True)
    stage_copy(produced, output, staging)
    if not (staging / landmark).is_file():
        shutil.rmtree(staging, ignore_errors=True)
        raise ProblemError.at(produced / landmark, 1, "the build produced no such file; "
                                                      "nothing was published")
    if output.exists():
        output.rename(retired)
    staging.rename(output)
    shutil.rmtree(retired, ignore_errors=True)


def missing_tex() -> list[str]:
    return [tool for tool in ("xelatex", "latexmk", "rsvg-convert") if shutil.which(tool) is None]


def run_build(build: Build) -> int:
    """Check, render and publish, holding the book's build lock; the exit status."""
    book = build.book.resolve()
    build = Build(book, build.builder, build.profile)
    try:
        with build_lock(book, "html" if build.builder == "html" else "pdf"):
            sources = inputs.sources_digest(book, build.builder, build.profile)
            if inputs.up_to_date(build.work, build.output / build.landmark, sources, book):
                say(f"nothing changed since the last build: "
                    f"{(build.output / build.landmark).relative_to(book)} is up to date")
                return 0
            code = _checked_render_publish(build)
            if code == 0:
                inputs.record(build.work, sources, book)
            return code
    except BuildLocked as err:
        print(err, file=sys.stderr)
        say(f"build refused; {build.output.relative_to(book)} left as it was")
        return 1


def build_until_interrupted(build: Build) -> int:
    """:func:`run_build`, stopped cleanly by Ctrl-C or SIGTERM (exit status 130)."""
    try:
        with interruptible():
            return run_build(build)
    except KeyboardInterrupt:
        command = "html" if build.builder == "html" else "pdf"
        say(f"{command}: interrupted; the site and the PDF are left as they were")
        return 130


def _checked_render_publish(build: Build) -> int:
    from tools.execution.engine import execute_book
    from tools.execution.kernel_env import kernel_environment
    from tools.library.generate import refresh as refresh_library

    book = build.book
    if not refresh_library(book):  # before the checks: the API page is generated too
        say(f"build stopped before rendering: a #@save block is invalid (above); "
            f"{build.output.relative_to(book)} and the library left as they were")
        return 1
    problems = precheck(book)
    if not problems and build.builder == "pdflatex" and missing_tex():
        problems = [Problem(PDF_LIST, 1, f"make pdf needs {', '.join(missing_tex())}: "
                            "install the TeX set with `make pdf-deps` (apt-get install "
                            f"--no-install-recommends {' '.join(read_list(PDF_LIST))})")]
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        say(f"build stopped before rendering ({len(problems)} problem(s)); "
            f"{build.output.relative_to(book)} left as it was")
        return 1
    executed = execute_book(book, profile=build.profile, refresh=False)  # fills the cache
    if executed != 0:
        say(f"build stopped before rendering: notebooks failed to execute (exit {executed}); "
            f"{build.output.relative_to(book)} left as it was")
        return executed
    if build.builder == "pdflatex" and (build.work / FAILED_LATEX).exists():
        shutil.rmtree(build.produced, ignore_errors=True)  # latexmk keeps stale state
        (build.work / FAILED_LATEX).unlink()
    env = kernel_environment(book)
    code, lines = render(build, env)
    if code == 0 and build.builder == "pdflatex" and not (build.produced / "book.pdf").is_file():
        code, lines = 1, lines + [f"{build.produced / 'book.pdf'}: no PDF was produced"]
    if code != 0:
        if build.builder == "pdflatex":  # keep book.tex/book.log to read; the next run
            (build.work / FAILED_LATEX).touch()  # starts from a clean LaTeX folder
        if lines:
            say("problems reported (file:line where known):")
            for line in dict.fromkeys(lines):
                print(f"  {line}", file=sys.stderr)
        say(f"build FAILED (exit {code}); {build.output.relative_to(book)} left as it was")
        return code or 1
    landmark = build.landmark
    try:
        publish(build.produced, build.output, landmark)
    except ProblemError as err:
        print(err, file=sys.stderr)
        say(f"build FAILED; {build.output.relative_to(book)} left as it was")
        return 1
    say(f"built {(build.output / landmark).relative_to(book)}")
    return 0

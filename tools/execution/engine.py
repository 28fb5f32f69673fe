"""Run the book's notebooks in parallel into the jupyter-cache (``tools execute``).

:func:`execute_book` first regenerates the ``dlbook`` library from the chapters' ``#@save`` blocks
(:func:`tools.library.generate.refresh`), so that no notebook runs against a stale library; an
invalid block stops it there. For each notebook of the TOC (or of PATHS) it computes the
full cache key (:mod:`tools.execution.keys`: code cells, the library symbols the notebook uses,
profile, data files, kernel configuration) and compares it with the execution manifest
(:mod:`tools.execution.manifest`). Notebooks whose key changed, or whose jupyter-cache record is
missing, run in parallel (:mod:`tools.execution.pool`); each success is stored in jupyter-cache
and then in the manifest, by this process only. The Sphinx build then finds every
notebook in the cache and only renders (:mod:`tools.sphinx.execution` re-reads exactly
the pages whose key changed).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

from tools.core.files import PROJECT_ROOT
from tools.core.interrupts import interrupts_deferred
from tools.core.lock import BuildLocked, build_lock
from tools.core.mystnb import BookSettings, ConfigError, book_settings, is_excluded, read_as_mystnb
from tools.core.notebook import NotebookError, front_matter_line, read_notebook
from tools.core.problems import Problem, say
from tools.core.toc import TocError, toc_sources
from tools.execution.devices import detect_gpus
from tools.execution.kernel_env import (
    SmokeSettingsError,
    kernel_environment,
    page_environment,
    resolve_profile,
    smoke_settings,
)
from tools.execution.keys import DataFilesError, KeyParts, data_digests, explain, kernel_digest
from tools.execution.manifest import Entry, Manifest, load_manifest
from tools.execution.planmemo import PlanMemo, Reading, context_digest, file_status
from tools.execution.pool import Outcome, Task, make_slots, run_tasks
from tools.execution.progress import Progress, Row, table
from tools.execution.shards import Shard, costs, split
from tools.library.deps import notebook_dependencies
from tools.library.generate import refresh as refresh_library
from tools.library.graph import Library, read_library


@dataclass
class Job:
    """A notebook of the book, its key, and why it must run (empty: it is cached). The
    notebook itself is read when first needed (most runs need few of them)."""

    source: Path
    name: str  # path relative to the book, POSIX
    parts: KeyParts
    cache_hash: str
    env: dict
    settings: BookSettings = field(repr=False)
    reason: str = ""
    loaded: nbformat.NotebookNode | None = field(default=None, repr=False)

    @property
    def notebook(self) -> nbformat.NotebookNode:
        if self.loaded is None:
            self.loaded = read_as_mystnb(self.source, self.settings)
        return self.loaded


def library_root(book: Path) -> Path:
    """The ``dlbook`` package the kernels import (the book's own first, as on PYTHONPATH)."""
    candidates = [book / "dlbook", PROJECT_ROOT / "dlbook"]
    for candidate in candidates:
        if (candidate / "__init__.py").is_file():
            return candidate
    return next((c for c in candidates if c.is_dir()), candidates[0])


def select_sources(book: Path, paths: list[Path] | None) -> list[Path]:
    """The TOC's sources, or those of them at or under ``paths``; raises TocError."""
    sources = [s.resolve() for s in toc_sources(book)]
    if not paths:
        return sources
    chosen = []
    for path in paths:
        path = path.resolve()
        found = [s for s in sources if s == path or path in s.parents]
        if not found:
            raise TocError.at(path, 1, "not a notebook of the book's table of contents")
        chosen.extend(s for s in found if s not in chosen)
    return chosen


def plan(book: Path, sources: list[Path], settings: BookSettings, library: Library,
         profile: str, env: dict, manifest: Manifest, cache, force: bool = False,
         ) -> tuple[list[Job], list[Problem]]:
    """Every notebook among ``sources`` with its key and reason to run; and problems."""
    jobs, problems = [], []
    kernel = kernel_digest(kernel_environment(book, {}))
    smoke_module = smoke_module_digest(book) if profile == "smoke" else ""
    memo = PlanMemo(settings.cache_path, context_digest(library_root(book), settings))
    cached = cached_hashes(cache)
    for source in sources:
        if is_excluded(source, settings):
            continue
        name = source.relative_to(book).as_posix()
        status = file_status(source)
        reading = memo.get(name, status)
        loaded = None
        if reading is None:
            loaded = read_as_mystnb(source, settings)
            reading = memo.put(name, status, read_page(loaded, cache, library))
        if not reading.notebook:
            continue
        try:
            data = data_digests(reading.data_files, source.parent, env, manifest.files)
            reductions = (smoke_settings(reading.smoke) if profile == "smoke" else None)
            job_env = page_environment(env, reductions)
            smoke = {**reductions, "module": smoke_module} if reductions is not None else {}
        except (DataFilesError, SmokeSettingsError) as err:
            key = "smoke:" if isinstance(err, SmokeSettingsError) else "data_files:"
            problems.append(Problem(Path(name), front_matter_line(source, key),
                                    f"front matter: {err}"))
            continue
        parts = KeyParts(cells=reading.cache_hash, profile=profile, kernel=kernel,
                         library=reading.library or {}, data=data, smoke=smoke)
        job = Job(source, name, parts, reading.cache_hash, job_env, settings, loaded=loaded)
        entry = manifest.entries.get(name)
        if force:
            job.reason = "forced"
        elif entry is None or entry.key != parts.key:
            job.reason = explain(entry.parts if entry else None, parts)
        elif not is_cached(cache, reading.cache_hash, cached):
            job.reason = "not cached"
        jobs.append(job)
    memo.save()
    return jobs, problems


def read_page(notebook: nbformat.NotebookNode | None, cache, library: Library) -> Reading:
    """What keying needs from a page read as myst-nb reads it (None: not a notebook)."""
    if notebook is None:
        return Reading(notebook=False)
    _, cache_hash = cache.create_hashed_notebook(notebook)
    cells = [c.source for c in notebook.cells if c.cell_type == "code"]
    return Reading(True, cache_hash, notebook_dependencies(cells, library),
                   notebook.metadata.get("data_files"), notebook.metadata.get("smoke"))


@dataclass
class BookPlan:
    """Every notebook of a run with its key, and what the run needs to execute them."""

    jobs: list[Job]
    problems: list[Problem]
    profile: str  # resolved: full or smoke
    gpus: list[str]
    settings: BookSettings
    manifest: Manifest
    cache: object  # jupyter-cache's cache


def plan_book(book: Path, paths: list[Path] | None, profile: str,
              force: bool = False) -> BookPlan:
    """Read the book, its settings, cache and manifest, and key every notebook (of
    ``paths``, else of the TOC); raises TocError or ConfigError."""
    sources = select_sources(book, paths)
    settings = book_settings(book)
    env = kernel_environment(book)
    gpus = detect_gpus(env)
    profile = resolve_profile(profile, gpus)
    settings.cache_path.mkdir(parents=True, exist_ok=True)
    cache = get_cache(settings.cache_path)
    manifest = load_manifest(settings.cache_path)
    library = read_library(library_root(book))
    jobs, problems = plan(book, sources, settings, library, profile, env, manifest, cache,
                          force)
    return BookPlan(jobs, problems, profile, gpus, settings, manifest, cache)


def smoke_module_digest(book: Path) -> str:
    """SHA-256 (short) of the ``dlbook/_smoke.py`` the kernels load ("" if there is none)."""
    path = library_root(book) / "_smoke.py"
    if not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def cached_hashes(cache) -> set[str]:
    """The hashes of the notebooks jupyter-cache holds records of."""
    return {record.hashkey for record in cache.list_cache_records()}


def is_cached(cache, cache_hash: str, hashes: set[str] | None = None) -> bool:
    """A record has the notebook's hash and its executed copy is on disk."""
    if cache_hash not in (cached_hashes(cache) if hashes is None else hashes):
        return False
    # jupyter-cache keeps the executed notebook at executed/<hashkey>/base.ipynb
    return (Path(cache.path) / "executed" / cache_hash / "base.ipynb").is_file()


def merged(original: nbformat.NotebookNode, executed: nbformat.NotebookNode):
    """The notebook as read, with the executed outputs (so its cache hash is unchanged)."""
    result = copy.deepcopy(original)
    for cell, done in zip(result.cells, executed.cells, strict=True):
        if cell.cell_type == "code":
            cell.outputs = done.get("outputs", [])
            cell.execution_count = done.get("execution_count")
    if "language_info" in executed.metadata:
        result.metadata["language_info"] = executed.metadata["language_info"]
    return result


def store(job: Job, outcome: Outcome, manifest: Manifest, cache, shard: str = "") -> None:
    """Cache one executed notebook, then record its key (in this order)."""
    notebook = merged(job.notebook, outcome.notebook)
    seconds = outcome.result.get("seconds", outcome.seconds)
    cache.cache_notebook_bundle(
        CacheBundleIn(notebook, str(job.source), data={"execution_seconds": seconds}),
        check_validity=False, overwrite=True)
    old = manifest.entries.get(job.name)
    manifest.entries[job.name] = Entry(
        key=job.parts.key, parts=asdict(job.parts), profile=job.parts.profile,
        device=outcome.slot.device, seconds=round(seconds, 2),
        executed=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        cache_hash=job.cache_hash, shard=shard)
    manifest.save()
    if old and old.cache_hash != job.cache_hash and not any(
            e.cache_hash == old.cache_hash for e in manifest.entries.values()):
        _drop_record(cache, old.cache_hash)


def _drop_record(cache, cache_hash: str) -> None:
    """Remove a superseded record (no other notebook of the manifest uses it)."""
    for record in cache.list_cache_records():
        if record.hashkey == cache_hash:
            cache.remove_cache(record.pk)


def recorded_seconds(jobs: list[Job], manifest: Manifest) -> dict[str, float | None]:
    """The seconds the manifest recorded for each job's notebook (None: never ran)."""
    return {job.name: (manifest.entries[job.name].seconds
                       if job.name in manifest.entries else None) for job in jobs}


def longest_first(jobs: list[Job], manifest: Manifest) -> list[Job]:
    """``jobs`` by recorded duration, longest first (a new notebook counts as the mean),
    so that the run does not end with one long notebook on one core."""
    cost = costs(recorded_seconds(jobs, manifest))
    return sorted(jobs, key=lambda job: -cost[job.name])


def shard_jobs(todo: list[Job], shard: Shard, manifest: Manifest
               ) -> tuple[list[Job], list[Job]]:
    """The jobs of ``shard`` and the others, split by the recorded durations."""
    mine = set(split(recorded_seconds(todo, manifest), shard.count)[shard.index])
    return [j for j in todo if j.name in mine], [j for j in todo if j.name not in mine]


def failure_report(job: Job, outcome: Outcome) -> str:
    """Path, cell number and first line, the line in the source, and the traceback."""
    if outcome.result is None:
        return (f"{job.name}: the worker process died before finishing\n"
                + _indent(outcome.log.strip()))
    error = outcome.result["error"]
    index = error.get("cell_index")
    code = [i for i, c in enumerate(job.notebook.cells) if c.cell_type == "code"]
    number = code.index(index) + 1 if index in code else None
    where, at = job.name, ""
    if number is not None:
        source = job.notebook.cells[index].source
        first = next((ln for ln in source.splitlines() if ln.strip()), "").strip()
        line = cell_line(job.source, number)
        where = f"{job.name}:{line}" if line else job.name
        offset = _error_offset(error)
        at = f"code cell {number} (line {line}): {first}" if line else \
            f"code cell {number}: {first}"
        if line and offset:
            where = f"{job.name}:{line + offset - 1}"
    head = f"{job.name}: {at}" if at else job.name
    if error.get("ename") == "Timeout":  # no traceback: the kernel was stopped
        cell = f"code cell {number} (line {line})" if line else f"code cell {number}"
        return f"{where}: {cell} {error.get('evalue')}"
    return (f"{head}\n  {where}: {error.get('ename')}: {error.get('evalue')}\n"
            + _indent(error.get("traceback", "").strip()))


def cell_line(source: Path, number: int) -> int | None:
    """First line of code cell ``number`` in a MyST source (None for .ipynb)."""
    if source.suffix != ".md":
        return None
    try:
        cells = read_notebook(source).code_cells
    except NotebookError:
        return None
    return cells[number - 1].line if number <= len(cells) else None


def _error_offset(error: dict) -> int | None:
    """The line within the cell that raised, from IPython's ``Cell In[n], line k``."""
    count = error.get("execution_count")
    marks = re.findall(r"Cell In\[(\d+)\], line (\d+)", error.get("traceback", ""))
    lines = [int(k) for n, k in marks if count is None or int(n) == count]
    return lines[-1] if lines else None


def _indent(text: str, limit: int = 80) -> str:
    lines = text.splitlines()
    if len(lines) > limit:
        lines = lines[:10] + ["    ..."] + lines[-(limit - 11):]
    return "\n".join("    " + line for line in lines)


def execute_book(book: Path, paths: list[Path] | None = None, profile: str = "auto",
                 jobs: int | None = None, force: bool = False, stream=None,
                 refresh: bool = True, shard: Shard | None = None,
                 dry_run: bool = False) -> int:
    """Execute what is not cached, holding the book's build lock; 0 when every notebook
    is cached or ran cleanly.

    The library is regenerated first unless the caller has just done it (``refresh``).
    With ``shard``, only that shard's part of the notebooks still to run executes
    (:mod:`tools.execution.shards`). With ``dry_run``, nothing executes: the notebooks
    that would run are listed with their reasons, and the status is 1 if there are any
    (so a script can ask whether a cache covers the sources)."""
    stream = stream or sys.stderr
    book = book.resolve()
    try:
        with build_lock(book, "execute"):
            return _execute(book, paths, profile, jobs, force, stream, refresh, shard,
                            dry_run)
    except BuildLocked as err:
        print(err, file=stream)
        say("execute refused: nothing was executed", stream)
        return 1


def _execute(book: Path, paths: list[Path] | None, profile: str, jobs: int | None,
             force: bool, stream, refresh: bool, shard: Shard | None,
             dry_run: bool = False) -> int:
    if refresh and not refresh_library(book, stream):
        say("execute stopped: a #@save block is invalid (above); nothing was executed and "
            "the library was left as it was", stream)
        return 1
    try:
        state = plan_book(book, paths, profile, force)
    except (TocError, ConfigError) as err:
        print(err, file=stream)
        return 2
    work, problems, profile = state.jobs, state.problems, state.profile
    settings, manifest, cache = state.settings, state.manifest, state.cache
    for problem in problems:
        print(problem, file=stream)
    todo = [job for job in work if job.reason]
    rows = {job.name: Row(job.name, None, "cached") for job in work if not job.reason}
    if shard is not None:
        todo, others = shard_jobs(todo, shard, manifest)
        rows.update((job.name, Row(job.name, None, "other shard", job.reason))
                    for job in others)
        say(f"execute: shard {shard}: {len(todo)} of the {len(todo) + len(others)} "
            "notebook(s) still to run", stream)
    if not todo:
        say(f"execute: all {len(work)} notebook(s) cached ({profile} profile)", stream)
        return 1 if problems else 0
    if dry_run:
        print(table([Row(job.name, None, "to run", job.reason) for job in todo]),
              file=stream)
        say(f"execute: dry run: {len(todo)} of {len(work)} notebook(s) would run "
            f"({profile} profile); nothing was executed", stream)
        return 1
    slots = make_slots(jobs, state.gpus)
    say(f"execute: {len(todo)} of {len(work)} notebook(s) to run, {profile} profile, "
        f"{len(slots)} worker(s) on {slots[0].device}", stream)
    todo = longest_first(todo, manifest)  # the last notebook to start is a short one
    by_name = {job.name: job for job in todo}
    tasks = [Task(job.name, job.notebook, job.source.parent, job.env, settings.timeout,
                  settings.allow_errors) for job in todo]
    progress = Progress(len(todo), stream)
    failures: list[str] = []
    started: set[str] = set()
    kernels: dict[str, int] = {}

    def on_change(running) -> None:
        for item in running:
            if item.task.name not in started:
                started.add(item.task.name)
                progress.started(item.task.name, by_name[item.task.name].reason)
        progress.update([(r.task.name, r.cell, r.started) for r in running])

    try:
        with contextlib.closing(run_tasks(tasks, slots, on_change)) as outcomes:
            for outcome in outcomes:
                job = by_name[outcome.task.name]
                ok = bool(outcome.result and outcome.result["ok"])
                start = (outcome.result or {}).get("kernel", "not started")
                kernels[start] = kernels.get(start, 0) + 1
                if ok:
                    with interrupts_deferred():
                        store(job, outcome, manifest, cache, str(shard or ""))
                else:
                    failures.append(failure_report(job, outcome))
                progress.finished(job.name, ok, outcome.seconds)
                rows[job.name] = Row(job.name, outcome.seconds,
                                     "executed" if ok else "FAILED", job.reason)
    except KeyboardInterrupt:
        progress.close()
        say(f"execute: interrupted; {sum(r.status == 'executed' for r in rows.values())} "
            f"notebook(s) finished and cached, the rest run next time", stream)
        return 130
    progress.close()
    order = [job.name for job in work]
    print(table([rows.get(name, Row(name, None, "not run")) for name in order]), file=stream)
    say("execute: kernels " + ", ".join(f"{how}: {count}" for how, count
                                        in sorted(kernels.items())), stream)
    for failure in failures:
        say(f"FAILED {failure}", stream)
    if failures:
        say(f"execute: {len(failures)} notebook(s) failed; the others are cached", stream)
    return 1 if failures or problems else 0

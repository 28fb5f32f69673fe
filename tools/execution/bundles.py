"""Cache bundles: the executed notebooks of one machine, in one file another can import.

A bundle is a zip archive (``tools cache export BUNDLE``):

- ``bundle.json``: the bundle format, the manifest schema it was written with, the
  version of the book's tools, the profile, and per notebook the manifest entry (key and
  its parts, device, seconds, shard, time of execution);
- ``notebooks/<page>.ipynb``: each notebook as jupyter-cache stores it (the page as
  myst-nb reads it, with the executed outputs).

Only notebooks whose cached outputs are current (their key is the one the sources give
now) are exported. ``tools cache import BUNDLE...`` checks every bundle whole before it
writes anything: a file that is not a complete bundle, a format or schema this version
cannot read, an entry of another profile, of a page the book does not have, or whose key
differs from the one the sources give now (stale) is refused with the page and the
reason, and the cache is left untouched. Otherwise each notebook is stored in
jupyter-cache and its entry in the manifest, exactly as if it had executed here; so
importing the bundles of N shards gives the cache of one single-machine run.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from jupyter_cache.base import CacheBundleIn

from tools.core.files import PROJECT_ROOT
from tools.core.problems import Problem, ProblemError
from tools.execution.engine import BookPlan, Job, is_cached, plan_book
from tools.execution.keys import explain
from tools.execution.manifest import FORMAT as MANIFEST_FORMAT
from tools.execution.manifest import Entry
from tools.library.generate import project_version

BUNDLE_FORMAT = 1
INDEX = "bundle.json"
FOLDER = "notebooks"


class BundleError(ProblemError):
    """Bundles that cannot be imported (or exported), one problem per reason."""


@dataclass(frozen=True)
class Imported:
    """One notebook of a bundle, checked against the sources and ready to store."""

    job: Job
    entry: Entry
    notebook: nbformat.NotebookNode


def _member(name: str) -> str:
    return f"{FOLDER}/{name}.ipynb"


def export_bundle(book: Path, target: Path, profile: str = "auto") -> int:
    """Write the current cached notebooks of ``book`` into the bundle ``target``; returns
    how many. Raises BundleError when no notebook is current."""
    state = plan_book(book.resolve(), None, profile)
    chosen = [job for job in state.jobs
              if not job.reason and job.name in state.manifest.entries]
    if not chosen:
        raise BundleError.at(target, 1, f"nothing to export: no notebook of the book has "
                                        f"current outputs in the {state.profile} profile")
    index = {"format": BUNDLE_FORMAT, "schema": MANIFEST_FORMAT,
             "tools": project_version(PROJECT_ROOT), "profile": state.profile,
             "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
             "notebooks": {job.name: asdict(state.manifest.entries[job.name])
                           for job in chosen}}
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".part")
    with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as archive:
        for job in chosen:
            record = state.cache.match_cache_notebook(job.notebook)
            stored = state.cache.get_cache_bundle(record.pk).nb
            archive.writestr(_member(job.name), nbformat.writes(stored))
        archive.writestr(INDEX, json.dumps(index, indent=1, sort_keys=True))
    staging.replace(target)
    return len(chosen)


def _read_index(bundle: Path, archive: zipfile.ZipFile) -> dict:
    if archive.testzip() is not None or INDEX not in archive.namelist():
        raise BundleError.at(bundle, 1, "not a complete cache bundle (truncated or "
                                        "damaged): export it again")
    try:
        index = json.loads(archive.read(INDEX))
    except ValueError as err:
        raise BundleError.at(bundle, 1, f"its {INDEX} is not JSON: {err}") from None
    if index.get("format") != BUNDLE_FORMAT or index.get("schema") != MANIFEST_FORMAT:
        raise BundleError.at(bundle, 1, f"bundle format {index.get('format')}, cache "
                                        f"schema {index.get('schema')}: this version reads "
                                        f"format {BUNDLE_FORMAT}, schema {MANIFEST_FORMAT} "
                                        f"(bundle made by tools {index.get('tools')})")
    return index


def refusal(entry: Entry, job: Job | None, profile: str) -> str | None:
    """Why a bundle's entry may not be imported (None: it may)."""
    if entry.profile != profile:
        return f"made with the {entry.profile} profile; this import is for {profile}"
    if job is None:
        return "not a notebook of this book's table of contents"
    if entry.key != job.parts.key:
        return f"stale: the sources changed since ({explain(entry.parts, job.parts)})"
    return None


def check_bundle(bundle: Path, state: BookPlan) -> tuple[list[Imported], list[Problem]]:
    """The notebooks of ``bundle`` that may be imported into the book of ``state``, and
    a problem (naming the page) for each one that may not."""
    jobs = {job.name: job for job in state.jobs}
    found, problems = [], []
    try:
        with zipfile.ZipFile(bundle) as archive:
            index = _read_index(bundle, archive)
            for name, data in sorted(index.get("notebooks", {}).items()):
                entry, job = Entry(**data), jobs.get(name)
                reason = refusal(entry, job, state.profile)
                if reason:
                    problems.append(Problem(bundle, 1, f"{name}: refused, {reason}"))
                    continue
                notebook = nbformat.reads(archive.read(_member(name)), as_version=4)
                found.append(Imported(job, entry, notebook))
    except (OSError, zipfile.BadZipFile, KeyError, TypeError) as err:
        raise BundleError.at(bundle, 1, f"not a readable cache bundle: {err}") from None
    return found, problems


def import_bundles(book: Path, bundles: list[Path], profile: str = "auto") -> int:
    """Check every bundle, then store all their notebooks; returns how many. Raises
    BundleError (and writes nothing) when any bundle or entry is refused."""
    state = plan_book(book.resolve(), None, profile)
    accepted: dict[str, Imported] = {}
    problems: list[Problem] = []
    for bundle in bundles:
        try:
            found, refused = check_bundle(bundle, state)
        except BundleError as err:
            problems += err.problems
            continue
        problems += refused
        accepted.update((item.job.name, item) for item in found)
    if problems:
        raise BundleError(problems)
    for item in accepted.values():
        _store(item, state)
    state.manifest.save()
    return len(accepted)


def _store(item: Imported, state: BookPlan) -> None:
    """Put one imported notebook into jupyter-cache, then its entry into the manifest."""
    job = item.job
    if not is_cached(state.cache, job.cache_hash) or \
            state.manifest.entries.get(job.name, None) != item.entry:
        state.cache.cache_notebook_bundle(
            CacheBundleIn(item.notebook, str(job.source),
                          data={"execution_seconds": item.entry.seconds}),
            check_validity=False, overwrite=True)
    state.manifest.entries[job.name] = Entry(**{**asdict(item.entry),
                                                "cache_hash": job.cache_hash})

"""Sphinx extension: keep pages in step with the execution manifest, and report on it.

- ``env-get-outdated``: a page is re-read when the outputs recorded for it in the manifest
  (:mod:`tools.execution.manifest`, written by ``tools execute``) are not the ones it was last read
  with. The stamp (key + time of execution) of each page's outputs is stored on the Sphinx
  environment, so it is pickled with it. Sphinx alone re-reads only edited sources, so
  without this a library edit would leave pages with stale outputs.
- Each executed page ends with a note saying which profile and device produced its
  outputs, how long they took and when.
- The ``execution-report`` directive renders a table of every executed notebook (linked),
  its time, profile, device, shard and date. Pages holding it are re-read whenever any
  notebook's outputs changed.
- When any page's outputs come from the smoke profile, the site's banner says so.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from tools.core.files import DEFAULT_CACHE
from tools.execution.manifest import Entry, load_manifest

logger = logging.getLogger(__name__)


class execution_report(nodes.General, nodes.Element):  # noqa: N801 (docutils style)
    """Placeholder for the report table, filled in when the page is written."""


class ExecutionReportDirective(SphinxDirective):
    """``{execution-report}``: a table of the executed notebooks."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        return [execution_report()]


def _cache_dir(app: Sphinx, configured: str | None) -> Path:
    """The execution cache folder: as configured (``execute.cache_path``), or the
    default, relative to the book."""
    path = Path(configured or DEFAULT_CACHE)
    return path if path.is_absolute() else Path(app.srcdir) / path


def manifest_entries(app: Sphinx) -> dict[str, Entry]:
    """The manifest's entries keyed by docname (read once per build)."""
    cached = getattr(app, "_dlbook_entries", None)
    if cached is None:
        configured = getattr(getattr(app.env, "mystnb_config", None),
                             "execution_cache_path", None)
        manifest = load_manifest(_cache_dir(app, configured))
        cached = {}
        for name, entry in manifest.entries.items():
            docname = app.env.path2doc(str(Path(app.srcdir) / name))
            if docname:
                cached[docname] = entry
        app._dlbook_entries = cached
    return cached


def _state(env: BuildEnvironment) -> tuple[dict[str, str], set[str]]:
    if not hasattr(env, "dlbook_exec_stamps"):
        env.dlbook_exec_stamps = {}
        env.dlbook_report_docs = set()
        env.dlbook_report_stamp = ""
    return env.dlbook_exec_stamps, env.dlbook_report_docs


def _report_stamp(entries: dict[str, Entry], docs) -> str:
    text = "\n".join(f"{d} {entries[d].stamp}" for d in sorted(entries) if d in docs)
    return hashlib.sha256(text.encode()).hexdigest()


def outdated_by_execution(app: Sphinx, env: BuildEnvironment, added, changed, removed):
    """Pages whose outputs changed since they were read, and the report pages."""
    app._dlbook_entries = None
    entries = manifest_entries(app)
    stamps, report_docs = _state(env)
    skip = set(added) | set(changed) | set(removed)
    recorded = {doc: entry.stamp for doc, entry in entries.items()}
    stale = sorted(doc for doc in set(recorded) | set(stamps)
                   if doc in env.all_docs and doc not in skip
                   and stamps.get(doc) != recorded.get(doc))
    if stale:
        logger.info("[dlbook] re-reading %d page(s) whose outputs were re-executed: %s",
                    len(stale), ", ".join(stale))
    reports = []
    if stale or env.dlbook_report_stamp != _report_stamp(entries, env.found_docs):
        reports = sorted(d for d in report_docs if d in env.all_docs and d not in skip)
    return [*stale, *reports]


def smoke_summary(settings: dict) -> str:
    """The limits of a smoke run, in words (see dlbook/_smoke.py); "" when there are none."""
    epochs, batches = settings.get("max_epochs"), settings.get("max_batches")
    train, val = settings.get("max_train"), settings.get("max_val")
    parts = []
    if epochs or batches:
        limit = " of ".join(filter(None, [epochs and f"{epochs} epoch(s)",
                                          batches and f"at most {batches} minibatches"]))
        parts.append(f"{limit} per training run")
    if train or val:
        parts.append(f"{f'{train:,}' if train else 'all'} training and "
                     f"{f'{val:,}' if val else 'all'} validation examples per dataset")
    if settings.get("image_size"):
        parts.append(f"images of at most {settings['image_size']} pixels a side")
    width = settings.get("width") or 1
    if width < 1:
        parts.append(f"hidden layers of trained networks at {width:g} of their published "
                     f"width")
    return "Limits: " + "; ".join(parts) if parts else ""


def _note(entry: Entry) -> nodes.paragraph:
    device = entry.device or "an unknown device"
    shard = f" (shard {entry.shard} of a sharded run)" if entry.shard else ""
    text = (f"Outputs on this page were produced with the {entry.profile} profile on "
            f"{device}{shard} in {entry.seconds:.1f} s on {entry.executed[:10]}.")
    if entry.profile == "smoke":
        summary = smoke_summary(entry.parts.get("smoke", {}))
        text += (" The smoke profile lets the book be built on a small CPU machine. "
                 + (summary + ". " if summary else "")
                 + "The code is exactly as printed; when you run this notebook yourself, "
                 "nothing is reduced and you get the full run.")
    return nodes.paragraph("", "", nodes.emphasis(text, text),
                           classes=["dlbook-execution-note"])


def record_read(app: Sphinx, doctree: nodes.document) -> None:
    """Remember the stamp a page was read with, and add its execution note."""
    env = app.env
    stamps, report_docs = _state(env)
    entries = manifest_entries(app)
    entry = entries.get(env.docname)
    if entry is not None:
        stamps[env.docname] = entry.stamp
        section = next(iter(doctree.findall(nodes.section)), doctree)
        section.append(_note(entry))
    if next(iter(doctree.findall(execution_report)), None) is not None:
        report_docs.add(env.docname)
        env.dlbook_report_stamp = _report_stamp(entries, env.found_docs)


def purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    stamps, report_docs = _state(env)
    stamps.pop(docname, None)
    report_docs.discard(docname)


def merge(app: Sphinx, env: BuildEnvironment, docnames, other: BuildEnvironment) -> None:
    stamps, report_docs = _state(env)
    other_stamps, other_reports = _state(other)
    stamps.update({d: s for d, s in other_stamps.items() if d in docnames})
    report_docs.update(d for d in other_reports if d in docnames)
    if other.dlbook_report_stamp:
        env.dlbook_report_stamp = other.dlbook_report_stamp


def _reading_order(env: BuildEnvironment) -> list[str]:
    order, todo, seen = [], [env.config.root_doc], set()
    while todo:
        doc = todo.pop(0)
        if doc in seen:
            continue
        seen.add(doc)
        order.append(doc)
        todo[:0] = env.toctree_includes.get(doc, [])
    return order


def _cell(*children: nodes.Node) -> nodes.entry:
    return nodes.entry("", *[nodes.paragraph("", "", c) if not isinstance(
        c, nodes.paragraph) else c for c in children])


def report_table(app: Sphinx, fromdoc: str) -> list[nodes.Node]:
    """The report: one row per executed page, in reading order."""
    entries = manifest_entries(app)
    docs = [d for d in _reading_order(app.env) if d in entries]
    docs += sorted(d for d in entries if d not in docs and d in app.env.all_docs)
    if not docs:
        return [nodes.paragraph(text="No notebook has been executed yet.")]
    headers = ("Notebook", "Time", "Profile", "Device", "Shard", "Date")
    table, group = nodes.table(classes=["dlbook-execution-report"]), nodes.tgroup(cols=6)
    table += group
    group.extend(nodes.colspec(colwidth=w) for w in (36, 9, 9, 24, 8, 14))
    head, body = nodes.thead(), nodes.tbody()
    head += nodes.row("", *[_cell(nodes.Text(h)) for h in headers])
    for doc in docs:
        entry = entries[doc]
        title = app.env.titles[doc].astext() if doc in app.env.titles else doc
        link = nodes.reference("", title, internal=True,
                               refuri=app.builder.get_relative_uri(fromdoc, doc))
        body += nodes.row("", _cell(link), _cell(nodes.Text(f"{entry.seconds:.1f} s")),
                          *[_cell(nodes.Text(v)) for v in
                            (entry.profile, entry.device, entry.shard or "-",
                             entry.executed[:10])])
    group += head
    group += body
    total = sum(entries[d].seconds for d in docs)
    summary = nodes.paragraph(text=f"{len(docs)} notebook(s), {total / 60:.1f} minutes of "
                                   f"execution in all.")
    return [table, summary]


def fill_reports(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    for node in list(doctree.findall(execution_report)):
        node.replace_self(report_table(app, docname))


SMOKE_BANNER = ("Outputs on this site come from the smoke profile: shortened runs on a "
                "small CPU machine. The code is as published; run a notebook yourself "
                "for the full run.")


def announce_smoke(app: Sphinx, config) -> None:
    """Say in the site's banner when any page's outputs come from the smoke profile
    (unless ``_config.yml`` sets its own announcement)."""
    cache = _cache_dir(app, getattr(config, "nb_execution_cache_path", None))
    profiles = {entry.profile for entry in load_manifest(cache).entries.values()}
    options = dict(getattr(config, "html_theme_options", None) or {})
    if "smoke" in profiles and not options.get("announcement"):
        options["announcement"] = SMOKE_BANNER
        config.html_theme_options = options


def setup(app: Sphinx) -> dict:
    app.add_node(execution_report)
    app.connect("config-inited", announce_smoke)
    app.add_directive("execution-report", ExecutionReportDirective)
    app.connect("env-get-outdated", outdated_by_execution)
    app.connect("doctree-read", record_read)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("doctree-resolved", fill_reports)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}

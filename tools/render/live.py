"""Serve the website and rebuild it whenever a source is saved (``make live``).

Each rebuild is ``python -m tools html`` (:func:`tools.render.build.run_build`): the
library, the executor (only notebooks whose key changed run again) and Sphinx, published
into ``_build/html`` only when the build succeeds. It runs in a process forked from a
warm one (:class:`tools.render.warm.WarmBuilder`), so it starts with everything imported.
The server sends the files of ``_build/html`` with sphinx-autobuild's script added to
every HTML page; the script keeps a websocket open and reloads the page when the server
says a new site is published.

What is watched (:class:`Sources`): ``_toc.yml``, ``_config.yml``, and the pages, images
and bibliography in the folders the TOC and ``_config.yml`` name when the server starts
(``chapters/`` and ``book/``; a new top-level folder needs a restart), never hidden files,
editor back-ups, downloaded ``data/`` folders, or ``book/api.md``, which the build itself
writes. Saves made during a build are gathered into the next one; builds never overlap;
a failed build leaves the served site, and the open pages, as they were.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import webbrowser
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
import watchfiles
from sphinx_autobuild.middleware import JavascriptInjectorMiddleware
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from tools.core.interrupts import interruptible
from tools.core.mystnb import ConfigError, read_config
from tools.core.problems import ProblemError, say
from tools.core.toc import toc_sources
from tools.render.warm import WarmBuilder

ROOT_FILES = ("_toc.yml", "_config.yml")
SOURCE_FOLDERS = ("chapters", "book")  # watched even while the TOC cannot be read
SOURCE_SUFFIXES = frozenset({".md", ".ipynb", ".yml", ".yaml", ".bib", ".svg", ".png",
                             ".jpg", ".jpeg", ".gif", ".pdf", ".sty"})
GENERATED = frozenset({"book/api.md"})  # written by the build's library step
SKIPPED_PARTS = frozenset({"data", "__pycache__", "_build"})  # and hidden ones
RELOAD_PATH = "/websocket-reload"  # where sphinx-autobuild's page script connects


@dataclass(frozen=True)
class Sources:
    """What a live book watches: the top-level folders of its pages and bibliography
    (recursively) and, in the book's own folder, its configuration and top-level pages."""

    book: Path
    folders: tuple[Path, ...]
    root_files: frozenset[str]

    def __contains__(self, path: Path) -> bool:
        """Whether a change of ``path`` (absolute) should rebuild the book."""
        try:
            rel = path.relative_to(self.book)
        except ValueError:
            return False
        if len(rel.parts) == 1:
            return rel.name in self.root_files
        if self.book / rel.parts[0] not in self.folders or rel.as_posix() in GENERATED:
            return False
        if any(part.startswith(".") or part in SKIPPED_PARTS for part in rel.parts):
            return False  # .ipynb_checkpoints, editor files, downloaded data
        return path.suffix.lower() in SOURCE_SUFFIXES


def book_sources(book: Path) -> Sources:
    """The sources of ``book`` (absolute) as its TOC and ``_config.yml`` name them now."""
    try:
        pages = [path.relative_to(book) for path in toc_sources(book)]
    except (ProblemError, ValueError):
        pages = []  # the first build reports it; the usual folders are watched meanwhile
    try:
        bibliography = [Path(name) for name in read_config(book).get("bibtex_bibfiles") or []]
    except ConfigError:
        bibliography = []
    tops = {path.parts[0] for path in pages + bibliography if len(path.parts) > 1}
    folders = sorted(book / name for name in tops.union(SOURCE_FOLDERS)
                     if (book / name).is_dir() and not name.startswith(".")
                     and name not in SKIPPED_PARTS)
    root_files = frozenset(ROOT_FILES).union(p.name for p in pages if len(p.parts) == 1)
    return Sources(book, tuple(folders), root_files)


def shown(book: Path, paths: Iterable[Path]) -> str:
    names = sorted({path.relative_to(book).as_posix() for path in paths})
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


@dataclass
class LiveBook:
    """The watcher, the builder and the reload websockets of one served book."""

    book: Path
    profile: str = "auto"
    url: str = ""
    open_browser: bool = False
    changes: asyncio.Queue = field(default_factory=asyncio.Queue)
    pages: set = field(default_factory=set)  # their reload websockets
    warm: WarmBuilder | None = None

    async def watch(self, sources: Sources, folders: list[Path], recursive: bool) -> None:
        async for batch in watchfiles.awatch(
                *folders, recursive=recursive,
                watch_filter=lambda _change, path: Path(path) in sources):
            await self.changes.put({Path(path) for _change, path in batch})

    async def rebuild(self) -> int:
        if self.warm is None:
            self.warm = await asyncio.to_thread(WarmBuilder, self.book)
        return await self.warm.run(self.profile)

    async def builder(self) -> None:
        """The first build, then one build per batch of saves, one at a time."""
        say(f"live: first build of {self.book}; the site is served on {self.url}")
        code = await self.rebuild()
        say(f"live: serving {self.url}; watching for changes (Ctrl-C stops)"
            if code == 0 else f"live: the first build failed (exit {code}); "
            f"fix the problem above and save")
        if self.open_browser:
            webbrowser.open(self.url)
        while True:
            changed = await self.changes.get()
            while not self.changes.empty():  # saves made during the last build
                changed |= self.changes.get_nowait()
            say(f"live: changed {shown(self.book, changed)}; rebuilding")
            code = await self.rebuild()
            if code == 0:
                await self.reload_pages()
                say(f"live: published; open pages reload ({self.url})")
            else:
                say(f"live: build failed (exit {code}); the served site is unchanged")

    async def reload_pages(self) -> None:
        for page in list(self.pages):
            try:
                await page.send_text("refresh")
            except Exception:  # a page that went away: forget it, tell the others
                self.pages.discard(page)

    async def reload_socket(self, page: WebSocket) -> None:
        """The websocket of one open page, held until the page goes away."""
        await page.accept()
        self.pages.add(page)
        try:
            async for _message in page.iter_text():
                pass
        except WebSocketDisconnect:
            pass
        finally:
            self.pages.discard(page)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app) -> AsyncIterator[None]:
        sources = book_sources(self.book)
        tasks = [asyncio.create_task(self.builder()),
                 asyncio.create_task(self.watch(sources, [self.book], recursive=False))]
        if sources.folders:
            tasks.append(asyncio.create_task(
                self.watch(sources, list(sources.folders), recursive=True)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await self.stop_build()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def stop_build(self) -> None:
        if self.warm is not None:
            await self.warm.stop()


def live_app(live: LiveBook, host: str, port: int) -> Starlette:
    site = live.book / "_build" / "html"
    return Starlette(
        routes=[WebSocketRoute(RELOAD_PATH, live.reload_socket),
                Mount("/", app=StaticFiles(directory=site, html=True, check_dir=False))],
        middleware=[Middleware(JavascriptInjectorMiddleware, ws_url=f"{host}:{port}")],
        lifespan=live.lifespan)


def serve(book: Path, profile: str = "auto", host: str = "127.0.0.1", port: int = 8000,
          open_browser: bool = False) -> int:
    """Serve ``book`` on ``host:port`` (0: any free port) until interrupted; the exit
    status. Nothing is built when the port cannot be had."""
    book = book.resolve()
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own
    try:
        listener.bind((host, port))
    except OSError as err:
        listener.close()
        say(f"live: cannot serve on {host}:{port} ({err.strerror}); is `make serve` or "
            "another `make live` running? Choose another port: --port N "
            "(make live LIVE_ARGS=\"--port N\")")
        return 2
    port = listener.getsockname()[1]
    live = LiveBook(book, profile, f"http://{host}:{port}/", open_browser)
    config = uvicorn.Config(live_app(live, host, port), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    try:
        with interruptible():  # uvicorn stops cleanly, then re-raises Ctrl-C or SIGTERM
            server.run(sockets=[listener])
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
    say("live: stopped")
    return 0

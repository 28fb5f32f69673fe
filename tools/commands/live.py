"""``python -m tools live [--port N] [--profile P] [--open]``: serve the website and
rebuild it on every save, reloading the open pages (:mod:`tools.render.live`)."""

from __future__ import annotations

import argparse

from tools.render.live import serve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", choices=("auto", "full", "smoke"), default="auto",
                        help="execution profile of notebooks that are not cached yet")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=8000,
                        help="port to serve on; 0 picks a free one (default: 8000)")
    parser.add_argument("--open", action="store_true",
                        help="open the site in a browser after the first build")


def run(args: argparse.Namespace) -> int:
    return serve(args.book, args.profile, args.host, args.port, args.open)

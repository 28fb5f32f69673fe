"""``python -m tools new-section --chapter C --slug S [--title T]``: write a section from
the template and list it in the TOC (:mod:`tools.core.sections`)."""

from __future__ import annotations

import argparse

import yaml

from tools.core.files import write_atomic
from tools.core.problems import say
from tools.core.sections import TOC, NewSectionError, plan


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chapter", required=True,
                        help="chapter folder (02-preliminaries), number (2) or slug")
    parser.add_argument("--slug", required=True,
                        help="the section's file name and label: lower-case-with-hyphens")
    parser.add_argument("--title", default=None,
                        help="the section's title (default: from the slug)")


def run(args: argparse.Namespace) -> int:
    try:
        made = plan(args.book, args.chapter, args.slug, args.title)
    except (NewSectionError, OSError, yaml.YAMLError) as err:
        say(f"new-section: {err}")
        return 1
    write_atomic(made.page, made.text)
    write_atomic(args.book / TOC, made.toc_text)
    say(f"created {made.page} and listed it in {args.book / TOC}; write it, then "
        "`make check` and `make html`")
    return 0

"""Stage 1: the ``dlbook`` library, generated from the chapters' ``#@save`` blocks, and
the static analysis of which library definitions a notebook uses (docs/library.md)."""

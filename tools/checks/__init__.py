"""Stage 3a: ``tools check``, the rules a page must pass before anything runs, each
problem reported as file:line (CONTRIBUTING.md lists the rules)."""

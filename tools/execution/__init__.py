"""Stage 2: execute the book's notebooks in parallel kernels into the jupyter-cache, each
keyed on everything its outputs depend on (docs/execution.md)."""

"""Applies the smoke profile's reductions in every Python process a book kernel starts.

``tools.execution.kernel_env`` puts this folder on the ``PYTHONPATH`` of the book's
kernels, so Python imports this module at start-up in each kernel and in every process
started from one (a ``torch.multiprocessing`` spawn, a ``subprocess`` running
``sys.executable``), all of which inherit the kernel's environment. When ``DLBOOK_SMOKE``
is set (the smoke profile only) it loads the hand-written ``dlbook/_smoke.py`` by its path,
without importing the ``dlbook`` package, and installs its import hook. Otherwise, as in
every reader's Jupyter or Colab, it does nothing. A kernel forked by
``tools.execution.forkserver`` calls :func:`install_smoke` itself, after taking its own
environment.
"""

import os


def install_smoke():
    """Install the reductions of ``DLBOOK_SMOKE``, if it is set (once per process)."""
    import importlib.util
    import sys

    if not os.environ.get("DLBOOK_SMOKE") or "dlbook_smoke" in sys.modules:
        return
    spec = importlib.util.find_spec("dlbook")
    path = spec and os.path.join(list(spec.submodule_search_locations)[0], "_smoke.py")
    if path and os.path.isfile(path):
        loader = importlib.util.spec_from_file_location("dlbook_smoke", path)
        sys.modules["dlbook_smoke"] = module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
        module.install()  # reads DLBOOK_SMOKE, checked above


install_smoke()

"""Applies the smoke profile's reductions in every Python process a book kernel starts.

``tools.execution.kernel_env`` puts this folder on the ``PYTHONPATH`` of the book's
kernels, so Python imports this module at start-up in each kernel and in every process
started from one (a ``torch.multiprocessing`` spawn, a ``subprocess`` running
``sys.executable``), all of which inherit the kernel's environment. When ``DLBOOK_SMOKE``
is set (the smoke profile only) it loads the hand-written ``dlbook/_smoke.py`` by its path,
without importing the ``dlbook`` package, and installs its import hook. Otherwise, as in
every reader's Jupyter or Colab, it does nothing. See docs/execution.md.
"""

import os

if os.environ.get("DLBOOK_SMOKE"):
    import importlib.util
    import sys

    _spec = importlib.util.find_spec("dlbook")
    _path = _spec and os.path.join(list(_spec.submodule_search_locations)[0], "_smoke.py")
    if _path and os.path.isfile(_path):
        _loader = importlib.util.spec_from_file_location("dlbook_smoke", _path)
        sys.modules["dlbook_smoke"] = _module = importlib.util.module_from_spec(_loader)
        _loader.loader.exec_module(_module)
        _module.install_from_path()

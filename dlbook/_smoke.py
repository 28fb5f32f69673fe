# HAND-WRITTEN: not generated from the chapters. `tools lib` leaves this file alone;
# edit it here. The contract it implements is documented in docs/execution.md.
"""The smoke profile's reductions, applied from outside the code a reader sees.

The book is built on small CPU machines, where some sections would train for hours. The
build's executor (``tools.execution.engine``) starts each kernel of such a run with the
environment variable ``DLBOOK_SMOKE``: a JSON object with the book's default reductions,
overridden by the page's own front-matter key ``smoke``. The kernel's start-up lines
(``tools.execution.kernel_env``) then load this module and call :func:`install`, which adjusts the
library's ``Trainer``, ``DataModule`` and ``Module`` classes when they are imported:

- ``max_epochs``: a trainer runs at most this many epochs;
- ``max_batches``: in each epoch it takes at most this many training minibatches, and as
  many validation minibatches;
- ``max_train`` / ``max_val``: a data module keeps a fixed random subset of at most this
  many examples of its ``train`` / ``val`` dataset, from the first loader it hands out;
- ``image_size``: a dataset that resizes images to a side larger than this resizes to
  this side instead;
- ``width``: a model that a trainer fits, or that ``apply_init`` initialises, while its
  lazy layers are still unshaped, gets ``width`` times as many outputs in each hidden
  lazy layer. The layer that produces the classes (the model's last lazy layer, and any
  with ``num_classes`` outputs) keeps its size; a grouped convolution keeps as many groups
  as still divide its channels;
- ``caps``: a mapping from parameter names to limits. Every ``dlbook`` function, and the
  ``__init__`` of every ``dlbook`` class, with a parameter of that name gets at most the
  limit for it (whole numbers only; other values pass unchanged). ``max_epochs`` caps
  each ``num_epochs`` parameter the same way, for training functions that loop by hand.
  In a kernel, the functions and classes that the page's own cells define get the
  ``caps`` too (:func:`watch_namespace`), so a section that defines a saved class and then
  uses it is reduced like the sections that import it.

Python processes that a smoke kernel starts (a ``torch.multiprocessing`` spawn, a
subprocess running ``sys.executable``) inherit ``DLBOOK_SMOKE`` and apply it too: the
kernels' ``PYTHONPATH`` holds ``tools/execution/kernel_site``, whose ``sitecustomize``
calls :func:`install` at interpreter start.

A reader's Jupyter or Colab never sets ``DLBOOK_SMOKE``, so nothing here runs there and the
classes behave exactly as the chapters print them. Nothing in this module imports the
``dlbook`` package: it patches the library's modules as they are imported.
"""

from __future__ import annotations

import copy
import functools
import importlib.abc
import importlib.machinery
import inspect
import json
import math
import os
import sys
from dataclasses import dataclass, field, fields

import torch
from torch.nn.modules.lazy import LazyModuleMixin

VARIABLE = "DLBOOK_SMOKE"
PATCHED = "_dlbook_smoke_patched"  # marks patched classes, in their own __dict__
REDUCED = "_dlbook_smoke_reduced"  # marks reduced data modules and models


@dataclass(frozen=True)
class Settings:
    """One page's reductions; ``None`` (or a width of 1) leaves that aspect alone."""

    max_epochs: int | None = None
    max_batches: int | None = None
    max_train: int | None = None
    max_val: int | None = None
    image_size: int | None = None
    width: float = 1.0
    caps: dict = field(default_factory=dict)

    def limits(self) -> dict:
        """Parameter name -> largest value, for the functions and constructors capped."""
        limits = {"num_epochs": self.max_epochs} if self.max_epochs else {}
        return {**limits, **self.caps}


def parse(text: str) -> Settings:
    """Settings from their JSON text; unknown keys raise ValueError."""
    values = json.loads(text)
    known = {f.name for f in fields(Settings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{VARIABLE}: unknown reduction(s) {', '.join(unknown)}")
    return Settings(**values)


def from_environment(environ=None) -> Settings | None:
    """The settings in ``DLBOOK_SMOKE``, or None when it is unset (a reader's run)."""
    text = (os.environ if environ is None else environ).get(VARIABLE, "")
    return parse(text) if text.strip() else None


def capped(value, limit):
    """``min(value, limit)``; a ``None`` on either side leaves ``value`` as it is."""
    if value is None or limit is None:
        return value
    return min(value, limit)


class LimitedLoader:
    """At most ``max_batches`` minibatches of ``loader`` per pass; anything else delegates."""

    def __init__(self, loader, max_batches):
        self.loader, self.max_batches = loader, max_batches

    def __len__(self):
        return min(len(self.loader), self.max_batches)

    def __iter__(self):
        for _, batch in zip(range(self.max_batches), self.loader, strict=False):
            yield batch

    def __getattr__(self, name):  # only for names the instance lacks
        if name == "loader" or name.startswith("__"):  # copy and pickle probe these
            raise AttributeError(name)
        return getattr(self.loader, name)


def limit_loader(loader, max_batches):
    """``loader`` itself when it is short enough (or has no length), else a LimitedLoader."""
    if loader is None or max_batches is None or isinstance(loader, LimitedLoader):
        return loader
    try:
        if len(loader) <= max_batches:
            return loader
    except TypeError:
        return loader
    return LimitedLoader(loader, max_batches)


def subset(dataset, size: int):
    """A fixed random subset of ``size`` examples (the same rows on every run).

    A dataset holding ``images`` and ``labels`` tensors (such as the book's
    ``ImageDataset``) keeps its type and attributes; any other becomes a ``Subset``.
    """
    rows = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:size]
    images, labels = getattr(dataset, "images", None), getattr(dataset, "labels", None)
    if isinstance(images, torch.Tensor) and isinstance(labels, torch.Tensor):
        smaller = copy.copy(dataset)
        smaller.images, smaller.labels = images[rows], labels[rows]
        return smaller
    return torch.utils.data.Subset(dataset, rows.tolist())


def reduce_dataset(dataset, limit, image_size):
    """``dataset`` with at most ``limit`` examples and images no larger than ``image_size``."""
    if not isinstance(dataset, torch.utils.data.Dataset):
        return dataset
    if limit is not None and len(dataset) > limit:
        dataset = subset(dataset, limit)
    target = dataset.dataset if isinstance(dataset, torch.utils.data.Subset) else dataset
    resize = getattr(target, "resize", None)
    if image_size is not None and resize is not None and max(resize) > image_size:
        target.resize = tuple(min(side, image_size) for side in resize)
    return dataset


def reduce_data_module(data, settings: Settings) -> None:
    """Apply the example and image-size caps to ``data.train`` and ``data.val``, once."""
    state = vars(data)
    if state.get(REDUCED):
        return
    state[REDUCED] = True
    for name, limit in (("train", settings.max_train), ("val", settings.max_val)):
        if name in state:
            state[name] = reduce_dataset(state[name], limit, settings.image_size)


def scaled(count: int, width: float) -> int:
    """``count`` outputs scaled by ``width``, rounded, at least one."""
    return max(1, round(count * width))


def _output_attribute(layer) -> str | None:
    for name in ("out_channels", "out_features"):
        if isinstance(getattr(layer, name, None), int):
            return name
    return None


def _fit_groups(layer, args):
    """Before a grouped lazy convolution takes its shape: keep only groups that divide."""
    layer.groups = math.gcd(layer.groups, args[0].shape[1], layer.out_channels)
    layer._dlbook_smoke_groups.remove()


def shrink_model(model, width: float) -> None:
    """Scale the hidden lazy layers of ``model`` by ``width`` before they take shapes."""
    if width == 1 or vars(model).get(REDUCED):
        return
    object.__setattr__(model, REDUCED, True)
    layers = [m for m in model.modules() if isinstance(m, LazyModuleMixin)
              and m.has_uninitialized_params() and _output_attribute(m)]
    num_classes = getattr(model, "num_classes", None)
    for layer in layers[:-1]:
        name = _output_attribute(layer)
        outputs = getattr(layer, name)
        if outputs == num_classes:
            continue
        setattr(layer, name, scaled(outputs, width))
        if getattr(layer, "groups", 1) > 1:
            layer._dlbook_smoke_groups = layer.register_forward_pre_hook(
                _fit_groups, prepend=True)


def patch_trainer(cls, settings: Settings) -> None:
    """Cap epochs and minibatches, and shrink the model, as a trainer sets them."""
    def __setattr__(self, name, value):
        if name == "max_epochs":
            value = capped(value, settings.max_epochs)
        elif name in ("train_dataloader", "val_dataloader"):
            value = limit_loader(value, settings.max_batches)
        elif name == "model":
            shrink_model(value, settings.width)
        object.__setattr__(self, name, value)

    cls.__setattr__ = __setattr__


def patch_data_module(cls, settings: Settings) -> None:
    """Reduce a data module's splits before it hands out its first loader."""
    getter = cls.__getattribute__

    def __getattribute__(self, name):
        if name in ("get_dataloader", "train_dataloader", "val_dataloader"):
            reduce_data_module(self, settings)
        return getter(self, name)

    cls.__getattribute__ = __getattribute__


def patch_module(cls, settings: Settings) -> None:
    """Shrink a model before ``apply_init`` gives its lazy layers their shapes."""
    apply_init = cls.apply_init

    @functools.wraps(apply_init)
    def wrapper(self, *args, **kwargs):
        shrink_model(self, settings.width)
        return apply_init(self, *args, **kwargs)

    cls.apply_init = wrapper


PATCHES = {"Trainer": patch_trainer, "DataModule": patch_data_module,
           "Module": patch_module}
CAPPED = "_dlbook_smoke_capped"  # marks functions (and constructors) already capped


def cap_arguments(function, limits: dict):
    """``function`` with each whole-number argument named in ``limits`` capped at its
    limit (``function`` itself when it has no such parameter)."""
    if getattr(function, CAPPED, False):
        return function
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return function
    named = {name: limit for name, limit in limits.items()
             if name in signature.parameters and limit is not None}
    if not named:
        return function

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        for name, limit in named.items():
            value = bound.arguments.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > limit:
                bound.arguments[name] = limit
        return function(*bound.args, **bound.kwargs)

    setattr(wrapper, CAPPED, True)
    return wrapper


def cap_definitions(namespace: dict, owner: str, limits: dict,
                    public_only: bool = False) -> None:
    """Cap the arguments of the functions and constructors in ``namespace`` (a module's
    ``vars``, or a notebook's user namespace) that module ``owner`` defines."""
    for name, value in list(namespace.items()):
        if getattr(value, "__module__", None) != owner or (public_only and name[:1] == "_"):
            continue
        if isinstance(value, type) and "__init__" in value.__dict__:
            value.__init__ = cap_arguments(value.__dict__["__init__"], limits)
        elif inspect.isfunction(value):
            namespace[name] = cap_arguments(value, limits)


def cap_namespace(module, limits: dict) -> None:
    """Cap the arguments of the functions and constructors that ``module`` defines."""
    cap_definitions(vars(module), module.__name__, limits)


def patch_namespace(module, settings: Settings) -> None:
    """Patch the classes of ``PATCHES`` that a ``dlbook`` module defines (once each), and
    cap the arguments its functions and constructors accept."""
    for name, patch in PATCHES.items():
        cls = vars(module).get(name)
        if (isinstance(cls, type) and cls.__module__ == module.__name__
                and not cls.__dict__.get(PATCHED)):
            patch(cls, settings)
            setattr(cls, PATCHED, True)
    limits = settings.limits()
    if limits:
        cap_namespace(module, limits)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds ``dlbook.*`` modules as usual and patches them right after they run."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def find_spec(self, fullname, path, target=None):
        if not fullname.startswith("dlbook.") or fullname == __name__:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            patch_namespace(module, self.settings)

        spec.loader.exec_module = exec_module
        return spec


def install(settings: Settings | None = None) -> Settings | None:
    """Apply ``settings`` (default: from ``DLBOOK_SMOKE``) to the library, now and on import."""
    settings = from_environment() if settings is None else settings
    if settings is None:
        return None
    for name, module in list(sys.modules.items()):
        if name.startswith("dlbook.") and module is not None:
            patch_namespace(module, settings)
    sys.meta_path.insert(0, _PatchOnImport(settings))
    return settings


def watch_namespace(shell, settings: Settings | None = None) -> None:
    """After every cell that ``shell`` (an IPython kernel's shell) runs, apply the page's
    ``caps`` to what the cell defined. Called by the kernel's start-up lines."""
    settings = from_environment() if settings is None else settings
    if settings is None or not settings.caps:
        return
    shell.events.register("post_run_cell",
                          lambda *result: cap_definitions(shell.user_ns, "__main__",
                                                          settings.caps, public_only=True))

"""The smoke profile's reductions (``dlbook/_smoke.py``) and how a page declares them.

The reductions are applied to the real library classes (Trainer, DataModule, Module) for
the length of one test and removed afterwards; a subprocess checks the whole path the
build uses (``DLBOOK_SMOKE`` in the environment, the module loaded by its path, the
library patched as it is imported). The executor's side (front matter to kernel, cache
key, page note) is tested in ``test_execute.py``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import dlbook
from dlbook import _smoke
from tools.execution.kernel_env import SMOKE_DEFAULTS, SmokeSettingsError, smoke_settings

REPO = Path(__file__).resolve().parents[1]
CLASSES = (dlbook.Trainer, dlbook.DataModule, dlbook.Module)
TOUCHED = ("__setattr__", "__getattribute__", "apply_init", _smoke.PATCHED)


@pytest.fixture()
def smoke():
    """Apply settings to the library's classes; undo it when the test ends."""
    saved = [{name: cls.__dict__[name] for name in TOUCHED if name in cls.__dict__}
             for cls in CLASSES]

    def apply(**values):
        settings = _smoke.Settings(**values)
        _smoke.patch_namespace(sys.modules[dlbook.Trainer.__module__], settings)
        return settings

    yield apply
    for cls, attributes in zip(CLASSES, saved, strict=True):
        for name in TOUCHED:
            if name in attributes:
                setattr(cls, name, attributes[name])
            elif name in cls.__dict__:
                delattr(cls, name)


def regression_data(num_train, num_val, batch_size=4):
    return dlbook.SyntheticRegressionData(torch.tensor([1.6, -2.3]), 3.5,
                                          num_train=num_train, num_val=num_val,
                                          batch_size=batch_size)


class Images(dlbook.DataModule):
    """A data module shaped like FashionMNIST: ImageDataset splits with a resize."""

    def __init__(self, n_train=200, n_val=50, resize=(96, 96)):
        super().__init__(num_workers=0)
        self.save_hyperparameters()
        images = torch.arange(n_train + n_val, dtype=torch.uint8).reshape(-1, 1, 1, 1)
        images = images.expand(-1, 1, 28, 28).clone()
        labels = torch.arange(n_train + n_val) % 10
        self.train = dlbook.ImageDataset(images[:n_train], labels[:n_train], resize)
        self.val = dlbook.ImageDataset(images[n_train:], labels[n_train:], resize)

    def get_dataloader(self, train):
        return torch.utils.data.DataLoader(self.train if train else self.val, batch_size=8)


class Widths(dlbook.Classifier):
    """Hidden lazy layers (one of them grouped) and a class layer."""

    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(64, kernel_size=3, padding=1), nn.ReLU(),
            nn.LazyConv2d(64, kernel_size=3, padding=1, groups=4), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.LazyLinear(100), nn.ReLU(), nn.LazyLinear(num_classes))


# --- what a reader gets: nothing -------------------------------------------------------


def test_no_variable_means_no_reductions():
    assert _smoke.from_environment({}) is None
    trainer = dlbook.Trainer(max_epochs=500)
    assert trainer.max_epochs == 500 and "__setattr__" not in dlbook.Trainer.__dict__


# --- Trainer ---------------------------------------------------------------------------


def test_trainer_caps_epochs_and_minibatches(smoke):
    smoke(max_epochs=2, max_batches=3)
    data = regression_data(num_train=40, num_val=24)  # 10 and 6 minibatches
    trainer = dlbook.Trainer(max_epochs=7)
    trainer.fit(dlbook.LinearRegressionScratch(2, lr=0.03), data)
    assert trainer.max_epochs == 2
    assert (trainer.num_train_batches, trainer.num_val_batches) == (3, 3)
    assert (trainer.train_batch_idx, trainer.val_batch_idx) == (6, 6)


def test_small_runs_are_left_alone(smoke):
    smoke(max_epochs=10, max_batches=50)
    trainer = dlbook.Trainer(max_epochs=3)
    trainer.fit(dlbook.LinearRegressionScratch(2, lr=0.03), regression_data(40, 24))
    assert trainer.max_epochs == 3 and trainer.num_train_batches == 10
    assert isinstance(trainer.train_dataloader, torch.utils.data.DataLoader)


def test_limited_loader_restarts_and_delegates():
    loader = torch.utils.data.DataLoader(list(range(10)), batch_size=1)
    limited = _smoke.limit_loader(loader, 4)
    assert len(limited) == 4 and [int(b) for b in limited] == [0, 1, 2, 3]
    assert [int(b) for b in limited] == [0, 1, 2, 3]  # every pass starts again
    assert limited.batch_size == 1  # attributes of the wrapped loader
    assert _smoke.limit_loader(loader, 10) is loader
    assert _smoke.limit_loader(None, 3) is None
    copied = copy.deepcopy(limited)  # a model that keeps its trainer can be copied
    assert len(copied) == 4 and copied.loader is not loader


# --- DataModule ------------------------------------------------------------------------


def test_data_module_splits_shrink_when_the_first_loader_is_made(smoke):
    smoke(max_train=100, max_val=30, image_size=40)
    data = Images()
    assert len(data.train) == 200  # as constructed: what a page prints first
    X, _ = next(iter(data.get_dataloader(train=True)))
    assert (len(data.train), len(data.val)) == (100, 30)
    assert isinstance(data.train, dlbook.ImageDataset)  # type and attributes kept
    assert X.shape == (8, 1, 40, 40) and data.val.resize == (40, 40)
    rows = sorted(int(image[0, 0, 0]) for image in data.train.images)
    assert len(set(rows)) == 100 and rows[-1] >= 100  # a random subset, not a prefix
    again = Images()
    again.train_dataloader()
    assert torch.equal(again.train.labels, data.train.labels)  # the same rows every run


def test_other_datasets_become_subsets_and_small_ones_stay(smoke):
    smoke(max_train=5, max_val=50)

    class Tensors(dlbook.DataModule):
        def __init__(self):
            super().__init__()
            self.train = torch.utils.data.TensorDataset(torch.arange(20.0))
            self.val = torch.utils.data.TensorDataset(torch.arange(8.0))

        def get_dataloader(self, train):
            return torch.utils.data.DataLoader(self.train if train else self.val)

    data = Tensors()
    val = data.val
    data.val_dataloader()
    assert isinstance(data.train, torch.utils.data.Subset) and len(data.train) == 5
    assert data.val is val


def test_without_reductions_datasets_are_untouched():
    data = Images()
    data.train_dataloader()
    assert len(data.train) == 200 and data.train.resize == (96, 96)


# --- width -----------------------------------------------------------------------------


def test_width_scales_hidden_lazy_layers_only(smoke):
    smoke(width=0.25)
    model = Widths()
    model.apply_init([torch.randn(2, 3, 8, 8)])
    convs = [m for m in model.net if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.net if isinstance(m, nn.Linear)]
    assert [c.out_channels for c in convs] == [16, 16]
    assert convs[1].groups == 4 and convs[1].weight.shape == (16, 4, 3, 3)
    assert [lin.out_features for lin in linears] == [25, 10]  # classes keep their size
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 10)


def test_groups_shrink_to_what_still_divides(smoke):
    smoke(width=0.3)  # 64 -> 19 channels: no longer divisible by 4 groups
    model = Widths()
    model.apply_init([torch.randn(1, 3, 8, 8)])
    grouped = model.net[2]
    assert grouped.out_channels == 19 and grouped.groups == 1
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 10)


def test_fit_shrinks_a_fresh_model_but_not_one_already_shaped(smoke):
    smoke(width=0.5, max_epochs=1, max_batches=2)
    data = Images(resize=(8, 8))
    trainer = dlbook.Trainer(max_epochs=3)
    fresh = Widths()
    trainer.fit(fresh, data)
    assert fresh.net[0].out_channels == 32
    shaped = Widths()
    shaped.layer_summary((1, 1, 8, 8))  # shaped at its published width first
    dlbook.Trainer(max_epochs=1).fit(shaped, data)
    assert shaped.net[0].out_channels == 64


def test_scaled_rounds_and_never_reaches_zero():
    assert [_smoke.scaled(n, 0.125) for n in (96, 4096, 3, 1)] == [12, 512, 1, 1]


# --- settings: one declaration per page ------------------------------------------------


def test_front_matter_overrides_the_book_defaults():
    settings = smoke_settings({"max_epochs": 2, "width": 0.125, "image_size": 67})
    assert settings == {**SMOKE_DEFAULTS, "max_epochs": 2, "width": 0.125,
                        "image_size": 67}
    assert smoke_settings(None) == SMOKE_DEFAULTS
    assert smoke_settings({"max_train": None})["max_train"] is None  # no cap on this page
    assert _smoke.parse(json.dumps(settings)) == _smoke.Settings(**settings)


@pytest.mark.parametrize(("declared", "message"), [
    ({"max_epoch": 2}, "unknown key 'max_epoch'"),
    ({"max_epochs": 0}, "max_epochs must be a positive whole number"),
    ({"max_batches": 2.5}, "max_batches must be a positive whole number"),
    ({"width": 2}, "width must be a number in (0, 1]"),
    ({"width": True}, "width must be a number in (0, 1]"),
    ([1, 2], "expected a mapping"),
    ({"caps": {"num_hiddens": 0}}, "caps must map parameter names to positive whole"),
    ({"caps": {"num_hiddens": 2.5}}, "caps must map parameter names to positive whole"),
    ({"caps": [64]}, "caps must map parameter names to positive whole"),
])
def test_bad_front_matter_is_refused(declared, message):
    with pytest.raises(SmokeSettingsError, match=message.replace("(", r"\(")
                       .replace(")", r"\)").replace("[", r"\[")):
        smoke_settings(declared)


def test_caps_are_validated_and_reach_the_settings():
    settings = smoke_settings({"caps": {"num_hiddens": 64, "num_blks": 2}})
    assert settings["caps"] == {"num_blks": 2, "num_hiddens": 64}
    assert smoke_settings({"caps": None})["caps"] == {}
    parsed = _smoke.parse(json.dumps(settings))
    assert parsed.limits() == {"num_epochs": 10, "num_blks": 2, "num_hiddens": 64}


# --- caps on the arguments of library functions and constructors --------------------------


def _library_like_module():
    """A module shaped like a generated dlbook module: a function and a class."""
    import types

    module = types.ModuleType("dlbook.fake_capped")
    exec(
        "def train(net, num_epochs=10, lr=0.1):\n"
        "    return num_epochs, lr\n"
        "class Model:\n"
        "    def __init__(self, vocab_size, num_hiddens=256, name='m'):\n"
        "        self.shape = (vocab_size, num_hiddens, name)\n"
        "def untouched(x):\n"
        "    return x\n", module.__dict__)
    return module


def test_caps_limit_named_arguments_of_functions_and_constructors():
    module = _library_like_module()
    untouched = module.untouched
    _smoke.cap_namespace(module, _smoke.Settings(max_epochs=3,
                                                 caps={"num_hiddens": 16}).limits())
    assert module.train(None) == (3, 0.1)  # default above the cap
    assert module.train(None, num_epochs=2) == (2, 0.1)  # small values stay
    assert module.train(None, 50, lr=0.5) == (3, 0.5)  # positional, too
    assert module.Model(100).shape == (100, 16, "m")
    assert module.Model(100, num_hiddens=8).shape == (100, 8, "m")
    assert module.Model(100, num_hiddens=2.5e3).shape == (100, 2.5e3, "m")  # not whole
    assert module.untouched is untouched  # no capped parameter: not wrapped
    once = module.train
    _smoke.cap_namespace(module, {"num_epochs": 1})
    assert module.train is once  # capped once only


def test_caps_reach_what_a_notebook_defines_after_each_cell():
    """In a kernel the page's own functions and classes (module ``__main__``) are capped
    after the cell that defines them; names of other modules are left to the import hook."""
    namespace = {"__name__": "__main__"}
    exec("def width(num_hiddens=256):\n    return num_hiddens\n"
         "class Net:\n    def __init__(self, num_hiddens=512):\n"
         "        self.num_hiddens = num_hiddens\n", namespace)
    namespace["imported"] = _library_like_module().Model
    events = []

    class Shell:
        user_ns = namespace

        class events:  # noqa: N801  (IPython's attribute name)
            @staticmethod
            def register(name, callback):
                events.append((name, callback))

    _smoke.watch_namespace(Shell, _smoke.Settings(caps={"num_hiddens": 64}))
    assert [name for name, _ in events] == ["post_run_cell"]
    assert namespace["width"]() == 256  # not before the cell has ended
    events[0][1](None)
    assert namespace["width"]() == 64 and namespace["width"](num_hiddens=32) == 32
    assert namespace["Net"]().num_hiddens == 64
    assert namespace["imported"](1).shape == (1, 256, "m")  # not the notebook's
    events.clear()
    _smoke.watch_namespace(Shell, _smoke.Settings(max_epochs=2))  # no caps: no hook
    assert events == []


def test_no_caps_leave_functions_alone():
    module = _library_like_module()
    train = module.train
    _smoke.cap_namespace(module, _smoke.Settings(max_epochs=None).limits())
    assert module.train is train and module.train(None) == (10, 0.1)


def test_unknown_reduction_in_the_environment_is_refused():
    with pytest.raises(ValueError, match="unknown reduction"):
        _smoke.parse('{"max_epochs": 2, "depth": 3}')


# --- the path the build takes ------------------------------------------------------------


def test_kernel_start_up_patches_the_library_as_it_is_imported(tmp_path):
    """Load _smoke by path as the kernel does, then import dlbook: it is reduced."""
    script = tmp_path / "probe.py"
    script.write_text(
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('dlbook_smoke', "
        f"{str(REPO / 'dlbook' / '_smoke.py')!r})\n"
        "sys.modules['dlbook_smoke'] = m = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        "assert 'dlbook' not in sys.modules\n"
        "m.install()\n"
        "import dlbook\n"
        "print(dlbook.Trainer(max_epochs=9).max_epochs)\n")
    env = {**os.environ, "DLBOOK_SMOKE": json.dumps({"max_epochs": 2}),
           "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                            env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"


def test_processes_a_smoke_kernel_starts_are_reduced_too(tmp_path):
    """The kernels' PYTHONPATH holds kernel_site: a child Python, started as a spawned
    worker or a subprocess would be, applies the same caps; without DLBOOK_SMOKE, none."""
    from tools.execution.kernel_env import kernel_environment, page_environment

    env = kernel_environment(REPO, {k: v for k, v in os.environ.items()
                                    if k != "PYTHONPATH"})
    code = ("import sys, dlbook\n"
            "print(dlbook.Trainer(max_epochs=9).max_epochs, "
            "len(dlbook.TransformerEncoder(10, 32, 64, 4, num_blks=6, dropout=0).blks), "
            "'dlbook_smoke' in sys.modules)\n")
    settings = smoke_settings({"max_epochs": 2, "caps": {"num_blks": 2}})
    for environment, expected in ((page_environment(env, settings), "2 2 True"),
                                  (page_environment(env, None), "9 6 False")):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                text=True, env=environment, cwd=tmp_path, timeout=120,
                                check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == expected

"""Tests of the core training library saved by chapter 3 (generated ``dlbook``).

Covers HyperParameters, add_to_class, ProgressBoard, Module/DataModule/Trainer with the
SyntheticRegressionData and its loaders, the scratch and concise
linear-regression models, SGD, Timer, Accumulator and the device helpers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dlbook

REPO = Path(__file__).resolve().parents[1]

TRUE_W = torch.tensor([1.6, -2.3])
TRUE_B = 3.5


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state."""
    torch.manual_seed(0)


def make_data(**kwargs):
    return dlbook.SyntheticRegressionData(TRUE_W, TRUE_B, **kwargs)


def validation_loss(model, data):
    with torch.no_grad():
        X, y = data.X[data.num_train:], data.y[data.num_train:]
        return ((model(X) - y) ** 2).mean().item()


# --- HyperParameters and add_to_class ------------------------------------------------


def test_save_hyperparameters_stores_arguments_only():
    class Settings(dlbook.HyperParameters):
        def __init__(self, a, b=2, *, c=3, _private=4, skipped=5):
            local_variable = 10  # noqa: F841 - a local, not an argument
            self.save_hyperparameters(ignore=["skipped"])

    settings = Settings(1, c=7)
    assert settings.hparams == {"a": 1, "b": 2, "c": 7}
    assert (settings.a, settings.b, settings.c) == (1, 2, 7)
    assert not hasattr(settings, "skipped")
    assert not hasattr(settings, "local_variable")
    assert not hasattr(settings, "_private")


def test_save_hyperparameters_in_module_subclass():
    model = dlbook.LinearRegressionScratch(num_inputs=3, lr=0.5)
    assert model.num_inputs == 3 and model.lr == 0.5 and model.sigma == 0.01
    assert model.plot_train_per_epoch == 2 and model.plot_valid_per_epoch == 1


def test_add_to_class_attaches_method_to_existing_instances():
    class Box:
        def __init__(self):
            self.items = []

    box = Box()

    @dlbook.add_to_class(Box)
    def put(self, item):
        self.items.append(item)
        return len(self.items)

    assert box.put("x") == 1
    assert Box.put is put


# --- Timer, Accumulator, devices -----------------------------------------------------


def test_timer_records_runs():
    timer = dlbook.Timer()
    for _ in range(3):
        timer.start()
        sum(range(1000))
        timer.stop()
    assert len(timer.times) == 3
    assert timer.sum() == pytest.approx(sum(timer.times))
    assert timer.avg() == pytest.approx(timer.sum() / 3)
    assert timer.cumsum()[-1] == pytest.approx(timer.sum())
    assert all(t >= 0 for t in timer.times)


def test_accumulator_sums_and_resets():
    acc = dlbook.Accumulator(2)
    acc.add(1.5, 2)
    acc.add(torch.tensor(0.5), 3)
    assert (acc[0], acc[1]) == (2.0, 5.0)
    acc.reset()
    assert acc.data == [0.0, 0.0]


def test_device_helpers():
    assert dlbook.cpu() == torch.device("cpu")
    assert dlbook.gpu(1) == torch.device("cuda:1")
    assert dlbook.num_gpus() == torch.cuda.device_count()
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert dlbook.try_gpu() == torch.device("cpu")
    assert dlbook.try_all_gpus() == [torch.device("cpu")]
    trainer = dlbook.Trainer(max_epochs=1, num_gpus=1)  # asks for a GPU, gets the CPU
    assert trainer.gpus == [] and trainer.device == torch.device("cpu")


# --- Data ----------------------------------------------------------------------------


def test_synthetic_data_and_tensorloader_shapes():
    data = make_data(num_train=100, num_val=40, batch_size=32)
    assert data.X.shape == (140, 2) and data.y.shape == (140, 1)
    residual = data.y - (data.X @ TRUE_W.reshape(-1, 1) + TRUE_B)
    assert residual.abs().max() < 0.1  # noise = 0.01
    train = data.train_dataloader()
    X, y = next(iter(train))
    assert X.shape == (32, 2) and y.shape == (32, 1)
    assert len(train) == 4  # 32 + 32 + 32 + 4
    assert [len(b[1]) for b in train] == [32, 32, 32, 4]
    val = data.val_dataloader()
    assert sum(len(b[1]) for b in val) == 40
    # the validation loader covers exactly the rows after num_train, in order
    assert torch.equal(torch.cat([b[0] for b in val]), data.X[100:])


def test_get_tensorloader_indices_and_shuffling():
    data = make_data(num_train=50, num_val=10, batch_size=50)
    loader = data.get_tensorloader((data.X, data.y), train=True, indices=slice(0, 50))
    first = next(iter(loader))[0]
    assert first.shape == (50, 2)
    assert not torch.equal(first, data.X[:50])  # shuffled
    assert torch.equal(first.sort(dim=0).values, data.X[:50].sort(dim=0).values)


# --- SGD -----------------------------------------------------------------------------


def test_sgd_step_and_zero_grad():
    w = torch.tensor([1.0, -2.0], requires_grad=True)
    optimizer = dlbook.SGD([w], lr=0.1)
    (w ** 2).sum().backward()  # gradient 2w = [2, -4]
    optimizer.step()
    assert torch.allclose(w.detach(), torch.tensor([0.8, -1.6]))
    optimizer.zero_grad()
    assert torch.equal(w.grad, torch.zeros(2))
    assert optimizer.lr == 0.1


# --- Training ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["scratch", "concise"])
def test_trainer_fits_synthetic_regression(kind):
    data = make_data()
    if kind == "scratch":
        model = dlbook.LinearRegressionScratch(num_inputs=2, lr=0.1)
    else:
        model = dlbook.LinearRegression(lr=0.1)
        model(data.X[:1])  # materialise the lazy layer before measuring
    before = validation_loss(model, data)
    trainer = dlbook.Trainer(max_epochs=3)
    trainer.fit(model, data)
    after = validation_loss(model, data)
    assert after < before / 100
    if kind == "scratch":
        w, b = model.w.detach().reshape(-1), model.b.detach()
    else:
        w, b = model.get_w_b()
        assert not w.requires_grad and w.shape == (1, 2)
        w = w.reshape(-1)
    assert torch.allclose(w, TRUE_W, atol=0.02)
    assert abs(b.item() - TRUE_B) < 0.02
    assert trainer.train_batch_idx == 3 * 32 and trainer.val_batch_idx == 3 * 32
    # plotted curves: 2 training points and 1 validation point per epoch
    assert len(model.board.points["train_loss"]) == 6
    assert len(model.board.points["val_loss"]) == 3
    assert model.board.points["val_loss"][-1][0] == 3


def test_training_losses_decrease_on_the_board():
    data = make_data()
    model = dlbook.LinearRegressionScratch(num_inputs=2, lr=0.1)
    dlbook.Trainer(max_epochs=2).fit(model, data)
    train_losses = [y for _, y in model.board.points["train_loss"]]
    assert train_losses[-1] < train_losses[0] / 100


def test_trainer_without_validation_data():
    class TrainOnly(dlbook.SyntheticRegressionData):
        def val_dataloader(self):
            return None

    data = TrainOnly(TRUE_W, TRUE_B, num_train=64, num_val=0, batch_size=16)
    trainer = dlbook.Trainer(max_epochs=1)
    trainer.fit(dlbook.LinearRegressionScratch(2, lr=0.1), data)
    assert trainer.num_val_batches == 0 and trainer.train_batch_idx == 4


def test_gradient_clipping_limits_the_norm():
    model = dlbook.LinearRegression(lr=0.1)
    X, y = torch.randn(8, 2) * 100, torch.randn(8, 1)
    model.loss(model(X), y).backward()
    trainer = dlbook.Trainer(max_epochs=1, gradient_clip_val=1.0)
    trainer.clip_gradients(1.0, model)
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    assert norm.item() == pytest.approx(1.0, rel=1e-4)


def test_prepare_batch_moves_to_device():
    trainer = dlbook.Trainer(max_epochs=1)
    batch = trainer.prepare_batch([torch.ones(2, 3), torch.zeros(2, 1)])
    assert all(t.device == trainer.device for t in batch)


# --- ProgressBoard -------------------------------------------------------------------


def test_progress_board_averages_every_n_points():
    board = dlbook.ProgressBoard(xlabel="step")
    for step in range(10):
        board.draw(step, torch.tensor(float(step)), "value", every_n=4)
    # two complete groups of 4; the last 2 points wait for more
    assert board.points["value"] == [(1.5, 1.5), (5.5, 5.5)]
    assert len(board.raw["value"]) == 2
    fig = board.render()
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1
    assert fig.axes[0].get_xlabel() == "step"


def test_progress_board_without_display_draws_nothing():
    board = dlbook.ProgressBoard(display=False)
    board.draw(0, 1.0, "a")
    assert board.points["a"] == [(0.0, 1.0)] and board.fig is None


class FakeShell:
    """Just enough of an IPython kernel shell for ProgressBoard.show."""

    def __init__(self):
        self.kernel, self.execution_count, self.hooks = object(), 1, []
        self.events = self

    def register(self, event, hook):
        assert event == "post_execute"
        self.hooks.append(hook)

    def unregister(self, event, hook):
        self.hooks.remove(hook)

    def end_cell(self):
        for hook in list(self.hooks):
            hook()
        self.execution_count += 1


class Handle:
    def __init__(self, log):
        self.log = log

    def update(self, fig):
        self.log.append(("update", len(fig.axes[0].lines[0].get_xdata())))


def test_progress_board_redraws_one_output_per_cell_and_finishes_it(monkeypatch):
    import IPython

    shell, log, clock = FakeShell(), [], [0.0]
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)

    def display(fig, display_id=False):
        assert display_id is True
        log.append(("display", len(fig.axes[0].lines[0].get_xdata())))
        return Handle(log)

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(dlbook.ch03_linear_regression.time, "monotonic", lambda: clock[0])
    board = dlbook.ProgressBoard(refresh_seconds=1.0)
    for step in range(5):  # 0.4 s apart: a redraw once a second, at most
        board.draw(step, float(step), "loss")
        clock[0] += 0.4
    assert log == [("display", 1), ("update", 4)]
    shell.end_cell()  # the cell is done: the figure shows every point
    assert log[-1] == ("update", 5) and shell.hooks == []
    board.draw(5, 5.0, "loss")  # training goes on in the next cell: a new output
    assert log[-1] == ("display", 6)

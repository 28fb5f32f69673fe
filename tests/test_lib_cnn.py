"""Tests of the convolutional-network library saved by chapter 7 (generated ``dlbook``).

Covers corr2d (against F.conv2d, and differentiable), init_cnn, LeNet (output shapes,
hyperparameters, a few training steps that lower the loss through the Trainer),
Classifier.layer_summary, get_activations (hooks are removed again) and show_filters.
Everything runs on random tensors in a few seconds; nothing reads a dataset.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import dlbook

REPO = Path(__file__).resolve().parents[1]

if not hasattr(dlbook, "LeNet"):
    pytest.fail("dlbook has no chapter 7 names yet: run `python -m tools lib` with "
                "chapters/07-cnn in _toc.yml", pytrace=False)

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state."""
    torch.manual_seed(0)


# --- corr2d -----------------------------------------------------------------------------

def test_corr2d_small_example_by_hand():
    X = torch.tensor([[1.0, 2.0, 0.0, 3.0], [4.0, 1.0, 1.0, 0.0], [2.0, 0.0, 5.0, 1.0]])
    K = torch.tensor([[1.0, 0.0], [-1.0, 2.0]])
    expected = torch.tensor([[-1.0, 3.0, -1.0], [2.0, 11.0, -2.0]])
    assert torch.equal(dlbook.corr2d(X, K), expected)


@pytest.mark.parametrize("x_shape, k_shape", [((7, 9), (3, 2)), ((5, 5), (5, 5)),
                                              ((6, 4), (1, 1)), ((8, 3), (2, 3))])
def test_corr2d_matches_conv2d(x_shape, k_shape):
    X, K = torch.randn(x_shape), torch.randn(k_shape)
    expected = F.conv2d(X.reshape(1, 1, *x_shape), K.reshape(1, 1, *k_shape))[0, 0]
    result = dlbook.corr2d(X, K)
    assert result.shape == (x_shape[0] - k_shape[0] + 1, x_shape[1] - k_shape[1] + 1)
    assert torch.allclose(result, expected, atol=1e-5)


def test_corr2d_keeps_dtype_and_gradients():
    X = torch.randn(5, 6, dtype=torch.float64)
    K = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    Y = dlbook.corr2d(X, K)
    assert Y.dtype == torch.float64
    Y.sum().backward()
    # d(sum Y)/dK[a, b] is the sum of the inputs that K[a, b] meets
    expected = torch.tensor([[X[:4, :5].sum(), X[:4, 1:].sum()],
                             [X[1:, :5].sum(), X[1:, 1:].sum()]], dtype=torch.float64)
    assert torch.allclose(K.grad, expected)


# --- init_cnn ---------------------------------------------------------------------------

def test_init_cnn_initialises_conv_and_linear_layers():
    net = nn.Sequential(nn.Conv2d(3, 8, 5), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                        nn.Linear(8 * 4 * 4, 10))
    for p in net.parameters():
        nn.init.constant_(p, 5.0)
    net.apply(dlbook.init_cnn)
    conv, norm, linear = net[0], net[1], net[4]
    for layer, fan_in, fan_out in [(conv, 3 * 25, 8 * 25), (linear, 128, 10)]:
        bound = (6 / (fan_in + fan_out)) ** 0.5  # Xavier-uniform limit
        assert layer.weight.abs().max() <= bound + 1e-6
        assert layer.weight.std() > bound / 4  # really random, not left at 5
        assert torch.count_nonzero(layer.bias) == 0
    assert torch.all(norm.weight == 5.0)  # other layers are left alone
    assert torch.all(norm.bias == 5.0)


def test_init_cnn_handles_layers_without_bias():
    layer = nn.Conv2d(2, 4, 3, bias=False)
    nn.init.constant_(layer.weight, 5.0)
    dlbook.init_cnn(layer)
    assert layer.weight.abs().max() < 1


# --- LeNet ------------------------------------------------------------------------------

def test_lenet_is_a_classifier_with_saved_hyperparameters():
    model = dlbook.LeNet(lr=0.05, num_classes=7)
    assert isinstance(model, dlbook.Classifier)
    assert model.lr == 0.05 and model.num_classes == 7


@pytest.mark.parametrize("batch", [1, 5])
def test_lenet_output_shape(batch):
    model = dlbook.LeNet()
    model.apply_init([torch.randn(2, 1, 28, 28)], dlbook.init_cnn)
    assert model(torch.randn(batch, 1, 28, 28)).shape == (batch, 10)
    assert dlbook.LeNet(num_classes=3)(torch.randn(batch, 1, 28, 28)).shape == (batch, 3)


def test_lenet_parameter_count():
    model = dlbook.LeNet()
    model(torch.randn(1, 1, 28, 28))  # materialise the lazy layers
    assert sum(p.numel() for p in model.parameters()) == 61706


def test_layer_summary_prints_every_shape(capsys):
    dlbook.LeNet().layer_summary((2, 1, 28, 28))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 12
    for shape in ["(2, 6, 28, 28)", "(2, 6, 14, 14)", "(2, 16, 10, 10)", "(2, 16, 5, 5)",
                  "(2, 400)", "(2, 120)", "(2, 84)", "(2, 10)"]:
        assert any(shape in line for line in lines), shape
    assert lines[0].startswith("Conv2d") and "156" in lines[0]


class RandomImages(dlbook.DataModule):
    """A fixed set of random images with random labels, to be memorised."""

    def __init__(self, n=64, batch_size=16):
        super().__init__()
        self.save_hyperparameters()
        self.X = torch.randn(n, 1, 28, 28)
        self.y = torch.randint(0, 10, (n,))

    def get_dataloader(self, train):
        return self.get_tensorloader((self.X, self.y), train)


def mean_loss(model, data):
    with torch.no_grad():
        return model.loss(model(data.X), data.y).item()


def test_lenet_trains_and_the_loss_falls():
    data = RandomImages()
    model = dlbook.LeNet(lr=0.1)
    model.apply_init([data.X[:2]], dlbook.init_cnn)
    model.board.display = False
    before = mean_loss(model, data)
    dlbook.Trainer(max_epochs=8).fit(model, data)
    after = mean_loss(model, data)
    assert after < 0.8 * before, (before, after)
    assert all(torch.isfinite(p).all() for p in model.parameters())


# --- get_activations and show_filters ---------------------------------------------------

def test_get_activations_returns_outputs_and_removes_hooks():
    model = dlbook.LeNet()
    X = torch.randn(3, 1, 28, 28)
    model.apply_init([X], dlbook.init_cnn)
    layers = {"conv1": model.net[0], "pool2": model.net[5], "scores": model.net[11]}
    outputs = dlbook.get_activations(model, X, layers)
    assert {name: tuple(out.shape) for name, out in outputs.items()} == {
        "conv1": (3, 6, 28, 28), "pool2": (3, 16, 5, 5), "scores": (3, 10)}
    assert torch.allclose(outputs["scores"], model(X).detach())
    assert not outputs["conv1"].requires_grad
    assert all(len(m._forward_hooks) == 0 for m in model.modules())


def test_show_filters_draws_one_panel_per_kernel():
    import matplotlib
    matplotlib.use("Agg")
    axes = dlbook.show_filters(torch.randn(6, 1, 5, 5), num_cols=4, titles=["a"] * 6)
    assert axes.shape == (2, 4)
    assert sum(len(ax.images) for ax in axes.flat) == 6
    assert axes[0, 0].get_title() == "a"
    axes = dlbook.show_filters(torch.randn(2, 3, 3, 3), num_cols=3)  # 2 x 3 slices
    assert sum(len(ax.images) for ax in axes.flat) == 6
    matplotlib.pyplot.close("all")

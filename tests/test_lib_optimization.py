"""Tests of the optimization library saved by chapter 12 (generated ``dlbook``).

Covers annotate, train_2d and show_trace_2d; later sections append tests for their names
at the end. Everything runs on small analytic problems; nothing uses the network.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import dlbook  # noqa: E402

if not hasattr(dlbook, "train_2d"):
    pytest.fail("dlbook has no chapter 12 names yet: run `python -m tools lib` with "
                "chapters/12-optimization in _toc.yml", pytrace=False)


@pytest.fixture(autouse=True)
def fresh_figure():
    """Every test starts with a new figure and a fixed random state."""
    torch.manual_seed(0)
    plt.figure()
    yield
    plt.close("all")


def test_annotate_places_text_and_arrow():
    plt.plot([0.0, 1.0], [0.0, 1.0])
    dlbook.annotate("minimum", (0.5, 0.5), (0.2, 0.8))
    texts = plt.gca().texts
    assert len(texts) == 1
    assert texts[0].get_text() == "minimum"
    assert tuple(texts[0].xy) == (0.5, 0.5)
    assert texts[0].arrow_patch is not None


def test_train_2d_runs_gradient_descent(capsys):
    def gd(x1, x2, s1, s2):
        return x1 - 0.1 * 2 * x1, x2 - 0.1 * 4 * x2, 0, 0

    results = dlbook.train_2d(gd, steps=5)
    assert len(results) == 6
    assert results[0] == (-5.0, -2.0)
    # each step multiplies x1 by 0.8 and x2 by 0.6
    assert results[-1][0] == pytest.approx(-5.0 * 0.8**5)
    assert results[-1][1] == pytest.approx(-2.0 * 0.6**5)
    assert "after 5 steps" in capsys.readouterr().out


def test_train_2d_passes_state_and_f_grad():
    def f_grad(x1, x2):
        return 2 * x1, 4 * x2

    def counting(x1, x2, s1, s2, grad):
        g1, g2 = grad(x1, x2)
        return x1 - 0.1 * g1, x2 - 0.1 * g2, s1 + 1, s2 + 2

    seen = []

    def spy(x1, x2, s1, s2, grad):
        seen.append((s1, s2))
        return counting(x1, x2, s1, s2, grad)

    results = dlbook.train_2d(spy, steps=3, f_grad=f_grad)
    assert seen == [(0.0, 0.0), (1.0, 2.0), (2.0, 4.0)]
    assert results[1] == pytest.approx((-4.0, -1.2))


def test_show_trace_2d_draws_contours_and_path():
    results = [(-5.0, -2.0), (-3.0, -1.0), (-1.0, -0.2), (0.0, 0.0)]
    axes = dlbook.show_trace_2d(lambda x1, x2: x1**2 + 2 * x2**2, results)
    lines = axes.get_lines()
    assert len(lines) == 1
    assert list(lines[0].get_xdata()) == pytest.approx([-5.0, -3.0, -1.0, 0.0])
    assert list(lines[0].get_ydata()) == pytest.approx([-2.0, -1.0, -0.2, 0.0])
    assert axes.collections, "no contour lines were drawn"
    x_low, x_high = axes.get_xlim()
    assert x_low < -5.0 and x_high > 0.0


# --- 12.5 minibatch-sgd: AIRFOIL, its stand-in, train_ch11, train_concise_ch11 ----------

def _offline(tmp_path, monkeypatch):
    monkeypatch.setenv("DLBOOK_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(tmp_path / "empty-mirror"))
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")


def test_airfoil_file_is_the_published_one():
    url, sha1 = dlbook.AIRFOIL_FILE
    assert url.endswith("/airfoil_self_noise.dat")
    assert sha1 == "76e5be1548fd8222e5074cf0faae75edff8cf93f"


def test_diabetes_stand_in_writes_features_then_target(tmp_path):
    import numpy as np
    path = dlbook.make_diabetes_stand_in(tmp_path)
    data = np.genfromtxt(path, delimiter="\t")
    assert data.shape == (442, 11)
    assert data[:, -1].min() >= 25 and data[:, -1].max() <= 346  # disease progression


def test_get_data_ch11_standardises_and_registers(tmp_path, monkeypatch, capsys):
    _offline(tmp_path, monkeypatch)
    data_iter, feature_dim = dlbook.get_data_ch11(batch_size=32, n=400)
    assert dlbook.DATA_HUB["airfoil"] == dlbook.AIRFOIL_FILE
    assert "diabetes" in capsys.readouterr().out
    X, y = data_iter.dataset.tensors
    assert feature_dim == 10 and X.shape == (400, 10) and y.shape == (400, 1)
    assert abs(float(X.mean())) < 0.1 and 0.8 < float(X.std()) < 1.2
    assert next(iter(data_iter))[0].shape == (32, 10)


def _toy_loader(batch_size):
    torch.manual_seed(0)
    X = torch.randn(400, 3)
    y = X @ torch.tensor([[1.0], [-1.0], [0.5]])
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size,
                                       shuffle=True)


def test_evaluate_ch11_is_half_the_mean_squared_error():
    loader = _toy_loader(50)
    X, y = loader.dataset.tensors
    assert dlbook.evaluate_ch11(lambda X: torch.zeros(len(X), 1), loader) == \
        pytest.approx(float((y ** 2).mean() / 2), rel=1e-5)


def test_train_ch11_records_every_200_examples_and_learns():
    def sgd(params, states, hyperparams):
        with torch.no_grad():
            for p in params:
                p -= hyperparams["lr"] * p.grad
                p.grad.zero_()

    times, losses = dlbook.train_ch11(sgd, None, {"lr": 0.1}, _toy_loader(10), 3,
                                      num_epochs=2)
    assert len(times) == len(losses) == 4  # 800 examples, one record per 200
    assert times == sorted(times) and times[0] > 0
    assert losses[-1] < 0.01 * losses[0]


def test_record_loss_ch11_runs_every_minibatch():
    calls = []
    loader = _toy_loader(100)
    times, losses = dlbook.record_loss_ch11(lambda X: X[:, :1], loader, 3,
                                            lambda X, y: calls.append(len(y)))
    assert calls == [100] * 12 and len(losses) == 6


def test_train_concise_ch11_uses_the_optimizer_class():
    used = []

    class Spy(torch.optim.SGD):
        def step(self, closure=None):
            used.append(1)
            return super().step(closure)

    times, losses = dlbook.train_concise_ch11(Spy, {"lr": 0.1}, _toy_loader(20),
                                              num_epochs=1)
    assert len(used) == 20 and len(losses) == 2
    assert losses[-1] < 0.5 * dlbook.evaluate_ch11(lambda X: torch.zeros(len(X), 1),
                                                   _toy_loader(20))


# --- 12.12 loss-landscapes: interpolate_params, flat_loss_fn, hvp, top_hessian_eig ---

def _quadratic_problem():
    """A bias-free linear model with MSE loss: its Hessian is 2 X^T X / n exactly."""
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(50, 4, generator=generator, dtype=torch.float64)
    X[:, 0] *= 3.0  # a clearly separated top eigenvalue
    y = torch.randn(50, 1, generator=generator, dtype=torch.float64)
    model = torch.nn.Linear(4, 1, bias=False).double()
    return model, X, y, 2 * X.T @ X / len(X)


def test_interpolate_params_endpoints_midpoint_and_restore():
    model, X, y, _ = _quadratic_problem()
    loss = torch.nn.functional.mse_loss
    start = [torch.zeros(1, 4, dtype=torch.float64)]
    end = [torch.ones(1, 4, dtype=torch.float64)]
    before = model.weight.detach().clone()
    losses = dlbook.interpolate_params(model, start, end, [0.0, 0.5, 1.0], loss, X, y)
    assert losses[0] == pytest.approx(float(loss(torch.zeros_like(y), y)))
    assert losses[1] == pytest.approx(float(loss(X.sum(1, keepdim=True) / 2, y)))
    assert losses[2] == pytest.approx(float(loss(X.sum(1, keepdim=True), y)))
    assert torch.equal(model.weight, before)


def test_flat_loss_fn_matches_model_loss():
    model, X, y, _ = _quadratic_problem()
    f = dlbook.flat_loss_fn(model, torch.nn.functional.mse_loss, X, y)
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    expected = torch.nn.functional.mse_loss(model(X), y).item()
    assert float(f(theta)) == pytest.approx(expected)
    assert float(f(theta + 1)) != pytest.approx(expected)


def test_hvp_equals_exact_hessian_times_vector():
    model, X, y, H = _quadratic_problem()
    v = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    Hv = dlbook.hvp(model, torch.nn.functional.mse_loss, X, y, v)
    assert Hv.shape == (4,)
    assert torch.allclose(Hv, H @ v, atol=1e-10)


def test_top_hessian_eig_finds_largest_eigenpair():
    model, X, y, H = _quadratic_problem()
    value, vector = dlbook.top_hessian_eig(model, torch.nn.functional.mse_loss, X, y,
                                           num_iters=500, tol=1e-12)
    eigenvalues, eigenvectors = torch.linalg.eigh(H)
    assert value == pytest.approx(float(eigenvalues[-1]), rel=1e-6)
    assert abs(float(vector @ eigenvectors[:, -1])) == pytest.approx(1.0, abs=1e-5)

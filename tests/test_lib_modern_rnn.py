"""Tests of the library saved by chapter 10, modern recurrent networks (generated ``dlbook``).

Covers GRU (deep-rnn). Nothing uses the network.
"""

from __future__ import annotations

import pytest
import torch

import dlbook

if not hasattr(dlbook, "GRU"):
    pytest.fail("dlbook has no chapter 10 names yet: run `python -m tools lib` with "
                "chapters/10-modern-rnn in _toc.yml", pytrace=False)


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state."""
    torch.manual_seed(0)


# --- GRU --------------------------------------------------------------------------------

def test_gru_keeps_hyperparameters_and_shapes():
    gru = dlbook.GRU(num_inputs=5, num_hiddens=7, num_layers=3, dropout=0.2)
    assert gru.num_hiddens == 7 and gru.num_layers == 3 and gru.dropout == 0.2
    assert isinstance(gru.rnn, torch.nn.GRU)
    assert gru.rnn.num_layers == 3 and gru.rnn.dropout == 0.2
    outputs, state = gru(torch.randn(4, 2, 5))
    assert outputs.shape == (4, 2, 7)
    assert state.shape == (3, 2, 7)
    gru.eval()  # no dropout: the last layer's last output is the top final state
    outputs, state = gru(torch.randn(4, 2, 5))
    assert torch.allclose(outputs[-1], state[-1])


def test_gru_dropout_defaults_to_zero_and_continues_from_a_state():
    gru = dlbook.GRU(3, 4, 2)
    assert gru.dropout == 0 and gru.rnn.dropout == 0
    X = torch.randn(6, 2, 3)
    outputs, state = gru(X)
    first, mid = gru(X[:2])
    rest, end = gru(X[2:], mid)  # running in two pieces equals running at once
    assert torch.allclose(torch.cat([first, rest]), outputs, atol=1e-6)
    assert torch.allclose(end, state, atol=1e-6)
    assert not torch.allclose(gru(X[2:])[0], rest)  # the state matters


def test_gru_language_model_learns_a_periodic_text():
    """RNNLM on top of GRU drives the loss of a repeating pattern far below uniform."""
    vocab_size, period = 6, 3
    tokens = torch.arange(64) % period + 1
    X = tokens[:-1].reshape(7, 9)
    Y = tokens[1:].reshape(7, 9)
    model = dlbook.RNNLM(dlbook.GRU(vocab_size, 16, 2), vocab_size=vocab_size, lr=0.05)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(100):
        optimizer.zero_grad()
        loss = model.loss(model(X), Y)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1  # uniform guessing would give log(6), about 1.8
    assert (model(X).argmax(-1) == Y).all()


# --- MTFraEng, show_list_len_pair_hist (mt-dataset) -------------------------------------
# Text comes from PAIRS patched in for ``_download``; only the stand-in tests need the
# packages num2words and babel (skipped without them). Nothing uses the network.

PAIRS = ("Go.\tVa !\n"
         "Hi.\tSalut\u202f!\n"
         "Run!\tCours\xa0!\n"
         "Who?\tQui ?\n"
         "Go now.\tVa maintenant.\n"
         "I see it, now.\tJe le vois, maintenant.\n"
         "Go.\tVa !\n"
         "I go now.\tJe vais maintenant.\n")


@pytest.fixture
def fra_eng(monkeypatch):
    """MTFraEng reads PAIRS instead of fra.txt."""
    monkeypatch.setattr(dlbook.MTFraEng, "_download", lambda self: PAIRS)
    return PAIRS


def test_mt_preprocess_spaces_case_and_punctuation():
    data = dlbook.MTFraEng.__new__(dlbook.MTFraEng)
    text = data._preprocess("Hi.\tSalut\u202f!\nI see it, now?\tJe le vois\xa0?\n")
    assert text == "hi .\tsalut !\ni see it , now ?\tje le vois ?\n"
    assert data._preprocess("a , b") == "a , b"  # no double spaces


def test_mt_tokenize_appends_eos_and_stops_at_max_examples():
    data = dlbook.MTFraEng.__new__(dlbook.MTFraEng)
    src, tgt = data._tokenize("go .\tva !\n\nhi .\tsalut !\nrun !\tcours !\n")
    assert src == [["go", ".", "<eos>"], ["hi", ".", "<eos>"], ["run", "!", "<eos>"]]
    assert tgt[1] == ["salut", "!", "<eos>"]
    src, tgt = data._tokenize("go .\tva !\n\nhi .\tsalut !\nrun !\tcours !\n", 2)
    assert len(src) == len(tgt) == 2 and src[1][0] == "hi"  # the empty line is skipped


def test_mt_arrays_pad_truncate_shift_and_count_valid_lengths(fra_eng):
    data = dlbook.MTFraEng(batch_size=2, num_steps=4, num_train=6, num_val=2)
    src, tgt, src_valid_len, label = data.arrays
    assert src.shape == tgt.shape == label.shape == (8, 4)
    src_pad, tgt_vocab = data.src_vocab["<pad>"], data.tgt_vocab
    for token in ("<unk>", "<pad>", "<bos>", "<eos>"):
        assert token in data.src_vocab.token_to_idx and token in tgt_vocab.token_to_idx
    assert (tgt[:, 0] == tgt_vocab["<bos>"]).all()
    assert torch.equal(tgt[:, 1:], label[:, :-1])  # the label is the input one step on
    assert torch.equal(src_valid_len, (src != src_pad).sum(1))
    assert tgt_vocab.to_tokens(label[0]) == ["va", "!", "<eos>", "<pad>"]
    # "i see it , now . <eos>" has 7 tokens: cut to 4, without <eos>
    assert src_valid_len[5] == 4 and src_valid_len[0] == 3
    assert data.src_vocab["<eos>"] not in src[5].tolist()
    # min_freq=2: "go" (3 times) is known, "who" (once) is not
    assert data.src_vocab["go"] != data.src_vocab.unk
    assert data.src_vocab["who"] == data.src_vocab.unk


def test_mt_dataloaders_split_train_and_val(fra_eng):
    data = dlbook.MTFraEng(batch_size=2, num_steps=4, num_train=6, num_val=2)
    train = list(data.train_dataloader())
    val = list(data.val_dataloader())
    assert sum(len(batch[0]) for batch in train) == 6
    assert len(val) == 1 and len(val[0]) == 4  # (src, tgt, src_valid_len, label)
    assert torch.equal(val[0][0], data.arrays[0][6:])


def test_mt_build_reuses_the_vocabularies(fra_eng):
    data = dlbook.MTFraEng(batch_size=2, num_steps=5, num_train=6, num_val=2)
    src, tgt, src_valid_len, label = data.build(["Go now.", "Zebra!"], ["Va !", "Zèbre !"])
    assert src.shape == (2, 5) and tgt.shape == label.shape == (2, 5)
    assert data.src_vocab.to_tokens(src[0]) == ["go", "now", ".", "<eos>", "<pad>"]
    assert src[1, 0] == data.src_vocab.unk  # a new word
    assert src_valid_len.tolist() == [4, 3]
    assert data.tgt_vocab.to_tokens(tgt[0])[:4] == ["<bos>", "va", "!", "<eos>"]


def test_show_list_len_pair_hist_draws_two_histograms():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    plt.figure()
    dlbook.show_list_len_pair_hist(["src", "tgt"], "len", "count",
                                   [[1, 2], [1, 2, 3], [1]], [[1], [1], [1, 2, 3, 4]])
    axes = plt.gca()
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["src", "tgt"]
    heights = [p.get_height() for p in axes.patches]
    assert sum(heights) == 6  # 3 source and 3 target lengths
    assert axes.get_xlabel() == "len" and axes.get_ylabel() == "count"
    plt.close("all")


def _needs_stand_in_packages():
    import importlib.util
    if importlib.util.find_spec("num2words") is None or \
            importlib.util.find_spec("babel") is None:
        pytest.skip("the packages num2words and babel are not installed")


def test_numbers_dates_stand_in_is_a_deterministic_zip(tmp_path):
    import zipfile
    _needs_stand_in_packages()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = dlbook.make_numbers_dates_stand_in(tmp_path / "a", num_pairs=200, seed=3)
    second = dlbook.make_numbers_dates_stand_in(tmp_path / "b", num_pairs=200, seed=3)
    with zipfile.ZipFile(first) as f, zipfile.ZipFile(second) as g:
        text = f.read("fra-eng/fra.txt").decode("utf-8")
        assert text == g.read("fra-eng/fra.txt").decode("utf-8")
    lines = text.splitlines()
    assert len(lines) == 200 and all(line.count("\t") == 1 for line in lines)
    assert any(line.split("\t")[0].endswith(("th", "st", "nd", "rd")) for line in lines)
    assert any("," in line.split("\t")[0] and line[-4:].isdigit() for line in lines)


def test_mt_download_falls_back_to_the_stand_in_offline(tmp_path, monkeypatch, capsys):
    _needs_stand_in_packages()
    monkeypatch.setenv("DLBOOK_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("DLBOOK_DATA_MIRROR", str(tmp_path / "empty-mirror"))
    monkeypatch.setenv("DLBOOK_OFFLINE", "1")
    data = dlbook.MTFraEng(batch_size=4)
    assert "stand-in" in capsys.readouterr().out
    assert data.arrays[0].shape == (640, 9)
    assert data._download().count("\n") == 10000


# --- Encoder, Decoder, EncoderDecoder (encoder-decoder) ---------------------------------

def test_encoder_and_decoder_are_abstract():
    with pytest.raises(NotImplementedError):
        dlbook.Encoder()(torch.zeros(1, 2))
    decoder = dlbook.Decoder()
    with pytest.raises(NotImplementedError):
        decoder.init_state(None)
    with pytest.raises(NotImplementedError):
        decoder(torch.zeros(1, 2), None)


def test_encoder_decoder_wires_encoder_state_and_decoder():
    calls = []

    class Enc(dlbook.Encoder):
        def forward(self, X, *args):
            calls.append(("encode", args))
            return X.sum(1, keepdim=True).float()

    class Dec(dlbook.Decoder):
        def init_state(self, enc_all_outputs, *args):
            calls.append(("init", args))
            return enc_all_outputs * 10

        def forward(self, X, state):
            return X.float() + state, "new state"

    model = dlbook.EncoderDecoder(Enc(), Dec())
    assert isinstance(model, dlbook.Classifier)
    out = model(torch.tensor([[1, 2], [3, 4]]), torch.tensor([[0, 1, 2], [0, 0, 0]]), "v")
    assert torch.equal(out, torch.tensor([[30.0, 31, 32], [70, 70, 70]]))
    assert calls == [("encode", ("v",)), ("init", ("v",))]


# --- init_seq2seq, Seq2SeqEncoder, Seq2SeqDecoder, Seq2Seq, predict_step, bleu (seq2seq)

def test_init_seq2seq_xavier_initialises_linear_and_gru_weights():
    import math
    linear, gru = torch.nn.Linear(30, 50), torch.nn.GRU(30, 50)
    torch.nn.init.constant_(linear.weight, 5.0)
    torch.nn.init.constant_(gru.weight_ih_l0, 5.0)
    torch.nn.init.constant_(gru.bias_ih_l0, 5.0)
    dlbook.init_seq2seq(linear)
    dlbook.init_seq2seq(gru)
    assert linear.weight.abs().max() <= math.sqrt(6 / 80)
    assert gru.weight_ih_l0.abs().max() <= math.sqrt(6 / (30 + 150))
    assert gru.weight_ih_l0.std() > 0.05
    assert (gru.bias_ih_l0 == 5.0).all()  # biases are left alone


def test_seq2seq_encoder_and_decoder_shapes():
    encoder = dlbook.Seq2SeqEncoder(10, 8, 16, 2)
    assert isinstance(encoder, dlbook.Encoder) and isinstance(encoder.rnn, dlbook.GRU)
    X = torch.randint(0, 10, (4, 7))
    outputs, state = encoder(X)
    assert outputs.shape == (7, 4, 16) and state.shape == (2, 4, 16)
    decoder = dlbook.Seq2SeqDecoder(12, 8, 16, 2)
    assert isinstance(decoder, dlbook.Decoder)
    dec_state = decoder.init_state(encoder(X))
    Y, (enc_outputs, hidden) = decoder(torch.randint(0, 12, (4, 5)), dec_state)
    assert Y.shape == (4, 5, 12) and hidden.shape == (2, 4, 16)
    assert torch.equal(enc_outputs, outputs)


def test_seq2seq_decoder_is_step_by_step_consistent():
    encoder, decoder = dlbook.Seq2SeqEncoder(10, 8, 16, 2), dlbook.Seq2SeqDecoder(12, 8, 16, 2)
    X, Y = torch.randint(0, 10, (3, 6)), torch.randint(0, 12, (3, 4))
    state = decoder.init_state(encoder(X))
    all_at_once, _ = decoder(Y, state)
    steps = []
    for t in range(4):
        out, state = decoder(Y[:, t:t + 1], state)
        steps.append(out)
    assert torch.allclose(torch.cat(steps, 1), all_at_once, atol=1e-5)


def test_seq2seq_loss_ignores_padding():
    model = dlbook.Seq2Seq(dlbook.Seq2SeqEncoder(5, 4, 8, 1),
                           dlbook.Seq2SeqDecoder(6, 4, 8, 1), tgt_pad=1, lr=0.1)
    Y = torch.tensor([[3, 2, 1, 1], [4, 1, 1, 1]])
    Y_hat = torch.randn(2, 4, 6)
    changed = Y_hat.clone()
    changed[0, 2:] = changed[1, 1:] = 50.0
    assert torch.allclose(model.loss(Y_hat, Y), model.loss(changed, Y))
    each = torch.nn.functional.cross_entropy(Y_hat.reshape(-1, 6), Y.reshape(-1),
                                             reduction="none").reshape(2, 4)
    expected = (each[0, 0] + each[0, 1] + each[1, 0]) / 3
    assert torch.allclose(model.loss(Y_hat, Y), expected)
    assert isinstance(model.configure_optimizers(), torch.optim.Adam)


def _copy_model(steps=300):
    """A small Seq2Seq trained to copy sequences of tokens 3..7 (0 pad, 1 bos, 2 eos)."""
    src = torch.randint(3, 8, (64, 4))
    src = torch.cat([src, torch.full((64, 1), 2)], 1)  # then <eos>
    tgt = torch.cat([torch.full((64, 1), 1), src[:, :-1]], 1)
    model = dlbook.Seq2Seq(dlbook.Seq2SeqEncoder(8, 16, 32, 1),
                           dlbook.Seq2SeqDecoder(8, 16, 32, 1), tgt_pad=0, lr=0.02)
    optimizer = model.configure_optimizers()
    valid = torch.full((64,), 5)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = model.loss(model(src, tgt, valid), src)
        loss.backward()
        optimizer.step()
    return model, src, tgt, valid


def test_tiny_seq2seq_learns_to_copy_and_predict_step_decodes_greedily():
    model, src, tgt, valid = _copy_model()
    preds, attention = model.predict_step((src, tgt, valid, src), "cpu", num_steps=5)
    assert preds.shape == (64, 5) and attention == []
    assert (preds == src).float().mean() > 0.95
    assert not model.training  # prediction runs in evaluation mode


def test_bleu_values():
    import math
    assert dlbook.bleu("a b c d", "a b c d", k=4) == 1.0
    assert dlbook.bleu("a b c d", "e f g h", k=2) == 0.0
    assert dlbook.bleu("", "a b", k=2) == 0.0
    assert math.isclose(dlbook.bleu("a b c d", "a b c e", k=2), math.sqrt(3 / 4 * 2 / 3))
    # brevity penalty: a correct prefix of half the reference length
    assert math.isclose(dlbook.bleu("a b", "a b c d", k=2), math.exp(1 - 4 / 2))
    # clipping: "a" occurs once in the reference, so "a a a" matches once
    assert math.isclose(dlbook.bleu("a a a", "a b c", k=1), 1 / 3)
    assert dlbook.bleu("a", "a", k=4) == 1.0  # fewer tokens than k


# --- beam_search (beam-search) ----------------------------------------------------------

class _TableModel(torch.nn.Module):
    """Next-token log-probabilities over A, B, C, <eos>=3 from a table of prefixes."""

    TABLE = {(): [0.5, 0.4, 0.1, 0.0], (0,): [0.1, 0.4, 0.3, 0.2],
             (1,): [0.05, 0.05, 0.8, 0.1], (0, 1): [0.1, 0.3, 0.1, 0.5],
             (1, 2): [0.1, 0.0, 0.1, 0.8]}

    def forward(self, enc_X, dec_X, *args):
        rows = [self.TABLE.get(tuple(p[1:]), [0.0, 0.0, 0.0, 1.0]) for p in dec_X.tolist()]
        return torch.tensor(rows).log().unsqueeze(1)


def test_beam_search_beats_greedy_on_a_table():
    import math
    model = _TableModel()
    (tokens, score), *_ = dlbook.beam_search(model, torch.zeros(2), 2, bos=4, eos=3,
                                             num_steps=3, beam_size=1, alpha=0)
    assert tokens == [0, 1, 3] and math.isclose(math.exp(score), 0.1, rel_tol=1e-5)
    ranked = dlbook.beam_search(model, torch.zeros(2), 2, bos=4, eos=3, num_steps=3,
                                beam_size=2, alpha=0)
    assert ranked[0][0] == [1, 2, 3] and math.isclose(math.exp(ranked[0][1]), 0.256,
                                                      rel_tol=1e-5)
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)


def test_beam_search_length_normalisation():
    model = _TableModel()
    ranked = dlbook.beam_search(model, torch.zeros(2), 2, bos=4, eos=3, num_steps=3,
                                beam_size=2, alpha=1)
    for tokens, score in ranked:  # score = log-probability / length
        log_prob = sum(torch.tensor(model.TABLE.get(tuple(tokens[:t]), [0, 0, 0, 1.0]))
                       .log()[token].item() for t, token in enumerate(tokens))
        assert abs(score - log_prob / len(tokens)) < 1e-5


def test_beam_search_of_size_one_equals_greedy_predict_step():
    model, src, tgt, valid = _copy_model(steps=40)  # half-trained: varied outputs
    preds, _ = model.predict_step((src, tgt, valid, src), "cpu", num_steps=6)
    for i in range(8):
        greedy = preds[i].tolist()
        if 2 in greedy:
            greedy = greedy[:greedy.index(2) + 1]
        tokens, _ = dlbook.beam_search(model, src[i], valid[i], bos=1, eos=2,
                                       num_steps=6, beam_size=1)[0]
        assert tokens == greedy

"""Tests of the attention library saved by chapter 11 (generated ``dlbook``).

Covers show_heatmaps, masked_softmax (1-D and 2-D valid lengths), DotProductAttention,
AdditiveAttention, MultiHeadAttention (transpose_qkv, transpose_output, forward) and
AttentionDecoder; later sections append tests for their names at the end. Everything
runs on small random tensors; nothing uses the network.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import dlbook  # noqa: E402

if not hasattr(dlbook, "masked_softmax"):
    pytest.fail("dlbook has no chapter 11 names yet: run `python -m tools lib` with "
                "chapters/11-attention in _toc.yml", pytrace=False)


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same random state."""
    torch.manual_seed(0)


# --- show_heatmaps ----------------------------------------------------------------------

def test_show_heatmaps_draws_a_grid_with_labels_and_titles():
    plt.close("all")
    matrices = torch.rand(2, 3, 4, 5)
    dlbook.show_heatmaps(matrices, xlabel="keys", ylabel="queries",
                         titles=["a", "b", "c"])
    fig = plt.gcf()
    grid = [ax for ax in fig.axes if ax.images]
    assert len(grid) == 6
    assert all(ax.images[0].get_array().shape == (4, 5) for ax in grid)
    assert [ax.get_title() for ax in grid[:3]] == ["a", "b", "c"]
    assert grid[3].get_xlabel() == "keys" and grid[0].get_ylabel() == "queries"
    assert grid[0].get_xlabel() == ""  # only the bottom row is labelled
    assert len(fig.axes) == 7  # six heat maps and one colour bar
    plt.close("all")


# --- masked_softmax ---------------------------------------------------------------------

def test_masked_softmax_without_lengths_is_softmax():
    X = torch.randn(2, 3, 4)
    assert torch.allclose(dlbook.masked_softmax(X, None), torch.softmax(X, dim=-1))


def test_masked_softmax_one_length_per_example():
    X = torch.randn(2, 3, 5)
    Y = dlbook.masked_softmax(X, torch.tensor([2, 4]))
    assert torch.all(Y[0, :, 2:] == 0) and torch.all(Y[1, :, 4:] == 0)
    assert torch.all(Y[0, :, :2] > 0) and torch.all(Y[1, :, :4] > 0)
    assert torch.allclose(Y.sum(dim=-1), torch.ones(2, 3))
    # the kept positions are the softmax of the kept scores alone
    assert torch.allclose(Y[1, :, :4], torch.softmax(X[1, :, :4], dim=-1))


def test_masked_softmax_one_length_per_query():
    X = torch.randn(2, 2, 4)
    Y = dlbook.masked_softmax(X, torch.tensor([[1, 3], [2, 4]]))
    assert torch.equal(Y[0, 0], torch.tensor([1.0, 0, 0, 0]))
    assert torch.all(Y[0, 1, 3:] == 0) and torch.all(Y[0, 1, :3] > 0)
    assert torch.all(Y[1, 0, 2:] == 0) and torch.all(Y[1, 1] > 0)
    assert torch.allclose(Y.sum(dim=-1), torch.ones(2, 2))


def test_masked_softmax_has_gradients_only_at_valid_positions():
    X = torch.randn(1, 1, 4, requires_grad=True)
    (dlbook.masked_softmax(X, torch.tensor([2]))[0, 0] * torch.arange(4.0)).sum().backward()
    assert torch.all(X.grad[0, 0, 2:] == 0) and torch.any(X.grad[0, 0, :2] != 0)


# --- DotProductAttention ----------------------------------------------------------------

def test_dot_product_attention_matches_formula_and_masks():
    Q, K, V = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    attention = dlbook.DotProductAttention(dropout=0.5)
    attention.eval()
    valid_lens = torch.tensor([2, 5])
    out = attention(Q, K, V, valid_lens)
    assert out.shape == (2, 3, 6)
    weights = attention.attention_weights
    assert weights.shape == (2, 3, 5)
    assert torch.all(weights[0, :, 2:] == 0)
    expected = torch.softmax(Q[1] @ K[1].T / math.sqrt(4), dim=-1) @ V[1]
    assert torch.allclose(out[1], expected, atol=1e-6)
    expected0 = torch.softmax(Q[0] @ K[0, :2].T / 2, dim=-1) @ V[0, :2]
    assert torch.allclose(out[0], expected0, atol=1e-6)


def test_dot_product_attention_dropout_only_in_training():
    Q, K, V = torch.randn(4, 3, 8), torch.randn(4, 7, 8), torch.randn(4, 7, 2)
    attention = dlbook.DotProductAttention(dropout=0.5)
    attention.eval()
    assert torch.equal(attention(Q, K, V), attention(Q, K, V))
    attention.train()
    assert not torch.equal(attention(Q, K, V), attention(Q, K, V))


# --- AdditiveAttention ------------------------------------------------------------------

def test_additive_attention_handles_different_query_and_key_sizes():
    Q, K, V = torch.randn(2, 3, 20), torch.randn(2, 6, 2), torch.randn(2, 6, 4)
    attention = dlbook.AdditiveAttention(num_hiddens=8, dropout=0)
    attention.eval()
    out = attention(Q, K, V, torch.tensor([2, 6]))
    assert out.shape == (2, 3, 4)
    weights = attention.attention_weights
    assert torch.all(weights[0, :, 2:] == 0)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(2, 3))
    # the score of one pair recomputed by hand
    q, k = Q[1, 0], K[1, 3]
    score = attention.w_v(torch.tanh(attention.W_q(q) + attention.W_k(k)))
    scores = torch.stack([attention.w_v(torch.tanh(attention.W_q(q) + attention.W_k(kj)))
                          for kj in K[1]]).squeeze(-1)
    assert torch.allclose(weights[1, 0, 3], (score.exp() / scores.exp().sum()).squeeze(),
                          atol=1e-6)


def test_additive_attention_is_trainable():
    attention = dlbook.AdditiveAttention(num_hiddens=4, dropout=0)
    Q, K, V = torch.randn(1, 1, 3), torch.randn(1, 4, 3), torch.randn(1, 4, 1)
    attention(Q, K, V).sum().backward()
    assert all(p.grad is not None for p in attention.parameters())


# --- MultiHeadAttention -----------------------------------------------------------------

def test_multi_head_transposes_are_inverse_and_slice_heads():
    mha = dlbook.MultiHeadAttention(num_hiddens=12, num_heads=4, dropout=0)
    X = torch.randn(3, 5, 12)
    folded = mha.transpose_qkv(X)
    assert folded.shape == (12, 5, 3)
    assert torch.equal(folded[4 * 2 + 1], X[2, :, 3:6])  # example 2, head 1
    assert torch.equal(mha.transpose_output(folded), X)


def test_multi_head_attention_shapes_and_masking():
    num_hiddens, num_heads = 16, 4
    mha = dlbook.MultiHeadAttention(num_hiddens, num_heads, dropout=0.5)
    mha.eval()
    X, Y = torch.randn(2, 4, 10), torch.randn(2, 6, 7)
    out = mha(X, Y, Y, torch.tensor([3, 2]))
    assert out.shape == (2, 4, num_hiddens)
    weights = mha.attention.attention_weights.reshape(2, num_heads, 4, 6)
    assert torch.all(weights[0, :, :, 3:] == 0) and torch.all(weights[1, :, :, 2:] == 0)
    assert torch.all(weights[0, :, :, :3] > 0)
    # per-query (2-D) valid lengths are repeated per head as well
    out = mha(X, Y, Y, torch.tensor([[1, 2, 3, 4], [6, 5, 4, 3]]))
    weights = mha.attention.attention_weights.reshape(2, num_heads, 4, 6)
    assert torch.all(weights[0, :, 0, 1:] == 0) and torch.all(weights[1, :, 3, 3:] == 0)


def test_multi_head_attention_equals_separate_heads():
    num_hiddens, num_heads = 6, 3
    mha = dlbook.MultiHeadAttention(num_hiddens, num_heads, dropout=0, bias=True)
    X = torch.randn(2, 4, 5)
    out = mha(X, X, X, None)
    p = num_hiddens // num_heads
    q, k, v = mha.W_q(X), mha.W_k(X), mha.W_v(X)
    heads = []
    for i in range(num_heads):
        part = slice(i * p, (i + 1) * p)
        weights = torch.softmax(q[..., part] @ k[..., part].transpose(1, 2) / math.sqrt(p),
                                dim=-1)
        heads.append(weights @ v[..., part])
    assert torch.allclose(out, mha.W_o(torch.cat(heads, dim=-1)), atol=1e-6)


def test_multi_head_attention_parameters_do_not_depend_on_heads():
    X = torch.randn(1, 2, 8)
    counts = set()
    for heads in (1, 2, 8):
        mha = dlbook.MultiHeadAttention(16, heads, dropout=0)
        mha(X, X, X, None)
        counts.add(sum(p.numel() for p in mha.parameters()))
    assert counts == {3 * 8 * 16 + 16 * 16}


# --- AttentionDecoder -------------------------------------------------------------------

def test_attention_decoder_is_a_decoder_whose_weights_subclasses_provide():
    assert issubclass(dlbook.AttentionDecoder, dlbook.Decoder)
    with pytest.raises(NotImplementedError):
        _ = dlbook.AttentionDecoder().attention_weights

    class Constant(dlbook.AttentionDecoder):
        def __init__(self):
            super().__init__()
            self.attention = dlbook.DotProductAttention(dropout=0)

        def init_state(self, enc_all_outputs, *args):
            return enc_all_outputs

        def forward(self, X, state):
            return self.attention(X, state, state), state

        @property
        def attention_weights(self):
            return self.attention.attention_weights

    decoder = Constant()
    memory = torch.randn(2, 5, 3)
    output, _ = decoder(torch.randn(2, 1, 3), decoder.init_state(memory))
    assert output.shape == (2, 1, 3)
    assert decoder.attention_weights.shape == (2, 1, 5)


# --- PositionalEncoding -----------------------------------------------------------------

def test_positional_encoding_values_at_known_positions():
    encoding = dlbook.PositionalEncoding(num_hiddens=8, dropout=0)
    P = encoding(torch.zeros(1, 5, 8))[0]
    assert P.shape == (5, 8)
    assert torch.allclose(P[0, 0::2], torch.zeros(4))  # sin(0)
    assert torch.allclose(P[0, 1::2], torch.ones(4))  # cos(0)
    assert math.isclose(P[1, 0].item(), math.sin(1), rel_tol=1e-6)
    assert math.isclose(P[3, 1].item(), math.cos(3), rel_tol=1e-6)
    assert math.isclose(P[2, 2].item(), math.sin(2 / 10000 ** (2 / 8)), rel_tol=1e-6)
    assert math.isclose(P[4, 7].item(), math.cos(4 / 10000 ** (6 / 8)), rel_tol=1e-6)


def test_positional_encoding_adds_to_inputs_and_dot_products_depend_on_offset():
    encoding = dlbook.PositionalEncoding(num_hiddens=16, dropout=0.5, max_len=50)
    encoding.eval()
    X = torch.randn(2, 7, 16)
    assert torch.allclose(encoding(X) - X, encoding.P[:, :7].expand(2, -1, -1), atol=1e-6)
    assert "P" not in encoding.state_dict() and not list(encoding.parameters())
    P = encoding.P[0]
    assert math.isclose((P[3] @ P[8]).item(), (P[20] @ P[25]).item(), rel_tol=1e-4)
    encoding.train()
    assert (encoding(torch.zeros(1, 50, 16)) == 0).any()  # dropout acts in training


# --- PositionWiseFFN --------------------------------------------------------------------

def test_position_wise_ffn_shape_and_same_weights_at_every_position():
    ffn = dlbook.PositionWiseFFN(ffn_num_hiddens=12, ffn_num_outputs=5)
    X = torch.randn(3, 4, 6)
    X[2, 3] = X[0, 1]
    Y = ffn(X)
    assert Y.shape == (3, 4, 5)
    assert torch.allclose(Y[2, 3], Y[0, 1])
    relu = torch.relu(X @ ffn.dense1.weight.T + ffn.dense1.bias)
    assert torch.allclose(Y, relu @ ffn.dense2.weight.T + ffn.dense2.bias, atol=1e-6)


# --- AddNorm ----------------------------------------------------------------------------

def test_add_norm_normalises_the_residual_sum_per_token():
    add_norm = dlbook.AddNorm(norm_shape=6, dropout=0.5)
    add_norm.eval()
    X, Y = torch.randn(2, 3, 6), torch.randn(2, 3, 6)
    out = add_norm(X, Y)
    expected = torch.nn.functional.layer_norm(X + Y, (6,))
    assert out.shape == (2, 3, 6)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(out.mean(-1), torch.zeros(2, 3), atol=1e-5)


# --- TransformerEncoderBlock ------------------------------------------------------------

def test_transformer_encoder_block_keeps_shape_and_ignores_padding():
    blk = dlbook.TransformerEncoderBlock(num_hiddens=16, ffn_num_hiddens=32, num_heads=4,
                                         dropout=0.5)
    blk.eval()
    X = torch.randn(2, 6, 16)
    out = blk(X, torch.tensor([3, 6]))
    assert out.shape == (2, 6, 16)
    X_changed = X.clone()
    X_changed[0, 3:] = torch.randn(3, 16)  # padding positions of the first example
    out_changed = blk(X_changed, torch.tensor([3, 6]))
    assert torch.allclose(out[0, :3], out_changed[0, :3], atol=1e-5)
    assert torch.allclose(out[1], out_changed[1], atol=1e-5)


def test_transformer_encoder_block_with_causal_lengths_is_causal():
    blk = dlbook.TransformerEncoderBlock(16, 32, 4, 0.0)
    blk.eval()
    X = torch.randn(2, 5, 16)
    causal = torch.arange(1, 6).repeat(2, 1)
    X_changed = X.clone()
    X_changed[:, 3:] = torch.randn(2, 2, 16)
    assert torch.allclose(blk(X, causal)[:, :3], blk(X_changed, causal)[:, :3], atol=1e-5)


# --- TransformerEncoder -----------------------------------------------------------------

def test_transformer_encoder_shapes_weights_and_scaling():
    encoder = dlbook.TransformerEncoder(vocab_size=30, num_hiddens=16, ffn_num_hiddens=32,
                                        num_heads=4, num_blks=3, dropout=0.0)
    encoder.eval()
    assert isinstance(encoder, dlbook.Encoder) and len(encoder.blks) == 3
    X = torch.randint(0, 30, (2, 7))
    out = encoder(X, torch.tensor([7, 2]))
    assert out.shape == (2, 7, 16)
    assert len(encoder.attention_weights) == 3
    weights = encoder.attention_weights[0]  # (batch * heads, queries, keys)
    assert weights.shape == (2 * 4, 7, 7)
    assert torch.allclose(weights.sum(-1), torch.ones(8, 7), atol=1e-5)
    assert torch.all(weights[4:, :, 2:] == 0)  # the second example has 2 valid tokens
    # the input to the blocks is sqrt(d) * embedding + positional encoding
    embedded = encoder.embedding(X) * math.sqrt(16)
    assert torch.allclose(encoder.pos_encoding(embedded) - embedded,
                          encoder.pos_encoding.P[:, :7].expand(2, -1, -1), atol=1e-5)


def test_transformer_encoder_learns_to_classify_a_token():
    """A tiny encoder plus a linear layer learns which of two tokens starts a sequence."""
    encoder = dlbook.TransformerEncoder(vocab_size=5, num_hiddens=16, ffn_num_hiddens=32,
                                        num_heads=2, num_blks=1, dropout=0.0)
    head = torch.nn.Linear(16, 2)
    params = list(encoder.parameters()) + list(head.parameters())
    X = torch.randint(2, 5, (64, 6))
    y = torch.randint(0, 2, (64,))
    X[:, 0] = y  # tokens 0 and 1 mark the class
    valid_lens = torch.full((64,), 6)
    encoder(X, valid_lens)  # shape the lazy layers before creating the optimiser
    optimizer = torch.optim.Adam(params, lr=0.01)
    for _ in range(60):
        loss = torch.nn.functional.cross_entropy(head(encoder(X, valid_lens)[:, -1]), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1

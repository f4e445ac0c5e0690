"""Scoped MC dropout (``engine/mc_dropout.py``) on a tiny random BERT: the attention-dropout pitfall, scopes, the
private view that leaves the shared model's flags alone, and the seeded dropout and attention it samples with."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from beal_backend.engine.batching import collate
from beal_backend.engine.mc_dropout import (
    Scope,
    SeededDropout,
    _attention,
    mc_dropout,
    stochastic_modules,
)
from tests.conftest import build_tiny_classifier, random_encoded

ATTN_IMPLS = ["eager", "sdpa"]


@pytest.fixture(scope="module")
def batch():
    enc = random_encoded(n=5, seed=1)
    return collate(enc, np.arange(len(enc)))


def two_passes(model, ids, mask, fn=None):
    fn = fn or (lambda: model(ids, mask))
    with torch.no_grad():
        return fn(), fn()


@pytest.fixture
def attention_only_model(request):
    """Only attention-probability dropout (0.5); hidden and head dropout 0."""
    return build_tiny_classifier(
        hidden_dropout=0.0, attention_dropout=0.5, head_dropout=0.0, attn_implementation=request.param
    )


# ---------------------------------------------------------------- the attention-dropout pitfall


@pytest.mark.parametrize("attention_only_model", ATTN_IMPLS, indirect=True)
def test_full_scope_reaches_attention_dropout(attention_only_model, batch):
    model, (ids, mask) = attention_only_model, batch
    with mc_dropout(model, Scope.parse("full")) as view:
        a, b = two_passes(view, ids, mask)
    assert not torch.allclose(a, b, atol=1e-6), "two MC passes are identical: attention dropout is off"


@pytest.mark.parametrize("attention_only_model", ATTN_IMPLS, indirect=True)
def test_naive_dropout_module_switch_leaves_attention_dropout_off(attention_only_model, batch):
    """The pitfall the engine avoids: eval() then train() on nn.Dropout modules only."""
    model, (ids, mask) = attention_only_model, batch
    model.eval()
    switched = 0
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.train()
            switched += 1
    assert switched > 0
    torch.manual_seed(0)
    a, b = two_passes(model, ids, mask)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("attention_only_model", ATTN_IMPLS, indirect=True)
def test_full_scope_switches_attention_owners(attention_only_model):
    model = attention_only_model
    owners = {id(m) for m in stochastic_modules(model, Scope.parse("full"))}
    for layer in model.layers():
        assert id(layer.attention.self) in owners  # BertSelfAttention reads its own .training
        assert id(layer.attention.self.dropout) in owners


def test_eval_mode_is_deterministic(tiny_classifier, batch):
    model = tiny_classifier(hidden_dropout=0.3, attention_dropout=0.3, head_dropout=0.3)
    ids, mask = batch
    model.eval()
    a, b = two_passes(model, ids, mask)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with mc_dropout(model, None) as view:
        assert not any(m.training for m in view.modules())
        c, d = two_passes(view, ids, mask)
    torch.testing.assert_close(c, a, rtol=0, atol=0)
    torch.testing.assert_close(d, a, rtol=0, atol=0)


def test_mc_dropout_turns_off_training_outside_scope(tiny_classifier, batch):
    """A model left in train mode must not sample outside the scope (e.g. the encoder under ``head``)."""
    model = tiny_classifier(hidden_dropout=0.3, attention_dropout=0.3, head_dropout=0.0)
    ids, mask = batch
    model.train()
    with mc_dropout(model, Scope.parse("head")) as view:
        a, b = two_passes(view, ids, mask)
        assert not any(m.training for m in view.encoder.modules())
        assert all(m.training for m in model.modules())  # the shared model is not switched
    torch.testing.assert_close(a, b, rtol=0, atol=0)


# ---------------------------------------------------------------- scopes


def test_head_scope_samples_only_the_head(tiny_classifier, batch):
    model = tiny_classifier(hidden_dropout=0.3, attention_dropout=0.3, head_dropout=0.3)
    ids, mask = batch
    with mc_dropout(model, Scope.parse("head")) as view:
        f1, f2 = two_passes(view, ids, mask, lambda: view.features(ids, mask))
        h1, h2 = two_passes(view, ids, mask, lambda: view.head(f1)[0])
        o1, o2 = two_passes(view, ids, mask)
    torch.testing.assert_close(f1, f2, rtol=0, atol=0)
    assert not torch.allclose(h1, h2, atol=1e-6)
    assert not torch.allclose(o1, o2, atol=1e-6)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model.features(ids, mask), f1, rtol=0, atol=0)  # the encoder ran in eval


def layer_outputs(model, ids, mask) -> list[torch.Tensor]:
    outputs = []
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out: outputs.append(out[0] if isinstance(out, tuple) else out))
        for layer in model.layers()
    ]
    try:
        with torch.no_grad():
            model(ids, mask)
    finally:
        for hook in hooks:
            hook.remove()
    assert len(outputs) == len(model.layers())
    return outputs


@pytest.mark.parametrize("k", [1, 2, 3])
def test_last_k_scope_samples_only_the_last_k_layers(tiny_classifier, batch, k):
    model = tiny_classifier(hidden_dropout=0.3, attention_dropout=0.3, head_dropout=0.3, layers=4)
    ids, mask = batch
    with mc_dropout(model, Scope.parse(f"last-{k}")) as view:
        first, second = layer_outputs(view, ids, mask), layer_outputs(view, ids, mask)
        assert not view.encoder.embeddings.training
    split = 4 - k
    for i in range(split):
        torch.testing.assert_close(first[i], second[i], rtol=0, atol=0, msg=f"layer {i} is before the split")
    for i in range(split, 4):
        assert not torch.allclose(first[i], second[i], atol=1e-6), f"layer {i} should be sampled"


def test_full_scope_samples_from_the_first_layer(tiny_classifier, batch):
    model = tiny_classifier(hidden_dropout=0.3, attention_dropout=0.3, head_dropout=0.3)
    ids, mask = batch
    with mc_dropout(model, Scope.parse("full")) as view:
        first, second = layer_outputs(view, ids, mask), layer_outputs(view, ids, mask)
    assert not torch.allclose(first[0], second[0], atol=1e-6)


@pytest.mark.parametrize("impl", ATTN_IMPLS)
def test_prefix_suffix_split_equals_forward(tiny_classifier, batch, impl):
    """The cached-prefix path of last-k scoring builds the same padding mask as BertModel."""
    model = tiny_classifier(hidden_dropout=0.3, attention_dropout=0.3, head_dropout=0.3, attn_implementation=impl)
    ids, mask = batch
    with torch.no_grad():
        full = model(ids, mask)
        for upto in range(5):
            split = model.encode_suffix(model.encode_prefix(ids, mask, upto), mask, upto)
            torch.testing.assert_close(split, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scope", ["full", "head", "last-2"])
def test_shared_model_flags_are_never_touched(tiny_classifier, scope):
    """Concurrent requests share one model: the scope is switched on a private view, never on the model."""
    model = tiny_classifier(hidden_dropout=0.3, attention_dropout=0.3, head_dropout=0.3)
    model.train()
    model.encoder.encoder.layer[1].eval()  # a mixed state must stay exactly as it is
    model.head.dropout_out.eval()
    before = [(name, m.training) for name, m in model.named_modules()]
    with pytest.raises(RuntimeError, match="boom"):
        with mc_dropout(model, Scope.parse(scope)) as view:
            switched = stochastic_modules(view, Scope.parse(scope))
            assert switched and all(m.training for m in switched)
            assert not view.training and [(n, m.training) for n, m in model.named_modules()] == before
            raise RuntimeError("boom")
    assert [(name, m.training) for name, m in model.named_modules()] == before


def test_view_shares_every_tensor_and_owns_its_flags(tiny_classifier):
    model = tiny_classifier(head_dropout=0.1).eval()
    with mc_dropout(model, Scope.parse("full")) as view:
        assert view.head.dropout_in.training and not model.head.dropout_in.training
        assert [n for n, _ in view.named_modules()] == [n for n, _ in model.named_modules()]
        for (name, a), (_, b) in zip(model.state_dict(keep_vars=True).items(), view.state_dict(keep_vars=True).items()):
            assert a is b, name  # the same tensors: a view costs no parameter memory
        view.head.register_forward_hook(lambda *_: None)
        assert not model.head._forward_hooks  # hooks (and flags) on the view stay on the view
    assert not any(m.training for m in model.modules())


def test_head_scope_switches_nothing_in_the_encoder(tiny_classifier):
    model = tiny_classifier(hidden_dropout=0.3, attention_dropout=0.3, head_dropout=0.3)
    encoder_ids = {id(m) for m in model.encoder.modules()}
    switched = stochastic_modules(model, Scope.parse("head"))
    assert switched and not any(id(m) in encoder_ids for m in switched)
    last2 = {id(m) for m in stochastic_modules(model, Scope.parse("last-2"))}
    layer_ids = [{id(m) for m in layer.modules()} for layer in model.layers()]
    assert not last2 & (layer_ids[0] | layer_ids[1] | {id(m) for m in model.encoder.embeddings.modules()})
    assert last2 & layer_ids[2] and last2 & layer_ids[3]


@pytest.mark.parametrize(
    "text",
    ["", "Full", "HEAD", "last", "last-", "last-0", "last--1", "last-x", "last-2 ", " full", "last-1.5", "first-2"],
)
def test_scope_parse_rejects(text):
    with pytest.raises(ValueError, match="scope"):
        Scope.parse(text)


def test_scope_parse_accepts_and_round_trips(tiny_classifier):
    assert Scope.parse("full") == Scope("full")
    assert Scope.parse("head") == Scope("head")
    assert Scope.parse("last-3") == Scope("last", 3)
    for text in ("full", "head", "last-1", "last-12"):
        assert str(Scope.parse(text)) == text
    model = tiny_classifier(layers=4)
    assert [Scope.parse(s).split(model) for s in ("full", "head", "last-1", "last-4")] == [0, 4, 3, 0]
    with pytest.raises(ValueError, match="more layers"):
        Scope.parse("last-5").split(model)


# ---------------------------------------------------------------- seeded dropout and attention


def test_seeded_attention_is_sdpa_math_with_generator_masks():
    q, k, v = (torch.randn(2, 3, 5, 4, generator=torch.Generator().manual_seed(i)) for i in range(3))
    pad = torch.tensor([[True] * 5, [True, True, True, False, False]])[:, None, None, :]  # [B, 1, 1, S]
    for mask, causal in ((None, False), (pad, False), (None, True)):
        torch.testing.assert_close(
            _attention(torch.Generator(), q, k, v, attn_mask=mask, is_causal=causal),
            F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal),
        )
    # by hand: softmax(QK^T / sqrt(4) + mask), dropped with the masks the same seed draws
    scores = (q @ k.transpose(-2, -1) / 2).masked_fill(~pad, float("-inf")).softmax(-1)
    keep = torch.empty_like(scores).bernoulli_(0.7, generator=torch.Generator().manual_seed(9))
    got = _attention(torch.Generator().manual_seed(9), q, k, v, attn_mask=pad, dropout_p=0.3)
    torch.testing.assert_close(got, (scores * keep / 0.7) @ v)


def test_unsupported_dropout_variants_are_refused():
    with SeededDropout(torch.Generator()):
        assert F.dropout2d(torch.ones(1, 2, 3, 3), 0.5, training=False).sum() == 18  # off: harmless
        with pytest.raises(NotImplementedError, match="dropout2d"):
            F.dropout2d(torch.ones(1, 2, 3, 3), 0.5, training=True)


def test_seeded_dropout_keeps_f_dropout_semantics():
    x = torch.ones(4000)
    with SeededDropout(torch.Generator().manual_seed(0)):
        y = F.dropout(x, 0.25, training=True)
        torch.testing.assert_close(y.unique(), torch.tensor([0.0, 4 / 3]))  # kept values scaled by 1 / (1 - p)
        assert abs((y == 0).float().mean().item() - 0.25) < 0.03
        assert torch.equal(F.dropout(x, 0.25, training=False), x)
        assert torch.equal(F.dropout(x, 1.0, training=True), torch.zeros_like(x))

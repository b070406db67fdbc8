"""Parity of the cells and layers with torch.nn: state dicts both ways, outputs, final states
and gradients (fp32), including bidirectional, multi-layer, projection and packed batches."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence
from zoo_rnn.layers import GRUCell, LSTMCell, RNNCell, lstm_native
from zoo_rnn.layers.fused_lstm import lstm_layer
from zoo_rnn.recurrent import GRU, LSTM, RNN

import zoo_core as zoo

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

TOL = {"rtol": 1e-6, "atol": 1e-6}

KINDS = {  # name: (ours, torch.nn, extra kwargs)
    "rnn-tanh": (RNN, nn.RNN, {}),
    "rnn-relu": (RNN, nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (LSTM, nn.LSTM, {}),
    "lstm-proj": (LSTM, nn.LSTM, {"proj_size": 3}),
    "gru": (GRU, nn.GRU, {}),
}


def _pair(kind: str, **kw):
    ours_cls, ref_cls, extra = KINDS[kind]
    torch.manual_seed(0)
    ref = ref_cls(input_size=5, hidden_size=6, **extra, **kw)
    ours = ours_cls.from_config(input_size=5, hidden_size=6, **extra,
                                **{k: v for k, v in kw.items()})
    ours.load_torch_state_dict(ref.state_dict())
    return ours, ref


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


def _check_grads(ours, ref, out_ours, out_ref, inputs_ours, inputs_ref):
    """Same random projection of every output on both sides; compare all gradients."""
    gen = torch.Generator().manual_seed(1)
    weights = [torch.randn(t.shape, generator=gen) for t in out_ref]
    loss_ref = sum((w * t).sum() for w, t in zip(weights, out_ref, strict=True))
    loss_ours = sum((w * t).sum() for w, t in zip(weights, out_ours, strict=True))
    ref_params = dict(ref.named_parameters())
    our_params = dict(ours.named_parameters())
    grads_ref = torch.autograd.grad(loss_ref, inputs_ref + list(ref_params.values()))
    grads_ours = torch.autograd.grad(loss_ours,
                                     inputs_ours + [our_params[k] for k in ref_params])
    names = [f"input {i}" for i in range(len(inputs_ref))] + list(ref_params)
    for name, a, b in zip(names, grads_ours, grads_ref, strict=True):
        # 1e-6 relative to the gradient's scale: sums over steps round differently in fp32
        scale = max(1.0, float(b.abs().max()))
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6 * scale,
                                   msg=f"gradient of {name}")


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("layers,bidir", [(1, False), (2, True)])
def test_padded_with_initial_state(kind, fused, layers, bidir):
    ours, ref = _pair(kind, num_layers=layers, bidirectional=bidir, batch_first=True)
    ours = type(ours).from_torch(ref, fused=fused)
    x = torch.randn(3, 7, 5)
    hx_ref = tuple(torch.randn(s.shape) for s in _flat(ref(x)[1]))
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    h1 = [t.clone().requires_grad_() for t in hx_ref]
    h2 = [t.clone().requires_grad_() for t in hx_ref]
    arg1 = tuple(h1) if len(h1) == 2 else h1[0]
    arg2 = tuple(h2) if len(h2) == 2 else h2[0]
    y, state = ours(x1, arg1)
    y_ref, state_ref = ref(x2, arg2)
    torch.testing.assert_close(y, y_ref, **TOL)
    for a, b in zip(_flat(state), _flat(state_ref), strict=True):
        torch.testing.assert_close(a, b, **TOL)
    _check_grads(ours, ref, [y, *_flat(state)], [y_ref, *_flat(state_ref)],
                 [x1, *h1], [x2, *h2])


@pytest.fixture(params=["c", "torch"])
def gate_math(request, monkeypatch):
    """The plain LSTM's gate arithmetic in C (layers/lstm_gates.c) or in ATen operations."""
    if request.param == "torch":
        monkeypatch.setenv(lstm_native.SWITCH, "0")
    elif lstm_native.gates(torch.zeros(1)) is None:
        pytest.skip("no working C compiler here")
    return request.param


@pytest.fixture(params=["blas", "onednn"])
def sequence_products(request, monkeypatch):
    """The sequence products by torch's BLAS (as on Intel CPUs) or by oneDNN (elsewhere)."""
    from zoo_rnn.layers import fused
    monkeypatch.setattr(fused, "_INTEL_MKL", request.param == "blas")
    return request.param


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_fast_path_at_width(batch_first, bias, gate_math, sequence_products):
    """The plain LSTM's own path (no lengths, no projection: layers/fused_lstm.PlainLSTM) at a
    width where its products are oneDNN's or BLAS's: outputs, states and every gradient."""
    torch.manual_seed(0)
    ref = nn.LSTM(24, 48, num_layers=2, bidirectional=True, batch_first=batch_first,
                  bias=bias)
    ours = LSTM.from_torch(ref)
    x = torch.randn((6, 25, 24) if batch_first else (25, 6, 24))
    hx = [torch.randn(4, 6, 48) for _ in range(2)]
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    h1 = [t.clone().requires_grad_() for t in hx]
    h2 = [t.clone().requires_grad_() for t in hx]
    y, state = ours(x1, tuple(h1))
    y_ref, state_ref = ref(x2, tuple(h2))
    torch.testing.assert_close(y, y_ref, **TOL)
    for a, b in zip(state, state_ref, strict=True):
        torch.testing.assert_close(a, b, **TOL)
    _check_grads(ours, ref, [y, *state], [y_ref, *state_ref], [x1, *h1], [x2, *h2])
    steps_first = x.transpose(0, 1) if batch_first else x
    layer_y = lstm_layer(steps_first, ours.weight_ih_l0, getattr(ours, "bias_ih_l0", None),
                         hx[0][0], hx[1][0], ours.weight_hh_l0,
                         getattr(ours, "bias_hh_l0", None))[0]
    assert type(layer_y.grad_fn).__name__ == "PlainLSTMBackward"


def test_lstm_steps_never_write_into_what_the_caller_kept(gate_math, sequence_products):
    """The fast path keeps its step buffers between calls (zoo.spares): outputs and gradients
    still held from one step are not overwritten by the next, and every step matches
    torch.nn."""
    torch.manual_seed(0)
    ref = nn.LSTM(16, 40, num_layers=2)
    ours = LSTM.from_torch(ref)
    kept = []
    for step in range(3):
        x = torch.randn(7, 5, 16)
        y, _ = ours(x)
        y_ref, _ = ref(x)
        (y * y).sum().backward()
        (y_ref * y_ref).sum().backward()
        torch.testing.assert_close(y, y_ref, **TOL)
        for (name, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-6 * max(
                1.0, float(q.grad.abs().max())), msg=f"step {step}: gradient of {name}")
        kept.append((y, y.detach().clone(), ours.weight_hh_l0.grad,
                     ours.weight_hh_l0.grad.clone()))
        ours.zero_grad(set_to_none=True)
        ref.zero_grad(set_to_none=True)
    for y, y_then, g, g_then in kept:
        torch.testing.assert_close(y.detach(), y_then, rtol=0, atol=0)
        torch.testing.assert_close(g, g_then, rtol=0, atol=0)


def test_lstm_without_a_c_compiler_takes_the_torch_steps(monkeypatch):
    monkeypatch.setenv("CC", "false")              # a compiler that runs and fails
    assert lstm_native.gates(torch.zeros(1)) is None
    torch.manual_seed(0)
    ref = nn.LSTM(5, 6)
    x = torch.randn(4, 3, 5)
    torch.testing.assert_close(LSTM.from_torch(ref)(x)[0], ref(x)[0], **TOL)


def test_lstm_gate_rows_shared_by_two_threads(gate_math):
    """At B·H ≥ 4096 the C kernel's rows are split over torch's threads (where it is built
    with OpenMP): the same outputs and gradients as torch.nn, both directions."""
    torch.manual_seed(0)
    torch.set_num_threads(2)                    # the conftest fixture restores it
    ref = nn.LSTM(8, 512, bidirectional=True)
    ours = LSTM.from_torch(ref)
    x = torch.randn(3, 9, 8)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, state = ours(x1)
    y_ref, state_ref = ref(x2)
    torch.testing.assert_close(y, y_ref, **TOL)
    _check_grads(ours, ref, [y, *state], [y_ref, *state_ref], [x1], [x2])


@pytest.mark.parametrize("batch_first", [True, False])
def test_lstm_fast_path_sum_loss(batch_first, gate_math):
    """y.sum() hands backward a broadcast gradient (all strides 0; batch-first: transposed)."""
    torch.manual_seed(0)
    ref = nn.LSTM(16, 40, num_layers=2, batch_first=batch_first)
    ours = LSTM.from_torch(ref)
    x = torch.randn(5, 9, 16)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, (h, c) = ours(x1)
    y_ref, (h_ref, c_ref) = ref(x2)
    for a, b in ((y, y_ref), (h, h_ref), (c, c_ref)):
        torch.testing.assert_close(a, b, **TOL)
    (y.sum() + c.sum()).backward()
    (y_ref.sum() + c_ref.sum()).backward()
    torch.testing.assert_close(x1.grad, x2.grad, **TOL)
    for (name, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
        scale = max(1.0, float(q.grad.abs().max()))
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-6, atol=1e-6 * scale,
                                   msg=f"gradient of {name}")


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("fused", [True, False])
def test_packed_variable_lengths(kind, fused):
    ours, ref = _pair(kind, num_layers=2, bidirectional=True)
    ours = type(ours).from_torch(ref, fused=fused)
    lengths = torch.tensor([4, 7, 1, 5])                       # unsorted
    x1 = torch.randn(7, 4, 5, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    p1 = pack_padded_sequence(x1, lengths, enforce_sorted=False)
    p2 = pack_padded_sequence(x2, lengths, enforce_sorted=False)
    y, state = ours(p1)
    y_ref, state_ref = ref(p2)
    assert isinstance(y, PackedSequence)
    assert torch.equal(y.batch_sizes, y_ref.batch_sizes)
    assert torch.equal(y.sorted_indices, y_ref.sorted_indices)
    torch.testing.assert_close(y.data, y_ref.data, **TOL)
    for a, b in zip(_flat(state), _flat(state_ref), strict=True):
        torch.testing.assert_close(a, b, **TOL)
    _check_grads(ours, ref, [y.data, *_flat(state)], [y_ref.data, *_flat(state_ref)],
                 [x1], [x2])


@pytest.mark.parametrize("kind", ["lstm-proj", "gru"])
def test_padded_lengths_match_packed(kind):
    """Padded input + lengths gives the packed result, zero-padded."""
    ours, ref = _pair(kind, num_layers=2, bidirectional=True)
    lengths = torch.tensor([6, 6, 3])
    x = torch.randn(6, 3, 5)
    y, state = ours(x, lengths=lengths)
    y_ref, state_ref = ref(pack_padded_sequence(x, lengths))
    y_ref, _ = pad_packed_sequence(y_ref, total_length=6)
    torch.testing.assert_close(y, y_ref, **TOL)
    for a, b in zip(_flat(state), _flat(state_ref), strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("kind", list(KINDS))
def test_unbatched_and_export(kind):
    ours, ref = _pair(kind, num_layers=2)
    x = torch.randn(4, 5)
    y, state = ours(x)
    y_ref, state_ref = ref(x)
    torch.testing.assert_close(y, y_ref, **TOL)
    for a, b in zip(_flat(state), _flat(state_ref), strict=True):
        torch.testing.assert_close(a, b, **TOL)
    back = ours.to_torch()                                     # ours → torch.nn
    assert type(back) is type(ref)
    for k, v in ref.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    ref.load_state_dict(ours.torch_state_dict())               # plain torch.nn API


@pytest.mark.parametrize("cell,ref_cls,kw", [
    (RNNCell, nn.RNNCell, {"nonlinearity": "tanh"}), (RNNCell, nn.RNNCell,
                                                       {"nonlinearity": "relu"}),
    (LSTMCell, nn.LSTMCell, {}), (GRUCell, nn.GRUCell, {})])
def test_cells(cell, ref_cls, kw):
    torch.manual_seed(0)
    ref = ref_cls(5, 6, **kw)
    ours = cell(5, 6, **kw)
    ours.load_state_dict(ref.state_dict())
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 5, requires_grad=True)
    hs = [torch.randn(3, 6, requires_grad=True) for _ in range(2 if cell is LSTMCell else 1)]
    state = tuple(hs) if cell is LSTMCell else hs[0]
    out, out_ref = ours(x, state), ref(x, state)
    for a, b in zip(_flat(out), _flat(out_ref), strict=True):
        torch.testing.assert_close(a, b, **TOL)
    g = torch.autograd.grad(sum(t.sum() for t in _flat(out)), [x, *hs, *ours.parameters()])
    g_ref = torch.autograd.grad(sum(t.sum() for t in _flat(out_ref)),
                                [x, *hs, *ref.parameters()])
    for a, b in zip(g, g_ref, strict=True):
        torch.testing.assert_close(a, b, **TOL)


def test_registry_and_layout():
    lstm = zoo.create("model:lstm", input_size=5, hidden_size=6, num_layers=2,
                      bidirectional=True, proj_size=2)
    ref = nn.LSTM(5, 6, num_layers=2, bidirectional=True, proj_size=2)
    assert list(lstm.state_dict()) == list(ref.state_dict())   # same keys, same order
    assert zoo.load_state_dict(lstm, ref.state_dict(), layout="torch") == []
    assert torch.equal(lstm.weight_hr_l1_reverse, ref.weight_hr_l1_reverse)


@pytest.mark.parametrize("kind", list(KINDS))
def test_drop_in_for_torch_nn(kind):
    """nn.*'s positional signature, and state dicts loaded both ways with nn's own method."""
    ours_cls, ref_cls, extra = KINDS[kind]
    args = (5, 6, 2) + ((extra["nonlinearity"],) if "nonlinearity" in extra else ())
    kw = {k: v for k, v in extra.items() if k != "nonlinearity"}
    torch.manual_seed(0)
    ref = ref_cls(*args, batch_first=True, bidirectional=True, dropout=0.0, **kw)
    ours = ours_cls(*args, batch_first=True, bidirectional=True, dropout=0.0, **kw)
    assert ours.config.num_layers == 2 and ours.config.batch_first
    ours.load_state_dict(ref.state_dict())                       # nn → ours
    x = torch.randn(3, 4, 5)
    y, state = ours(x)
    y_ref, state_ref = ref(x)
    torch.testing.assert_close(y, y_ref, **TOL)
    for a, b in zip(_flat(state), _flat(state_ref), strict=True):
        torch.testing.assert_close(a, b, **TOL)
    twin = ref_cls(*args, batch_first=True, bidirectional=True, **kw)
    twin.load_state_dict(ours.state_dict())                      # ours → nn
    torch.testing.assert_close(twin(x)[0], y_ref, **TOL)


def test_constructor_errors():
    with pytest.raises(TypeError, match="multiple values for argument 'hidden_size'"):
        LSTM(5, 6, hidden_size=6)
    with pytest.raises(TypeError, match="at most 8 positional"):
        LSTM(5, 6, 1, True, False, 0.0, False, 0, "extra")
    with pytest.raises(zoo.ConfigError, match="proj_size"):
        LSTM(5, 6, proj_size=6)
    m = GRU(5, 6, dtype=torch.float64)
    assert m.weight_hh_l0.dtype == torch.float64


def test_dropout_between_layers_only_in_training():
    ours, ref = _pair("gru", num_layers=3, dropout=0.5)
    x = torch.randn(5, 2, 5)
    ours.eval()
    torch.testing.assert_close(ours(x)[0], ref.eval()(x)[0], **TOL)
    ours.train()
    torch.manual_seed(0)
    a = ours(x)[0]
    torch.manual_seed(1)
    assert not torch.allclose(a, ours(x)[0])

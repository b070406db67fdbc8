"""Bad input, the LSTM options without a torch.nn peer (checked against their equations written
out here), and gradient checkpointing over layers."""

from __future__ import annotations

import functools

import pytest
import torch
from torch.utils.checkpoint import checkpoint
from zoo_rnn.layers import LSTMCell
from zoo_rnn.recurrent import GRU, LSTM, RNN

import zoo_core as zoo


@pytest.fixture
def lstm():
    return LSTM.from_config(input_size=4, hidden_size=5, num_layers=2)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4, 5)])
def test_wrong_rank(lstm, shape):
    with pytest.raises(zoo.ZooError, match=r"3-D .* or 2-D unbatched.*got shape"):
        lstm(torch.randn(*shape))


def test_wrong_features(lstm):
    with pytest.raises(zoo.ZooError, match="7 features per step.*input_size=4"):
        lstm(torch.randn(3, 2, 7))


@pytest.mark.parametrize("lengths,match", [
    ([6, 2], r"lengths\[0\] = 6 is out of range.*\[1, 5\]"),
    ([5, 0], r"lengths\[1\] = 0 is out of range"),
    ([2, 5], r"not sorted in decreasing order.*enforce_sorted=False"),
    ([5, 2, 1], r"one entry per sequence \(batch 2\)"),
    ([5.0, 2.0], r"must hold integers"),
])
def test_bad_lengths(lstm, lengths, match):
    with pytest.raises(zoo.ZooError, match=match):
        lstm(torch.randn(5, 2, 4), lengths=torch.tensor(lengths))


def test_unsorted_lengths_allowed_when_asked(lstm):
    y, _ = lstm(torch.randn(5, 2, 4), lengths=[2, 5], enforce_sorted=False)
    assert torch.all(y[2:, 0] == 0) and torch.all(y[:, 1] != 0)


def test_bad_states(lstm):
    x = torch.randn(5, 2, 4)
    with pytest.raises(zoo.ZooError, match=r"h_0 has shape \(1, 2, 5\), expected \(2, 2, 5\)"):
        lstm(x, (torch.zeros(1, 2, 5), torch.zeros(2, 2, 5)))
    with pytest.raises(zoo.ZooError, match=r"c_0 has shape"):
        lstm(x, (torch.zeros(2, 2, 5), torch.zeros(2, 3, 5)))
    with pytest.raises(zoo.ZooError, match=r"LSTM takes hx = \(h_0, c_0\)"):
        lstm(x, torch.zeros(2, 2, 5))
    gru = GRU.from_config(input_size=4, hidden_size=5)
    with pytest.raises(zoo.ZooError, match="pairs are for the LSTM"):
        gru(x, (torch.zeros(1, 2, 5), torch.zeros(1, 2, 5)))


def test_bad_configs():
    with pytest.raises(zoo.ZooError, match=r"proj_size must be in \[0, hidden_size=4\), got 4"):
        zoo.create("model:lstm", hidden_size=4, proj_size=4)
    with pytest.raises(zoo.ZooError, match="unknown nonlinearity 'gelu'"):
        zoo.create("model:rnn", nonlinearity="gelu")
    with pytest.raises(zoo.ZooError, match="hidden_size must be a positive int, got 0"):
        zoo.create("model:gru", hidden_size=0)


def test_no_torch_counterpart_for_peepholes():
    m = LSTM.from_config(input_size=3, hidden_size=4, peephole=True)
    with pytest.raises(zoo.ZooError, match="no torch.nn counterpart"):
        m.to_torch()


def _lstm_step_by_formula(cell, x, h, c):
    """The peephole / layer-norm LSTM written out from its equations (Gers 2000; Ba 2016)."""
    def ln(v, weight=None, bias=None):
        v = (v - v.mean(-1, keepdim=True)) / torch.sqrt(v.var(-1, unbiased=False,
                                                               keepdim=True) + 1e-5)
        return v * (1 if weight is None else weight) + (0 if bias is None else bias)

    wx, wh = x @ cell.weight_ih.T, h @ cell.weight_hh.T
    if cell.layer_norm:
        wx, wh = ln(wx, cell.norm_ih.weight), ln(wh, cell.norm_hh.weight)
    pre = wx + cell.bias_ih + wh + cell.bias_hh
    hid = cell.hidden_size
    a_i, a_f, a_g, a_o = (pre[:, k * hid:(k + 1) * hid] for k in range(4))
    if cell.peephole:
        a_i = a_i + cell.weight_ch[0] * c
        a_f = a_f + cell.weight_ch[1] * c
    c_new = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
    if cell.peephole:
        a_o = a_o + cell.weight_ch[2] * c_new
    c_out = ln(c_new, cell.norm_c.weight, cell.norm_c.bias) if cell.layer_norm else c_new
    return torch.sigmoid(a_o) * torch.tanh(c_out), c_new


@pytest.mark.parametrize("peephole,layer_norm", [(True, False), (False, True), (True, True)])
def test_lstm_options_follow_their_equations(peephole, layer_norm):
    torch.manual_seed(0)
    model = LSTM.from_config(input_size=3, hidden_size=4, peephole=peephole,
                             layer_norm=layer_norm, bidirectional=True)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)                      # non-trivial norms and peepholes
    x, lengths = torch.randn(6, 2, 3), torch.tensor([6, 4])
    y, (h_n, c_n) = model(x, lengths=lengths)
    for d, suffix in enumerate(("_l0", "_l0_reverse")):
        cell = LSTMCell(3, 4, peephole=peephole, layer_norm=layer_norm)
        cell.load_state_dict({n: model.get_parameter(n.replace(".", "_") + suffix)
                              for n in cell.state_dict()})
        for b, n in enumerate(lengths.tolist()):
            h, c = torch.zeros(1, 4), torch.zeros(1, 4)
            steps = range(n - 1, -1, -1) if d else range(n)
            for t in steps:
                h, c = _lstm_step_by_formula(cell, x[t, b:b + 1], h, c)
                torch.testing.assert_close(y[t, b, 4 * d:4 * d + 4], h[0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(h_n[d, b], h[0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(c_n[d, b], c[0], rtol=1e-5, atol=1e-6)
        assert torch.all(y[lengths[1]:, 1] == 0)


def test_cell_zero_state_default():
    cell = LSTMCell(3, 4, proj_size=2)
    h, c = cell(torch.randn(5, 3))
    assert h.shape == (5, 2) and c.shape == (5, 4)


def _checkpoint_blocks(model):
    for block in model.grad_checkpointing_blocks():
        block.forward = functools.partial(checkpoint, block.forward, use_reentrant=False)


@pytest.mark.parametrize("name", ["model:lstm", "model:gru", "model:rnn-lm"])
def test_checkpointed_layers_give_the_same_gradients(name):
    model = zoo.create(name, preset="tiny")
    twin = zoo.create(name, preset="tiny")
    twin.load_state_dict(model.state_dict())
    _checkpoint_blocks(twin)
    inputs = model.example_inputs()
    grads = []
    for m in (model, twin):
        m.train()
        torch.manual_seed(3)
        out = m(**inputs)
        t = out[0] if isinstance(out, tuple) else out.logits
        t.pow(2).mean().backward()
        grads.append({n: p.grad for n, p in m.named_parameters()})
    for n in grads[0]:
        torch.testing.assert_close(grads[1][n], grads[0][n], rtol=1e-6, atol=1e-7)


def test_double_precision_and_relu():
    m = RNN.from_config(input_size=3, hidden_size=4, nonlinearity="relu").double()
    y, h = m(torch.randn(5, 2, 3, dtype=torch.float64))
    assert y.dtype == h.dtype == torch.float64 and bool((y >= 0).all())

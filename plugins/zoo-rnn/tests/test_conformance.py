"""torch.nn's everyday RNN code, run twice with only the import swapped: ``torch.nn`` or
``zoo_rnn``. Written from the torch.nn.LSTM / GRU / RNN documentation; every result is
compared with the torch.nn run."""

from __future__ import annotations

import copy
import io

import pytest
import torch
import zoo_rnn
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

TOL = {"rtol": 1e-6, "atol": 1e-6}
SPECS = {  # name: (class name, args, kwargs)
    "lstm": ("LSTM", (10, 20, 2), {}),
    "lstm-proj-bi": ("LSTM", (10, 20), {"num_layers": 2, "bidirectional": True,
                                        "proj_size": 7, "batch_first": True}),
    "gru-bi": ("GRU", (10, 20, 2), {"bidirectional": True}),
    "rnn-relu": ("RNN", (10, 20, 2, "relu"), {"bias": False}),
}


def everyday(nn_module, name: str) -> dict:
    """Documented usage of one recurrent layer; ``nn_module`` is ``torch.nn`` or zoo_rnn."""
    cls, args, kwargs = SPECS[name]
    torch.manual_seed(0)
    rnn = getattr(nn_module, cls)(*args, **kwargs)
    rnn.flatten_parameters()
    out: dict = {
        "attributes": {k: getattr(rnn, k) for k in (
            "input_size", "hidden_size", "num_layers", "bias", "batch_first", "dropout",
            "bidirectional", "proj_size", "mode")},
        "names": [n for n, _ in rnn.named_parameters()],
        "shapes": [tuple(p.shape) for p in rnn.parameters()],
        "all_weights": [[tuple(w.shape) for w in ws] for ws in rnn.all_weights],
        "weights": [p.detach().clone() for p in rnn.parameters()],   # same seed, same draw
        "weight_hh_l0": rnn.weight_hh_l0.detach().clone(),
        "state_keys": list(rnn.state_dict()),
    }
    if rnn.bidirectional:
        out["reverse"] = rnn.bias_ih_l1_reverse.detach().clone() if rnn.bias \
            else rnn.weight_ih_l1_reverse.detach().clone()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, 10, generator=gen) if rnn.batch_first \
        else torch.randn(5, 3, 10, generator=gen)
    x.requires_grad_()
    y, hn = rnn(x)
    out["y"], out["hn"] = y, hn
    loss = y.pow(2).sum() + sum(h.sum() for h in (hn if isinstance(hn, tuple) else (hn,)))
    loss.backward()
    out["grads"] = [p.grad.clone() for p in rnn.parameters()]
    out["x.grad"] = x.grad.clone()
    # packed batch, sorted lengths
    lengths = torch.tensor([5, 3, 2])
    packed = pack_padded_sequence(x.detach(), lengths, batch_first=rnn.batch_first)
    yp, hp = rnn(packed)
    out["packed"] = pad_packed_sequence(yp, batch_first=rnn.batch_first)[0]
    out["packed_h"] = hp
    # an optimizer step, then save and load through torch.save
    opt = torch.optim.SGD(rnn.parameters(), lr=0.1)
    opt.step()
    buf = io.BytesIO()
    torch.save(rnn.state_dict(), buf)
    buf.seek(0)
    twin = copy.deepcopy(rnn)
    twin.reset_parameters()
    twin.load_state_dict(torch.load(buf, weights_only=True))
    with torch.no_grad():
        out["after_step"] = twin(x.detach())[0]
    rnn.eval()
    with torch.no_grad():
        out["unbatched"] = rnn(x.detach()[0] if rnn.batch_first else x.detach()[:, 0])[0]
    return out


def _assert_same(a, b, where: str = "") -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, **TOL, msg=where)
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.mark.parametrize("name", list(SPECS))
def test_everyday_usage_matches_torch_nn(name):
    _assert_same(everyday(zoo_rnn, name), everyday(nn, name))


@pytest.mark.parametrize("name", list(SPECS))
def test_state_dicts_both_ways(name):
    cls, args, kwargs = SPECS[name]
    ref, ours = getattr(nn, cls)(*args, **kwargs), getattr(zoo_rnn, cls)(*args, **kwargs)
    ours.load_state_dict(ref.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(ours.parameters(), ref.parameters(),
                                                 strict=True))
    back = getattr(nn, cls)(*args, **kwargs)
    back.load_state_dict(ours.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(back.parameters(), ref.parameters(),
                                                 strict=True))


def test_in_a_model_parameter_names_are_torch_nn_ones():
    """A model holding the layer names its parameters as with torch.nn (optimizer groups,
    weight decay rules by name)."""
    def build(mod):
        return nn.Sequential(nn.Embedding(50, 10), mod.LSTM(10, 20))

    names = [n for n, _ in build(nn).named_parameters()]
    assert [n for n, _ in build(zoo_rnn).named_parameters()] == names
    assert "1.weight_hh_l0" in names


def test_setting_batch_first_and_dropout():
    ours, ref = zoo_rnn.GRU(4, 5, 2), nn.GRU(4, 5, 2)
    ours.load_state_dict(ref.state_dict())
    for m in (ours, ref):
        m.batch_first, m.dropout = True, 0.25
    x = torch.randn(2, 6, 4)
    torch.testing.assert_close(ours.eval()(x)[0], ref.eval()(x)[0], **TOL)
    assert ours.dropout == ref.dropout == 0.25

"""The Transformer's cached decode: step logits equal the full-prefix decode, and greedy and
beam search give the same ids with and without the key/value cache."""

from __future__ import annotations

import pytest
import torch
from zoo_transformer.layers.kv_cache import KVCache

import zoo_core as zoo


@pytest.fixture(params=[False, True], ids=["post-norm", "pre-norm"])
def model(request):
    torch.manual_seed(0)
    return zoo.create("model:transformer", preset="tiny", norm_first=request.param,
                      dropout=0.0).eval()


def _src(model, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(3, model.config.src_vocab_size, (4, 9), generator=g)
    src[1, 6:] = model.config.pad_id
    src[3, 3:] = model.config.pad_id
    return src


def test_step_logits_equal_the_full_decode(model):
    c = model.config
    src = _src(model)
    tgt = torch.randint(3, c.tgt_vocab_size, (4, 8), generator=torch.Generator().manual_seed(1))
    tgt[:, 0] = c.bos_id
    tgt[2, 5:] = c.pad_id  # padding inside the prefix is hidden from later steps too
    with torch.no_grad():
        memory, mask = model.encode(src)
        want = model.decode(tgt, memory, mask)
        state = model.start_decoding(memory, mask, tgt.shape[1])
        got = torch.cat([model.decode_step(tgt[:, :3], state)]  # a prompt of 3, then 1 by 1
                        + [model.decode_step(tgt[:, t:t + 1], state) for t in range(3, 8)], 1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("beam_size", [1, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cached_search_equals_uncached(model, beam_size, seed):
    src = _src(model, seed)
    with torch.no_grad():
        want = model.generate(src, max_new_tokens=20, beam_size=beam_size, use_cache=False)
        got = model.generate(src, max_new_tokens=20, beam_size=beam_size)
    assert torch.equal(got, want)


def test_cache_refuses_to_overflow_and_reorders_rows():
    cache = KVCache(num_layers=1, max_len=3)
    k = torch.arange(2 * 3, dtype=torch.float).view(2, 1, 3, 1)
    keys, _ = cache.update(0, k, k)
    cache.advance(3)
    assert torch.equal(keys, k)
    cache.reorder(torch.tensor([1, 1]))
    assert torch.equal(cache.keys[0][:, :, :3], k[[1, 1]])
    with pytest.raises(zoo.InputError, match="holds 3 positions, step would reach 4"):
        cache.update(0, k[:, :, :1], k[:, :, :1])

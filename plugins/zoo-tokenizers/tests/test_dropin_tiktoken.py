"""Drop-in conformance with tiktoken: the everyday usage of ``tiktoken.Encoding`` from its
README and docstrings, run once on tiktoken's own encoding (``tiktoken.get_encoding`` built from
the packaged rank files, see ``conftest.tiktoken_peers``) and once on ``zoo.load(name)`` with
only that line swapped; results must be equal, on both of zoo's engines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import zoo_core as zoo

TEXTS = ["hello world", "tiktoken is great! <|endoftext|> is special", "",
         "我们的模型 and emoji 🦜🦚, naïve café", "def f(x):\n    return x  # ok\n"]
EOT = "<|endoftext|>"

USAGES: dict[str, Callable[[Any], Any]] = {
    "encode": lambda e: e.encode(TEXTS[0]),
    "round trip": lambda e: [e.decode(e.encode(t, disallowed_special=())) for t in TEXTS],
    "allowed_special all": lambda e: e.encode(TEXTS[1], allowed_special="all"),
    "allowed_special set": lambda e: e.encode(TEXTS[1], allowed_special={EOT}),
    "disallowed_special ()": lambda e: e.encode(TEXTS[1], disallowed_special=()),
    "disallowed_special set, special elsewhere": lambda e: e.encode(
        TEXTS[0], disallowed_special={EOT}),
    "encode_ordinary": lambda e: e.encode_ordinary(TEXTS[1]),
    "encode_batch": lambda e: e.encode_batch(TEXTS[:1] + TEXTS[2:]),
    "encode_batch allowed_special": lambda e: e.encode_batch(TEXTS, allowed_special="all",
                                                             num_threads=2),
    "encode_batch disallowed ()": lambda e: e.encode_batch(TEXTS, disallowed_special=()),
    "encode_ordinary_batch": lambda e: e.encode_ordinary_batch(TEXTS, num_threads=2),
    "encode_single_token": lambda e: (e.encode_single_token("hello"),
                                      e.encode_single_token(b" world"),
                                      e.encode_single_token(EOT)),
    "encode_to_numpy": lambda e: e.encode_to_numpy(TEXTS[3]).tolist(),
    "encode_to_numpy dtype": lambda e: str(e.encode_to_numpy(TEXTS[3]).dtype),
    "decode": lambda e: e.decode(e.encode(TEXTS[3])),
    "decode a cut character": lambda e: e.decode(e.encode("🦜")[:1]),
    "decode_batch": lambda e: e.decode_batch([e.encode(t, allowed_special="all")
                                              for t in TEXTS]),
    "decode_bytes": lambda e: e.decode_bytes(e.encode(TEXTS[3])),
    "decode_bytes_batch": lambda e: e.decode_bytes_batch([e.encode(t) for t in TEXTS[2:]]),
    "decode_single_token_bytes": lambda e: [e.decode_single_token_bytes(i)
                                            for i in e.encode(TEXTS[3])],
    "decode_tokens_bytes": lambda e: e.decode_tokens_bytes(e.encode(TEXTS[3])),
    "decode_with_offsets": lambda e: e.decode_with_offsets(e.encode(TEXTS[3])),
    "n_vocab, max_token_value, eot_token": lambda e: (e.n_vocab, e.max_token_value,
                                                      e.eot_token),
    "special_tokens_set": lambda e: e.special_tokens_set,
    "is_special_token": lambda e: (e.is_special_token(e.eot_token),
                                   e.is_special_token(e.encode("hello")[0])),
    "name": lambda e: e.name,
    "token_byte_values": lambda e: e.token_byte_values()[:300:7],
}


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base", "gpt2"])
def test_everyday_usage_gives_the_peers_results(tiktoken_peers, name):
    peer, ours = tiktoken_peers[name], zoo.load(name)
    for backend in ("python", "tiktoken"):
        ours.use_backend(backend)
        for usage, run in USAGES.items():
            assert run(ours) == run(peer), (backend, usage)


def test_refusals_are_the_peers_exceptions(tiktoken_peers):
    peer, ours = tiktoken_peers["cl100k_base"], zoo.load("cl100k_base")
    refusals = {  # what tiktoken raises -> zoo raises an InputError that is also that type
        ValueError: [lambda e: e.encode(TEXTS[1]),  # a special token not allowed
                     lambda e: e.encode(TEXTS[1], allowed_special=set(),
                                        disallowed_special={EOT}),
                     lambda e: e.encode_batch(TEXTS),
                     lambda e: e.encode_to_numpy(TEXTS[1])],
        KeyError: [lambda e: e.encode_single_token("hello world"),
                   lambda e: e.decode_single_token_bytes(e.n_vocab + 10)],
    }
    for kind, calls in refusals.items():
        for call in calls:
            with pytest.raises(kind):
                call(peer)
            with pytest.raises(kind) as err:
                call(ours)
            assert isinstance(err.value, zoo.InputError)
    with pytest.raises(zoo.InputError, match=repr(EOT)):
        ours.encode(TEXTS[1])


def test_encode_to_numpy_is_uint32():
    got = zoo.load("cl100k_base").encode_to_numpy("hello world")
    assert isinstance(got, np.ndarray) and got.dtype == np.uint32

"""Drop-in conformance with sentencepiece: the everyday usage of ``SentencePieceProcessor``
from its README, run once on ``spm.SentencePieceProcessor(model_file=path)`` and once on zoo
with only that line swapped (``SentencePiece(model_file=path)``, ``SentencePiece.from_file``,
``zoo.load(entry)``); results must be equal. Models: mistral-common's packaged ``.model``s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sentencepiece as spm
from zoo_tokenizers.sentencepiece import SentencePiece

import zoo_core as zoo

MODELS = {"mistral-7b-v0.1-tokenizer": "tokenizer.model.v1",
          "mistral-instruct-v2-tokenizer": "mistral_instruct_tokenizer_240216.model.v2",
          "mistral-instruct-v3-tokenizer": "mistral_instruct_tokenizer_240323.model.v3",
          "mistral-instruct-v7-tokenizer": "mistral_instruct_tokenizer_241114.model.v7"}
TEXTS = ["Hello world", "I saw a girl with a telescope.", "  two  spaces ",
         "emoji 🦜 and 𝄞, ＡＢＣ", ""]

USAGES: dict[str, Callable[[Any], Any]] = {
    "encode a text": lambda sp: sp.encode(TEXTS[1]),
    "encode a list": lambda sp: sp.encode(TEXTS),
    "pieces": lambda sp: sp.encode(TEXTS[1], out_type=str),
    "pieces of a list, bos and eos": lambda sp: sp.encode(TEXTS, out_type=str, add_bos=True,
                                                          add_eos=True),
    "ids with bos": lambda sp: sp.encode(TEXTS, out_type=int, add_bos=True),
    "EncodeAsPieces": lambda sp: sp.EncodeAsPieces(TEXTS[3]),
    "EncodeAsIds": lambda sp: sp.EncodeAsIds(TEXTS[3]),
    "encode_as_pieces": lambda sp: sp.encode_as_pieces(TEXTS[2]),
    "decode ids": lambda sp: sp.decode(sp.encode(TEXTS[3])),
    "decode one id": lambda sp: sp.decode(sp.encode("Hello")[0]),
    "decode pieces": lambda sp: sp.decode(sp.encode(TEXTS[3], out_type=str)),
    "decode a list of ids": lambda sp: sp.decode(sp.encode(TEXTS)),
    "decode a list of pieces": lambda sp: sp.decode(sp.encode(TEXTS, out_type=str)),
    "decode with controls": lambda sp: sp.decode(sp.encode(TEXTS[0], add_bos=True,
                                                           add_eos=True)),
    "decode pieces outside the vocabulary": lambda sp: sp.decode(["▁Hello", "zzqqxx"]),
    "DecodeIds / DecodePieces": lambda sp: (sp.DecodeIds([22557, 1526]),
                                            sp.DecodePieces(["▁Hello", "▁world"])),
    "special ids": lambda sp: (sp.bos_id(), sp.eos_id(), sp.pad_id(), sp.unk_id()),
    "sizes": lambda sp: (sp.get_piece_size(), sp.vocab_size(), len(sp), sp.GetPieceSize()),
    "id_to_piece": lambda sp: (sp.id_to_piece(22557), sp.id_to_piece([1, 2, 300]),
                               sp.IdToPiece(5)),
    "piece_to_id": lambda sp: (sp.piece_to_id("▁Hello"), sp.piece_to_id(["<s>", "nope", "▁"]),
                               sp.PieceToId("<0xF0>")),
    "piece types": lambda sp: [(sp.is_control(i), sp.is_unknown(i), sp.is_byte(i),
                                sp.is_unused(i)) for i in (0, 1, 2, 3, 300)],
    "scores": lambda sp: [sp.get_score(i) for i in (0, 1, 300, 5000)],
}


def _ours(how: str, entry: str, path: Any) -> Any:
    if how == "SentencePiece(model_file=)":
        return SentencePiece(model_file=path)
    if how == "SentencePiece.from_file":
        return SentencePiece.from_file(path)
    return zoo.load(entry)


@pytest.mark.parametrize("how", ["SentencePiece(model_file=)", "SentencePiece.from_file",
                                 "zoo.load"])
@pytest.mark.parametrize("entry", list(MODELS))
def test_everyday_usage_gives_the_peers_results(pkgdir, entry, how):
    path = pkgdir("mistral_common") / "data" / MODELS[entry]
    peer = spm.SentencePieceProcessor(model_file=str(path))
    ours = _ours(how, entry, path)
    for backend in ("python", "sentencepiece"):
        ours.use_backend(backend)
        for usage, run in USAGES.items():
            assert run(ours) == run(peer), (backend, usage)


def test_refusals_are_value_errors_as_the_peers(pkgdir):
    path = pkgdir("mistral_common") / "data" / MODELS["mistral-7b-v0.1-tokenizer"]
    peer, ours = spm.SentencePieceProcessor(model_file=str(path)), SentencePiece.from_file(path)
    for bad in (lambda sp: sp.encode("x", out_type=float), lambda sp: sp.decode([32000]),
                lambda sp: sp.id_to_piece(-1)):
        with pytest.raises((ValueError, IndexError)):
            bad(peer)
        with pytest.raises(zoo.InputError):
            bad(ours)
    with pytest.raises(zoo.InputError, match="bytes"):
        ours.encode(["a list", b"with bytes"])

"""word2vec C formats both ways with gensim, and our safetensors layout through zoo-core."""

import pytest
import torch
from gensim.models import KeyedVectors as GensimKV
from zoo_word2vec import KeyedVectors

import zoo_core as zoo


@pytest.mark.parametrize("binary", [True, False])
def test_gensim_writes_we_read(gensim_head500, tmp_path, binary):
    path = tmp_path / "g.w2v"
    gensim_head500.wv.save_word2vec_format(str(path), binary=binary)
    kv = KeyedVectors.load_word2vec_format(path, binary=binary)
    assert kv.index_to_key == gensim_head500.wv.index_to_key
    assert torch.equal(kv.tensor, torch.from_numpy(gensim_head500.wv.vectors))


@pytest.mark.parametrize("binary", [True, False])
def test_we_write_gensim_reads(tmp_path, binary):
    words = ["the", "über", "naïve", "東京", "x"]
    vectors = torch.randn(5, 7) * torch.logspace(-8, 8, 7)
    path = tmp_path / "z.w2v"
    KeyedVectors(words, vectors).save_word2vec_format(path, binary=binary)
    ref = GensimKV.load_word2vec_format(str(path), binary=binary)
    assert ref.index_to_key == words
    assert torch.equal(torch.from_numpy(ref.vectors), vectors)
    again = KeyedVectors.load_word2vec_format(path, binary=binary)  # and back
    assert torch.equal(again.tensor, vectors)


def test_limit_and_bad_files(tmp_path):
    path = tmp_path / "v.txt"
    KeyedVectors(["a", "b", "c"], torch.randn(3, 4)).save_word2vec_format(path)
    assert len(KeyedVectors.load_word2vec_format(path, limit=2)) == 2
    lines = path.read_text().splitlines()
    (tmp_path / "wrong.txt").write_text("\n".join(["3 5"] + lines[1:]) + "\n")
    with pytest.raises(zoo.ZooError, match="has 4 values, the header says 5"):
        KeyedVectors.load_word2vec_format(tmp_path / "wrong.txt")
    (tmp_path / "cut.bin").write_bytes(b"3 4\na " + b"\0" * 16 + b"\nb " + b"\0" * 3)
    with pytest.raises(zoo.ZooError, match="truncated"):
        KeyedVectors.load_word2vec_format(tmp_path / "cut.bin", binary=True)
    (tmp_path / "nohead.txt").write_text("a 1 2\n")
    with pytest.raises(zoo.ZooError, match="header"):
        KeyedVectors.load_word2vec_format(tmp_path / "nohead.txt")
    with pytest.raises(zoo.ZooError, match="whitespace"):
        KeyedVectors(["a b"], torch.randn(1, 2)).save_word2vec_format(tmp_path / "x.txt")


def test_save_pretrained_and_zoo_load(lee, tmp_path):
    model = zoo.create("model:word2vec", vector_size=16, min_count=3, epochs=1, sg=1, hs=1,
                       workers=1)
    model.train(lee[:80], progress=False)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    again = zoo.load(f"dir:{tmp_path}")
    assert again.wv.index_to_key == model.wv.index_to_key
    assert again.wv.counts == model.wv.counts
    for name in ("vectors", "syn1neg", "syn1"):
        assert torch.equal(getattr(again, name), getattr(model, name))
    assert again.wv.most_similar("said", topn=3) == model.wv.most_similar("said", topn=3)
    # training can continue from the loaded model (Huffman tree rebuilt from the counts)
    again.train(lee[:10], progress=False, epochs=1)


def test_load_into_other_vector_size_fails(lee, tmp_path):
    model = zoo.create("model:word2vec", vector_size=8, min_count=3).build_vocab(lee)
    model.save_pretrained(tmp_path)
    cfg = (tmp_path / "config.json").read_text().replace('"vector_size": 8', '"vector_size": 9')
    (tmp_path / "config.json").write_text(cfg)
    with pytest.raises(zoo.WeightsError, match="shape"):
        zoo.load(f"dir:{tmp_path}")


def test_written_files_follow_the_umask(tmp_path):
    """Vector files are shareable (mode 0o666 & ~umask), not the temp file's 0o600."""
    import os

    from zoo_word2vec import save_word2vec_format

    old = os.umask(0o022)
    try:
        save_word2vec_format(tmp_path / "v.txt", ["a", "b"], torch.zeros(2, 3))
    finally:
        os.umask(old)
    assert (tmp_path / "v.txt").stat().st_mode & 0o777 == 0o644

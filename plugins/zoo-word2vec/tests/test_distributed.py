"""Two gloo processes: sharded training, periodic averaging, identical vectors at the end."""

import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    from gensim.test.utils import datapath

    import zoo_core as zoo

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        with open(datapath("lee_background.cor"), encoding="utf-8") as f:
            lee = [line.lower().split() for line in f][:150]
        model = zoo.create("model:word2vec", vector_size=16, min_count=3, sg=1, epochs=2,
                           workers=1, seed=rank + 1)  # different seeds: rank 0's init wins
        report = model.train(lee, progress=False)
        torch.save({"vectors": model.vectors.detach().clone(),
                    "syn1neg": model.syn1neg.detach().clone(),
                    "words": model.wv.index_to_key, "raw": report.raw_words,
                    "losses": report.epoch_losses}, f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_end_identical(tmp_path, lee):
    port = _free_port()
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert r0["words"] == r1["words"]
    assert torch.equal(r0["vectors"], r1["vectors"]) and torch.equal(r0["syn1neg"], r1["syn1neg"])
    # each rank read its own half of the sentences, so together they covered the corpus
    assert r0["raw"] + r1["raw"] == 2 * sum(map(len, lee[:150]))
    assert 0 < r0["raw"] < 2 * sum(map(len, lee[:150]))
    assert r0["losses"][-1] < r0["losses"][0] and r1["losses"][-1] < r1["losses"][0]
    assert float(r0["vectors"].norm(dim=1).mean()) > 0.05  # it trained

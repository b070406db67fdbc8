"""One torch thread for these small shapes: on a shared 2-core machine, OpenMP barriers of
tiny ops cost more than the work."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

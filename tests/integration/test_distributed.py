"""DTensor: with the batch axis sharded on both inputs, dot / batch_dot / Dot return a
DTensor sharded the same way, equal to the single-process result, with no
communication. Two CPU processes in a gloo group on 127.0.0.1, started here."""
from __future__ import annotations

import os
import socket
import time

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = [
    pytest.mark.slow,  # subprocesses: seconds each
    pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="this torch build has no gloo backend"),
    pytest.mark.skipif(not os.path.exists("/sys/class/net/lo"), reason="needs the loopback interface 'lo'"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_batch_sharded_inputs_give_a_batch_sharded_result_without_communication():
    from dist_worker import worker

    context = mp.start_processes(worker, args=(2, free_port()), nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + 240
    while not context.join(timeout=5):  # a worker's error is raised here, with its traceback
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("the two gloo workers did not finish within 240 s")

"""Run by tests/test_distributed.py in each of two processes of a gloo group."""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.distributed as dist

import axisdot
from axisdot.testing.reference import reference_batch_dot, reference_dot

CASES = [
    ("dot", (8, 3, 5), (8, 5, 4), (2, 1), False),
    ("dot", (8, 3, 5), (8, 4, 5), -1, True),
    ("dot", (8, 5), (8, 5), 1, False),
    ("dot", (8, 3, 4, 5), (8, 5, 2, 3), (3, 1), False),
    ("dot", (8, 3, 5), (8, 5, 3), ((1, 2), (2, 1)), "tf_keras"),
    ("batch_dot", (8, 3, 5), (8, 5, 4), None, False),
    ("Dot", (6, 3, 5), (6, 4, 5), (2, 2), True),
]


def worker(rank: int, world: int, port: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor
    from torch.distributed.tensor.debug import CommDebugMode

    # loopback only, for the store and for gloo's own connections (no hostname lookup)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        mesh = init_device_mesh("cpu", (world,))
        gen = torch.Generator().manual_seed(0)  # the same inputs on every rank
        for front, xs, ys, axes, norm in CASES:
            x, y = torch.randn(xs, generator=gen, dtype=torch.float64), torch.randn(ys, generator=gen, dtype=torch.float64)
            dx, dy = distribute_tensor(x, mesh, [Shard(0)]), distribute_tensor(y, mesh, [Shard(0)])
            if front == "dot":
                fn = lambda a, b: axisdot.dot(a, b, axes, normalize=norm)  # noqa: E731
                expected = reference_dot(x, y, axes, normalize=norm) if norm in (False, True) else axisdot.dot(x, y, axes, normalize=norm).numpy()
            elif front == "batch_dot":
                fn = lambda a, b: axisdot.batch_dot(a, b, axes)  # noqa: E731
                expected = reference_batch_dot(x, y, axes)
            else:
                fn = axisdot.Dot(axes=axes, normalize=norm)
                expected = reference_dot(x, y, axes, normalize=norm)
            with CommDebugMode() as comm:
                out = fn(dx, dy)
            case = f"{front} {xs} {ys} axes={axes!r} normalize={norm!r}"
            assert type(out).__name__ == "DTensor", case
            assert out.placements == (Shard(0),), (case, out.placements)
            assert comm.get_total_counts() == 0, (case, comm.get_comm_counts())  # no all-gather, nothing
            np.testing.assert_allclose(out.full_tensor().numpy(), expected, atol=1e-12, err_msg=case)
        dist.barrier()  # every rank is done with gloo before any leaves
    except BaseException:
        dist.destroy_process_group()
        raise
    # Leave without gloo's teardown: it aborted a worker now and then on the loaded test
    # machine (a pair's destructor seeing its peer gone first; twice in ~10 full-suite runs,
    # after every check had passed), and before torch 2.8 it could deadlock on the GIL
    # (pytorch#154976). The operating system closes the sockets.
    os._exit(0)

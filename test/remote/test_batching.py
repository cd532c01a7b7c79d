"""Several clients on one `vla-ros serve`: requests batched into one forward pass, answers routed back."""

from __future__ import annotations

import threading

import numpy as np
from remote_helpers import sim_observation

from vla_ros.core.types import Observation
from vla_ros.remote.client import LinkSettings, PolicyLink
from vla_ros.remote.schema import make_request


def test_concurrent_clients_are_batched_and_each_gets_its_own_chunk(serve, tiny_checkpoint):
    server = serve("octo", tiny_checkpoint, "--max-batch", "4", "--batch-wait-ms", "300")
    links = [PolicyLink(LinkSettings(server.url, timeout_s=30.0)) for _ in range(4)]
    metadata = [link.connect() for link in links][0]
    assert metadata["batching"] == "batched" and metadata["max_batch"] == 4
    base = sim_observation(0)
    # robot k stands at 0.3 k rad on every joint; the tiny model's deltas are ~0.01 rad
    requests = [
        make_request(Observation(0.0, base.images, base.joint_names, np.full(7, 0.3 * k), base.instruction))
        for k in range(4)
    ]
    answers: list = [None] * 4
    barrier = threading.Barrier(4)

    def client(k: int) -> None:
        barrier.wait(timeout=10)
        answers[k] = links[k].infer(requests[k])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(a is not None for a in answers)
    sizes = [a[0]["server_timing"]["batch_size"] for a in answers]
    assert max(sizes) >= 2, f"no batch formed: {sizes}"
    for k, (response, _timing) in enumerate(answers):
        arm = response["actions"][:, :6]  # delta joints: near the robot's own state
        assert np.all(np.abs(arm - 0.3 * k) < 0.1), f"client {k} got another robot's chunk: {arm[0]}"


def test_unbatched_server_says_sequential_and_serves_clients_in_turn(serve, tiny_checkpoint):
    server = serve("octo", tiny_checkpoint)  # --max-batch 1
    links = [PolicyLink(LinkSettings(server.url, timeout_s=30.0)) for _ in range(2)]
    assert links[0].connect()["max_batch"] == 1
    links[1].connect()
    for k, link in enumerate(links):
        response, timing = link.infer(make_request(sim_observation(k)))
        assert response["server_timing"]["batch_size"] == 1 and timing.round_trip_s > 0

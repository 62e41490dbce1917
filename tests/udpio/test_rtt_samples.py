""":mod:`udpio.rtt_samples` on two real aioquic connections wired in memory
with 10 ms each way, on a virtual clock: the server holds a lone packet's ACK
20 ms (:mod:`udpio.ack_delay`), and the client's file scavenger, told that
delay, measures the path's 20 ms round trip instead of 40."""

from __future__ import annotations

import pytest

from codec.media.cc.scavenger import ScavengerCongestionControl
from udpio import ack_delay, rtt_samples

from .test_ack_delay import connected


@pytest.mark.parametrize("told", [True, False])
def test_the_scavenger_takes_the_peers_ack_delay_out(tmp_path, told):
    link = connected(tmp_path, delayed=False)
    client, server = link.client, link.server
    assert ack_delay.install(server) is not None
    scavenger = ScavengerCongestionControl(max_datagram_size=client._max_datagram_size)
    client._loss._cc = scavenger
    if told:
        assert rtt_samples.install(client) is client._loss
        assert rtt_samples.install(client) is client._loss  # idempotent
    stream = client.get_next_available_stream_id()
    start = link.now
    for i in range(10):  # a lone packet every 100 ms: each ACK held 20 ms
        client.send_stream_data(stream, b"%d" % i)
        link.run_until(start + 0.1 * (i + 1))
    assert client._loss.bytes_in_flight == 0
    if told:
        assert scavenger.peer_ack_delay == pytest.approx(ack_delay.ACK_DELAY, abs=1e-3)
        assert scavenger.base_rtt == pytest.approx(0.020, abs=1e-3)
    else:
        assert scavenger.peer_ack_delay == 0.0
        assert scavenger.base_rtt == pytest.approx(0.040, abs=1e-3)
    # aioquic's own smoothed RTT takes the delay out either way
    assert client._loss._rtt_smoothed < 0.025


def test_install_leaves_what_it_cannot_read_alone(tmp_path):
    assert rtt_samples.install(object()) is None  # type: ignore[arg-type]
    link = connected(tmp_path, delayed=False)
    loss = link.client._loss
    assert rtt_samples.install(link.client) is loss
    assert type(loss).__name__ == "QuicPacketRecovery"  # the class keeps its name
    assert isinstance(loss, rtt_samples.ReportsAckDelay)

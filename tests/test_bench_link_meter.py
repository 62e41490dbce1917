"""``bench/adaptation.py`` measures utilisation from the relay's own counters
(``_common.LinkMeter``), alike for any system: through a real
``quicmeet-netsim`` held to 1 Mbit/s and offered twice that, the meter reads
the link's rate, not what was offered."""

from __future__ import annotations

import socket
import time

import pytest


@pytest.fixture
def common(bench):
    return bench("_common")  # bench/_common.py


def test_the_link_meter_reads_what_the_bottleneck_let_through(common):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    upstream = "{}:{}".format(*sink.getsockname())
    relay = common.start_netsim(
        upstream, ["--rate", "1mbit", "--queue", "50ms"], seed=1, stats_every_s=0.2
    )
    meter = common.LinkMeter(relay)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = bytes(1000)
    started = time.monotonic()
    try:
        sent = 0
        while (elapsed := time.monotonic() - started) < 3.0:
            # Offer 2 Mbit/s: a datagram of 8,000 bits every 4 ms.
            while sent * 0.004 < elapsed:
                sender.sendto(payload, (relay.host, relay.port))
                sent += 1
            try:
                while sink.recv(2048):
                    pass
            except BlockingIOError:
                pass
            time.sleep(0.002)
    finally:
        relay.stop()
        meter.join()
        sender.close()
        sink.close()
    carried = meter.up_bps(0.5, 3.0)
    assert carried is not None
    assert 0.85e6 <= carried <= 1.05e6  # the link's rate, not the 2 offered
    assert meter.up_bps(10.0, 20.0) is None  # no samples there

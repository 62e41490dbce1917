"""ImpairmentProxy on real loopback sockets, with a UDP echo server behind it.

Packet counts are modest and tolerances wide enough for a loaded machine: these
tests check that the proxy applies the model on a real clock; the model's own
accuracy is checked exactly in test_netsim_validation.
"""

from __future__ import annotations

import asyncio
import statistics
import struct
from typing import cast

import pytest

from netsim import GilbertElliott, ImpairmentProxy, LinkConfig, ParameterError

HEADER = struct.Struct("!Id")  # sequence, send time (loop.time())


class Client(asyncio.DatagramProtocol):
    """Sends numbered, timestamped datagrams and records the echoes."""

    def __init__(self) -> None:
        self.echoes: list[tuple[int, float, float]] = []  # sequence, sent, received
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: object) -> None:
        sequence, sent = HEADER.unpack_from(data)
        self.echoes.append((sequence, sent, asyncio.get_running_loop().time()))

    def send(self, sequence: int, size: int = 64) -> None:
        assert self.transport is not None
        now = asyncio.get_running_loop().time()
        self.transport.sendto(HEADER.pack(sequence, now) + bytes(size - HEADER.size))

    def round_trips_s(self) -> list[float]:
        return [received - sent for _, sent, received in self.echoes]


async def connect(proxy: ImpairmentProxy) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_datagram_endpoint(
        Client, remote_addr=proxy.listen_address
    )
    return client


async def send_paced(
    client: Client, count: int, spacing_s: float, start: int = 0
) -> None:
    for sequence in range(start, start + count):
        client.send(sequence)
        await asyncio.sleep(spacing_s)


async def settle(client: Client, expected: int, timeout_s: float = 2.0) -> None:
    """Wait until ``expected`` echoes came back or the timeout passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(client.echoes) < expected and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def test_listen_port_zero_and_plain_relay(echo_server: tuple[str, int]) -> None:
    async with ImpairmentProxy(upstream=echo_server) as proxy:
        assert proxy.listen_address[1] != 0
        client = await connect(proxy)
        await send_paced(client, 20, 0.001)
        await settle(client, 20)
        assert sorted(sequence for sequence, _, _ in client.echoes) == list(range(20))
        stats = proxy.stats
        assert stats.clients == 1
        assert stats.up.packets_out == stats.down.packets_in == 20


async def test_delay_matches_configuration(echo_server: tuple[str, int]) -> None:
    link = LinkConfig(delay_s=0.025)
    async with ImpairmentProxy(upstream=echo_server, up=link, down=link) as proxy:
        client = await connect(proxy)
        await send_paced(client, 100, 0.003)
        await settle(client, 100)
        round_trips = client.round_trips_s()
        assert len(round_trips) == 100
        assert min(round_trips) >= 0.050
        assert statistics.median(round_trips) == pytest.approx(0.050, abs=0.010)


async def test_loss_rate_matches_configuration(echo_server: tuple[str, int]) -> None:
    async with ImpairmentProxy(
        upstream=echo_server, up=LinkConfig(loss=0.2), seed=3
    ) as proxy:
        client = await connect(proxy)
        await send_paced(client, 1000, 0.0005)
        await settle(client, 1000 - proxy.up_link.stats.dropped_loss)
        up = proxy.stats.up
        assert up.packets_in == 1000
        assert len(client.echoes) == 1000 - up.dropped_loss
        # Binomial(1000, 0.2): standard deviation 12.6 packets.
        assert up.dropped_loss == pytest.approx(200, abs=50)


async def test_rate_limit_spaces_packets(echo_server: tuple[str, int]) -> None:
    # 100 packets of 1000 bytes at once through 2 Mbit/s: 4 ms apart.
    up = LinkConfig(rate_bps=2e6)
    async with ImpairmentProxy(upstream=echo_server, up=up) as proxy:
        client = await connect(proxy)
        for sequence in range(100):
            client.send(sequence, size=1000)
        await settle(client, 100)
        arrivals = sorted(received for _, _, received in client.echoes)
        assert len(arrivals) == 100
        rate_bps = 99 * 1000 * 8 / (arrivals[-1] - arrivals[0])
        assert rate_bps == pytest.approx(2e6, rel=0.05)
        assert proxy.stats.up.max_queued_packets > 50


async def test_parameters_change_while_running(echo_server: tuple[str, int]) -> None:
    link = LinkConfig(delay_s=0.01)
    async with ImpairmentProxy(upstream=echo_server, up=link, down=link) as proxy:
        client = await connect(proxy)
        await send_paced(client, 20, 0.005)
        await settle(client, 20)
        proxy.update(delay_s=0.06)
        await send_paced(client, 20, 0.005, start=20)
        await settle(client, 40)
        round_trips = {sequence: r - s for sequence, s, r in client.echoes}
        assert statistics.median(round_trips[s] for s in range(20)) == pytest.approx(
            0.02, abs=0.01
        )
        assert statistics.median(
            round_trips[s] for s in range(20, 40)
        ) == pytest.approx(0.12, abs=0.01)
        proxy.update(direction="up", loss=1.0)
        assert proxy.up_link.config.loss == 1.0
        assert proxy.down_link.config.loss == 0.0


async def test_bad_update_changes_nothing(echo_server: tuple[str, int]) -> None:
    async with ImpairmentProxy(upstream=echo_server) as proxy:
        with pytest.raises(ParameterError, match="loss"):
            proxy.update(loss=1.5)
        with pytest.raises(ParameterError, match="direction"):
            proxy.update(direction="sideways", loss=0.1)  # type: ignore[arg-type]
        assert proxy.up_link.config == proxy.down_link.config == LinkConfig()


async def test_each_client_gets_its_own_replies(echo_server: tuple[str, int]) -> None:
    link = LinkConfig(delay_s=0.005)
    async with ImpairmentProxy(upstream=echo_server, up=link, down=link) as proxy:
        first, second = await connect(proxy), await connect(proxy)
        for sequence in range(30):
            first.send(sequence)
            second.send(1000 + sequence)
            await asyncio.sleep(0.001)
        await settle(first, 30)
        await settle(second, 30)
        assert sorted(s for s, _, _ in first.echoes) == list(range(30))
        assert sorted(s for s, _, _ in second.echoes) == list(range(1000, 1030))
        assert proxy.stats.clients == 2


async def test_bursty_loss_duplicates_and_reordering(
    echo_server: tuple[str, int],
) -> None:
    up = LinkConfig(
        delay_s=0.02,
        gilbert_elliott=GilbertElliott(p=0.05, r=0.25),
        duplicate=0.1,
        reorder=0.1,
    )
    async with ImpairmentProxy(upstream=echo_server, up=up, seed=2) as proxy:
        client = await connect(proxy)
        await send_paced(client, 800, 0.001)
        stats = proxy.up_link.stats
        await settle(client, 800 + stats.duplicated - stats.dropped_loss)
        stats = proxy.stats.up
        sequences = [sequence for sequence, _, _ in client.echoes]
        # What the client sees is exactly what the link let through (a duplicated
        # packet can lose one copy, so the copies the client sees twice and the
        # packets it never sees are bounded by the link's counts).
        assert len(sequences) == 800 + stats.duplicated - stats.dropped_loss
        assert len(sequences) - len(set(sequences)) <= stats.duplicated
        lost = sorted(set(range(800)) - set(sequences))
        assert len(lost) <= stats.dropped_loss
        # ... and it matches the configuration, within sampling error.
        assert stats.duplicated / 800 == pytest.approx(0.1, abs=0.04)
        assert stats.reordered / 800 == pytest.approx(0.1, abs=0.04)
        bursts = 1 + sum(1 for a, b in zip(lost, lost[1:], strict=False) if b != a + 1)
        assert len(lost) / bursts == pytest.approx(1 / 0.25, rel=0.35)


async def test_queue_limit_drops_the_tail(echo_server: tuple[str, int]) -> None:
    up = LinkConfig(rate_bps=1e6, queue_packets=10)
    async with ImpairmentProxy(upstream=echo_server, up=up) as proxy:
        client = await connect(proxy)
        for sequence in range(50):
            client.send(sequence, size=1000)
        await settle(client, 11)
        await asyncio.sleep(0.05)
        # One packet on the wire and ten waiting; the other 39 were dropped.
        assert sorted(s for s, _, _ in client.echoes) == list(range(11))
        assert proxy.stats.up.dropped_queue == 39
        assert proxy.stats.up.max_queued_packets == 10

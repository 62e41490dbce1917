"""The cost of sending DATAGRAM frames on one aioquic connection, aioquic's
own ``datagrams_to_send`` against :mod:`server.quic_fastpath`'s short path,
side by side in one process on a virtual clock (two connections wired in
memory; the client acknowledges every fourth round). Prints JSON: µs of CPU
per ``datagrams_to_send`` call with 1 and 3 datagrams of 1,150 bytes queued,
best of three runs; and the same for the ACK that answers a keepalive PING
(the server's connection trimmed and acknowledging as the server's are),
with the receipt of the PING beside it (``ack_us_per_ping``; aioquic's
``receive_datagram`` against :mod:`udpio.short_receive`'s); the client's keepalive PING,
aioquic's ``send_ping`` and ``datagrams_to_send`` against
:func:`udpio.short_path.send_ping` (``ping_us_per_keepalive``); a call of the
server's with nothing due, aioquic's builder against the short ACK path's
answer (``empty_us_per_call``); and per packet
of a bulk stream (a download of ``--stream-mib``, both ends acknowledging as
quicmeet's do), aioquic's method against :mod:`udpio.short_path`'s
(``stream_us_per_packet``) and the receiving end's ``receive_datagram``
against :mod:`udpio.short_receive`'s (``stream_receive_us_per_packet``).

    python bench/datagram_path.py [--rounds 3000] [--stream-mib 16]
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import tempfile
import time
from pathlib import Path

from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from server import quic_fastpath  # noqa: E402
from server.certs import ensure_certificate  # noqa: E402
from server.quic_adapter import release_handshake_state  # noqa: E402
from udpio import ack_delay, short_acks, short_path, short_receive  # noqa: E402

CLIENT = ("10.0.0.1", 1234)
SERVER = ("10.0.0.2", 4433)
PAYLOAD = b"v" * 1150


def _pair(directory: Path) -> tuple[QuicConnection, QuicConnection, float]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    ensure_certificate(cert, key, ["localhost"])
    client = QuicConnection(
        configuration=QuicConfiguration(
            is_client=True,
            alpn_protocols=["bench"],
            verify_mode=ssl.CERT_NONE,
            max_datagram_frame_size=65536,
        )
    )
    config = QuicConfiguration(
        is_client=False, alpn_protocols=["bench"], max_datagram_frame_size=65536
    )
    config.load_cert_chain(cert, key)
    server = QuicConnection(
        configuration=config,
        original_destination_connection_id=client.original_destination_connection_id,
    )
    client.connect(SERVER, now=0.0)
    now = 0.0
    for _ in range(20):
        for data, _ in client.datagrams_to_send(now):
            server.receive_datagram(data, CLIENT, now)
        for data, _ in server.datagrams_to_send(now):
            client.receive_datagram(data, SERVER, now)
        now += 0.01
    return client, server, now


def _run(client, server, now: float, rounds: int, per_call: int) -> tuple[float, float]:
    spent = 0.0
    for i in range(rounds):
        for _ in range(per_call):
            server.send_datagram_frame(PAYLOAD)
        start = time.process_time()
        out = server.datagrams_to_send(now)
        spent += time.process_time() - start
        for data, _ in out:
            client.receive_datagram(data, SERVER, now)
        while client.next_event() is not None:
            pass
        if i % 4 == 3:
            for data, _ in client.datagrams_to_send(now):
                server.receive_datagram(data, CLIENT, now)
        now += 0.002
    return spent / rounds * 1e6, now


def _run_pings(client, server, now: float, rounds: int) -> tuple[float, float]:
    receiving = answering = 0.0
    for _ in range(rounds):
        now += 0.5
        client.send_ping(1)
        (ping, _), *_ = client.datagrams_to_send(now)
        start = time.process_time()
        server.receive_datagram(ping, CLIENT, now)
        middle = time.process_time()
        out = server.datagrams_to_send(now)
        answering += time.process_time() - middle
        receiving += middle - start
        if len(out) != 1:
            raise SystemExit(f"a PING was answered by {len(out)} datagrams")
        for data, _ in out:
            client.receive_datagram(data, SERVER, now)
        while client.next_event() is not None:
            pass
    return receiving / rounds * 1e6, answering / rounds * 1e6


def _run_keepalives(client, server, now: float, rounds: int, short: bool) -> float:
    """The client PINGs every 0.5 s, aioquic's way (``send_ping`` and
    ``datagrams_to_send``) or :func:`udpio.short_path.send_ping`; the server
    acknowledges each. Returns µs of CPU per PING's packet built."""
    spent = 0.0
    for _ in range(rounds):
        now += 0.5
        start = time.process_time()
        out = short_path.send_ping(client, now) if short else None
        if out is None:
            client.send_ping(0)
            out = client.datagrams_to_send(now)
        spent += time.process_time() - start
        if len(out) != 1:
            raise SystemExit(f"a PING took {len(out)} datagrams")
        for data, _ in out:
            server.receive_datagram(data, CLIENT, now)
        for data, _ in server.datagrams_to_send(now + 0.03):
            client.receive_datagram(data, SERVER, now + 0.03)
        while client.next_event() is not None:
            pass
    return spent / rounds * 1e6


def _run_empty(server, now: float, rounds: int) -> float:
    """A transmit with nothing to send (what most of a node's receipts leave:
    an ACK read, or media whose ACK is not due yet). Returns µs of CPU per
    ``datagrams_to_send`` call."""
    spent = 0.0
    for _ in range(rounds):
        now += 0.01
        start = time.process_time()
        out = server.datagrams_to_send(now)
        spent += time.process_time() - start
        if out:
            raise SystemExit("a call with nothing due built a packet")
    return spent / rounds * 1e6


def _run_stream(client, server, now: float, size: int) -> tuple[float, float, int]:
    """The server sends ``size`` bytes on one stream; the client reads and
    acknowledges after every call. Returns the CPU of the server's calls, of
    the client's receipts, and how many packets the server built."""
    ack_delay.install(client)
    ack_delay.install(server)
    stream_id = server.get_next_available_stream_id()
    server.send_stream_data(stream_id, os.urandom(size), end_stream=True)
    spent = receiving = 0.0
    packets = received = 0
    while received < size:
        start = time.process_time()
        out = server.datagrams_to_send(now)
        middle = time.process_time()
        spent += middle - start
        packets += len(out)
        for data, _ in out:
            client.receive_datagram(data, SERVER, now)
        receiving += time.process_time() - middle
        while (event := client.next_event()) is not None:
            received += len(getattr(event, "data", b""))
        now += 0.0005
        for data, _ in client.datagrams_to_send(now):
            server.receive_datagram(data, CLIENT, now)
        for conn in (client, server):
            timer = conn.get_timer()
            if timer is not None and timer <= now:
                conn.handle_timer(now)
    return spent, receiving, packets


def _idle_server(server, short: bool) -> None:
    release_handshake_state(server)
    if short:
        short_receive.install(server)
    ack_delay.install(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3000)
    parser.add_argument("--stream-mib", type=int, default=16)
    args = parser.parse_args()
    result: dict[str, object] = {"rounds": args.rounds, "load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as directory:
        for per_call in (1, 3):
            best: dict[str, float] = {}
            for _ in range(3):
                for name in ("aioquic", "fast"):
                    client, server, now = _pair(Path(directory))
                    if name == "fast":
                        sender = quic_fastpath.install(server)
                    us, _ = _run(client, server, now, args.rounds, per_call)
                    best[name] = min(best.get(name, us), us)
            if sender.fast_packets == 0:
                raise SystemExit("the short path never ran")
            result[f"us_per_call_{per_call}"] = {
                k: round(v, 1) for k, v in best.items()
            }
            result[f"ratio_{per_call}"] = round(best["fast"] / best["aioquic"], 2)
        answer: dict[str, float] = {}
        receipt: dict[str, float] = {}
        for _ in range(3):
            for name in ("aioquic", "fast"):
                client, server, now = _pair(Path(directory))
                _idle_server(server, short=name == "fast")
                if name == "fast":
                    short_acks.install(server)
                received, answered = _run_pings(client, server, now, args.rounds)
                answer[name] = min(answer.get(name, answered), answered)
                receipt[name] = min(receipt.get(name, received), received)
        if short_acks.ShortAcks.sent == 0:
            raise SystemExit("the short ACK path never ran")
        result["ack_us_per_ping"] = {
            name: {"receive": round(receipt[name], 1), "answer": round(answer[name], 1)}
            for name in answer
        }
        result["ack_ratio"] = round(answer["fast"] / answer["aioquic"], 2)
        keepalive: dict[str, float] = {}
        for _ in range(3):
            for name in ("aioquic", "fast"):
                client, server, now = _pair(Path(directory))
                _idle_server(server, short=True)
                us = _run_keepalives(client, server, now, args.rounds, name == "fast")
                keepalive[name] = min(keepalive.get(name, us), us)
        result["ping_us_per_keepalive"] = {k: round(v, 1) for k, v in keepalive.items()}
        result["ping_ratio"] = round(keepalive["fast"] / keepalive["aioquic"], 2)
        empty: dict[str, float] = {}
        for _ in range(3):
            for name in ("aioquic", "fast"):
                client, server, now = _pair(Path(directory))
                _idle_server(server, short=True)
                if name == "fast":
                    short_acks.install(server)
                us = _run_empty(server, now, args.rounds)
                empty[name] = min(empty.get(name, us), us)
        result["empty_us_per_call"] = {k: round(v, 1) for k, v in empty.items()}
        result["empty_ratio"] = round(empty["fast"] / empty["aioquic"], 2)
        per_packet: dict[str, float] = {}
        receipt_per_packet: dict[str, float] = {}
        for _ in range(3):
            for name in ("aioquic", "fast"):
                client, server, now = _pair(Path(directory))
                if name == "fast":
                    short_receive.install(client)
                    ack_delay.install(server)
                    short_path.install(server)
                sent_before = short_path.ShortStreams.sent
                received_before = short_receive.ShortReceive.received
                spent, receiving, packets = _run_stream(
                    client, server, now, args.stream_mib * 1024 * 1024
                )
                if name == "fast":
                    if short_path.ShortStreams.sent == sent_before:
                        raise SystemExit("the short stream path never ran")
                    if short_receive.ShortReceive.received == received_before:
                        raise SystemExit("the short receive path never ran")
                us = spent / packets * 1e6
                per_packet[name] = min(per_packet.get(name, us), us)
                us = receiving / packets * 1e6
                receipt_per_packet[name] = min(receipt_per_packet.get(name, us), us)
        result["stream_us_per_packet"] = {k: round(v, 1) for k, v in per_packet.items()}
        result["stream_ratio"] = round(per_packet["fast"] / per_packet["aioquic"], 2)
        result["stream_receive_us_per_packet"] = {
            k: round(v, 1) for k, v in receipt_per_packet.items()
        }
        result["stream_receive_ratio"] = round(
            receipt_per_packet["fast"] / receipt_per_packet["aioquic"], 2
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

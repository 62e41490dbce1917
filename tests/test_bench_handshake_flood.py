"""``bench/handshake_flood.py`` floods a real node with the first flights of
new QUIC connections while its users chat: what it reports is measured
(coarse: what holds on any machine; how well the node does is the
benchmark's to say)."""

from __future__ import annotations

import argparse


async def test_a_flooded_node_keeps_its_users_and_reports_each_phase(
    bench, monkeypatch
):
    flood = bench("handshake_flood")  # bench/handshake_flood.py
    monkeypatch.setattr(flood, "PHASE_S", 1.0)
    args = argparse.Namespace(pairs=2, rate=20.0, flood=300.0, seconds=2.0)
    run = await flood.run_one(flood.ROOT, args, "this")
    assert run["flood_flights_sent"] == 600
    assert run["users_lost"] == 0
    phases = run["phases"]
    assert sum(p["sent"] for p in phases.values()) == run["messages_sent"]
    for phase in phases.values():
        assert phase["failed"] == 0 and phase["delivered"] == phase["sent"] > 0
        assert phase["p50_ms"] <= phase["p99_ms"] <= phase["max_ms"]
    # The node read the flood (what it did not shed began handshakes).
    assert run["node_datagrams_received"] + run["node_datagrams_shed"] >= 600
    assert 0 <= run["node_new_connection_datagrams_shed"] <= run["node_datagrams_shed"]

"""``bench/cpu_costs.py`` drives the real controller as a bulk flow does and
reads a real file through the executor; what it reports is measured, not
assumed (coarse: what holds on any machine)."""

from __future__ import annotations

import pytest


@pytest.fixture
def cpu_costs(bench):
    return bench("cpu_costs")  # bench/cpu_costs.py


def test_the_controller_is_driven_out_of_startup_and_timed(cpu_costs):
    per_packet, window, mode = cpu_costs.controller_cost(5000, 60)
    assert per_packet > 0
    # ACKs of 60 packets a millisecond: the window grew past its floor and
    # the controller left startup, as a real transfer's does.
    assert window > 4 * cpu_costs.MSS
    assert mode in ("drain", "probe_bw")


def test_reading_through_the_executor_is_measured_by_chunk(cpu_costs):
    costs = cpu_costs.executor_cost(2)
    assert set(costs) == {"executor_64k", "executor_256k", "loop_64k"}
    assert all(cost > 0 for cost in costs.values())


def test_a_chat_batch_is_bound_both_ways_to_the_same_bytes(cpu_costs):
    # chat_bind_cost asserts that psycopg's binding and ours agree on both
    # queries of the batch before it times them.
    costs = cpu_costs.chat_bind_cost(4)
    assert set(costs) == {"psycopg", "quicmeet"}
    assert all(cost > 0 for cost in costs.values())

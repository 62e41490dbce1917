"""netsim: link emulation for testing quicmeet on bad networks.

The kernel we test on has no ``netem``, so netsim does in user space what netem and
Mahimahi do: delay, jitter, loss (Bernoulli or Gilbert-Elliott), duplication,
reordering, a drop-tail queue, a rate limit or a capacity trace, and schedules that
change any of these over time. It comes in three layers:

- ``Link``: one direction of a path, a pure sans-I/O model on the caller's clock;
- ``QuicPair``: two QUIC endpoints joined by a pair of links on a virtual clock;
- ``ImpairmentProxy`` (and the ``quicmeet-netsim`` command): a UDP relay that puts
  a pair of links between a real client and a real server.

netsim imports nothing from the rest of quicmeet.
"""

from .config import (
    DISTRIBUTIONS,
    Distribution,
    GilbertElliott,
    LinkConfig,
    ScheduleStep,
    validate_schedule,
)
from .errors import NetsimError, ParameterError
from .harness import Endpoint, EndpointEvent, QuicPair, Side
from .link import Link, LinkStats
from .proxy import ImpairmentProxy, ProxyStats
from .scenario import Scenario, load_scenario, parse_scenario, scenario_names
from .spec import SPEC_FORMS, parse_spec
from .trace import Trace

__all__ = [
    "DISTRIBUTIONS",
    "SPEC_FORMS",
    "Distribution",
    "Endpoint",
    "EndpointEvent",
    "GilbertElliott",
    "ImpairmentProxy",
    "Link",
    "LinkConfig",
    "LinkStats",
    "NetsimError",
    "ParameterError",
    "ProxyStats",
    "QuicPair",
    "Scenario",
    "ScheduleStep",
    "Side",
    "Trace",
    "load_scenario",
    "parse_scenario",
    "parse_spec",
    "scenario_names",
    "validate_schedule",
]

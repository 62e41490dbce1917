"""The errors netsim raises on purpose.

netsim has one failure a caller can cause: a parameter that is malformed or out of
range, whether it comes from Python code, a command-line flag, a trace file or a
scenario file. Everything else that can go wrong (a socket that cannot bind, a file
that does not exist) surfaces as the usual ``OSError``.
"""

from __future__ import annotations

__all__ = ["NetsimError", "ParameterError"]


class NetsimError(Exception):
    """Base class of every error netsim raises on purpose."""


class ParameterError(NetsimError, ValueError):
    """A link parameter, flag, trace or scenario field is malformed or out of range.

    The message names the parameter, says what is wrong and gives the accepted form,
    for example ``--loss: 120% is above 100%; accepted: a percentage from 0% to 100%,
    such as 2% or 0.5%``. It subclasses ``ValueError`` so generic validation code
    still catches it.
    """

    def __init__(self, parameter: str, problem: str, accepted: str) -> None:
        self.parameter = parameter
        self.problem = problem
        self.accepted = accepted
        super().__init__(f"{parameter}: {problem}; accepted: {accepted}")

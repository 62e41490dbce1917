"""SELECTs whose SQL is built once and run again with new values.

peewee turns a query into SQL every time it runs it: a walk over the query's
nodes that cost the node about as much as executing the statement and reading
its rows did for the small lookups of a login (the session by its token, the
friends, the pending requests, the files waiting; docs/performance.md,
"Logins: SQL built once"). :class:`Prepared` builds the query once per
database with placeholder values, keeps its SQL and parameter list, and at each
call puts the caller's values where the placeholders were and lets the same
query object turn the rows into models, as peewee's own execution does
(``_get_cursor_wrapper``, peewee's own step between a cursor and its rows:
``tests/server/test_prepared.py`` compares the rows with peewee's on both
stores).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import peewee

from . import models

__all__ = ["Prepared"]

_INT_MARK = -0x3FFF_FFFF_FFFF_0000
"""Placeholder integers (this plus the value's position): no id or time is
negative."""
_STR_MARK = "\x00prepared value "
"""Placeholder strings (this plus the value's position)."""


class Prepared:
    """``build(*values)`` returns a peewee SELECT whose SQL depends on nothing
    but the query's shape: each of ``values`` (an ``int`` or a ``str``, as
    ``kinds`` says) must reach the SQL as one parameter of its own, unchanged
    by the field's conversion. Built with placeholders at the first call on a
    database (and again when the models are bound to another one)."""

    __slots__ = ("_build", "_kinds", "_compiled")

    def __init__(self, build: Callable[..., peewee.Query], *kinds: type) -> None:
        if any(kind not in (int, str) for kind in kinds):
            raise TypeError("prepared values are ints or strings")
        self._build = build
        self._kinds = kinds
        self._compiled: _Compiled | None = None
        """Replaced whole, never changed in place: two nodes in one process
        (the tests' clusters) share it from two database threads."""

    def _compile(self, database: peewee.Database) -> _Compiled:
        marks = [
            _INT_MARK + i if kind is int else f"{_STR_MARK}{i}"
            for i, kind in enumerate(self._kinds)
        ]
        query = self._build(*marks)
        sql, params = query.sql()
        slots = [
            (position, marks.index(param))
            for position, param in enumerate(params)
            if any(type(param) is type(mark) and param == mark for mark in marks)
        ]
        if sorted(index for _, index in slots) != list(range(len(marks))):
            raise ValueError(
                f"each value must be one parameter of the SQL: {sql!r} {params!r}"
            )
        compiled = _Compiled(database, query, sql, params, slots)
        self._compiled = compiled
        return compiled

    def __call__(self, *values: Any) -> list[Any]:
        """Run the query with ``values``: all its rows (read to the end, so no
        statement stays open), as peewee would give them (models with the
        joined ones attached, or what ``.objects()``, ``.tuples()`` ... asked
        for). Call on the database thread."""
        if len(values) != len(self._kinds):
            raise TypeError(f"expected {len(self._kinds)} values, got {len(values)}")
        for value, kind in zip(values, self._kinds, strict=True):
            if type(value) is not kind:
                raise TypeError(f"prepared value {value!r} is not {kind.__name__}")
        database = models.database.obj
        if database is None:
            raise peewee.InterfaceError("the models are not bound to a database")
        compiled = self._compiled
        if compiled is None or compiled.database is not database:
            compiled = self._compile(database)
        params = list(compiled.params)
        for position, index in compiled.slots:
            params[position] = values[index]
        cursor = database.execute_sql(compiled.sql, params)
        return list(compiled.query._get_cursor_wrapper(cursor))

    def first(self, *values: Any) -> Any:
        """The first row, or None (the query says ``limit(1)`` if it should)."""
        rows = self(*values)
        return rows[0] if rows else None


class _Compiled:
    __slots__ = ("database", "query", "sql", "params", "slots")

    def __init__(
        self,
        database: peewee.Database,
        query: Any,
        sql: str,
        params: list[Any],
        slots: list[tuple[int, int]],
    ) -> None:
        self.database = database
        self.query = query
        """The query built with placeholders: it turns the rows into models."""
        self.sql = sql
        self.params = params
        """The SQL's parameters as built: the query's constants, and the
        placeholders..."""
        self.slots = slots
        """...which (position in ``params``, index into the caller's values)
        replace."""

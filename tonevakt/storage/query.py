"""Read-only SQL for analysts and `tonevakt sql`: anything but a read is refused before it runs."""

from __future__ import annotations

from typing import Any

import duckdb

from tonevakt.errors import ReadOnlyQueryError
from tonevakt.storage.db import Database

_ALLOWED = {"SELECT", "EXPLAIN", "PRAGMA"}


def check_read_only(sql: str) -> None:
    """Raise ReadOnlyQueryError if any statement in `sql` is not a read."""
    if not sql.strip():
        raise ReadOnlyQueryError("empty query")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise ReadOnlyQueryError(f"cannot parse the query: {e}") from e
    for st in statements:
        kind = st.type.name if hasattr(st.type, "name") else str(st.type)
        kind = kind.upper().replace("STATEMENTTYPE.", "")
        if kind not in _ALLOWED:
            first = sql.strip().split()[0].upper()
            raise ReadOnlyQueryError(
                f"refused: 'tonevakt sql' only reads; this query is a {kind} statement ({first} …). "
                "The database is changed only by the pipeline and by 'tonevakt import'/'label'."
            )


def run_read_only(db: Database, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    check_read_only(sql)
    try:
        cur = db.con.execute(sql)
    except duckdb.Error as e:
        raise ReadOnlyQueryError(f"query failed: {e}") from e
    cols = [d[0] for d in cur.description or []]
    return cols, cur.fetchall()

"""Read-only SQL for analysts and `tonevakt sql`: anything but a read is refused before it runs.

Two locks, each enough on its own for what it covers:

1. `check_read_only`: the query must be ONE plain read, a `SELECT` (also `WITH …`, `FROM …`, `VALUES …`,
   `SUMMARIZE`, `DESCRIBE`, `SHOW`) or an `EXPLAIN` of one, without `ANALYZE` (which runs the statement it
   explains). `PRAGMA`, `CALL`, `SET`, `COPY`, `ATTACH`, `INSTALL`, `LOAD`, `EXPORT`/`IMPORT` and every write
   are refused by name.
2. `open_sandboxed`: the connection is opened read-only with DuckDB's own sandbox (`SANDBOX`): no file or
   network access beyond the database file itself (no `COPY … TO`, `read_csv('http://…')`, `ATTACH`,
   `import_database`), no installing or loading extensions, and the configuration locked so that no statement
   can turn any of it back on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from tonevakt.errors import ReadOnlyQueryError
from tonevakt.storage.db import Database, open_for_reading

# DuckDB settings for the analysts' connection (checked against duckdb 2.0). `enable_external_access=false`
# still lets DuckDB open the database file it was started on; everything else on disk and on the network is
# refused ("file system operations are disabled by configuration"). `lock_configuration` comes last in effect:
# once the connection is open, `SET`/`RESET`/`PRAGMA` can change none of these.
SANDBOX: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "allow_persistent_secrets": False,
    "lock_configuration": True,
}

_WORD = re.compile(r"[A-Za-z_]+")
_READS = "SELECT, WITH, FROM, VALUES, SUMMARIZE, DESCRIBE, SHOW or EXPLAIN (without ANALYZE)"
_HINT = (
    "'tonevakt sql' reads the database's own tables and views and nothing else; the database is changed only "
    "by the pipeline and by 'tonevakt import'/'label', and files are written by 'tonevakt export --parquet'"
)


def _kind(statement: Any) -> str:
    kind = statement.type.name if hasattr(statement.type, "name") else str(statement.type)
    return kind.upper().replace("STATEMENTTYPE.", "")


def _first_word(sql: str) -> str:
    """The statement's first keyword, comments skipped (for the message)."""
    for offset, token_type in _tokens(sql):
        if token_type != "comment":
            return sql[offset:].split(None, 1)[0].split("(", 1)[0].upper() or "?"
    return "?"


def _tokens(sql: str) -> list[tuple[int, str]]:
    return [(offset, getattr(t, "name", str(t)).lower()) for offset, t in duckdb.tokenize(sql)]


def _parse(sql: str) -> list[Any]:
    try:
        return list(duckdb.extract_statements(sql))
    except (duckdb.Error, ValueError) as e:  # ValueError: a statement type the Python API has no name for
        raise ReadOnlyQueryError(f"refused: cannot parse the query as a read ({_READS}): {e}") from e


def _explained(sql: str) -> str:
    """The statement an EXPLAIN explains; refuses EXPLAIN ANALYZE in every spelling (it runs the statement)."""
    toks = [(o, t) for o, t in _tokens(sql) if t != "comment"]
    words = {m.group(0).upper() for o, t in toks if t == "keyword" and (m := _WORD.match(sql, o))}
    if words & {"ANALYZE", "ANALYSE"}:
        raise ReadOnlyQueryError(
            "refused: EXPLAIN ANALYZE runs the statement it explains; use EXPLAIN without ANALYZE. " + _HINT
        )
    # toks[0] is EXPLAIN; then the statement, or an option list such as "(FORMAT json)" and the statement.
    rest = sql[toks[1][0] :] if len(toks) > 1 else ""
    if rest.startswith("(") and not _parses_as_one_select(rest):
        depth = 0
        for o, _t in toks[1:]:
            depth += {"(": 1, ")": -1}.get(sql[o], 0)
            if depth == 0:
                return sql[o + 1 :]
    return rest


def _one_select(statements: list[Any]) -> bool:
    return len(statements) == 1 and _kind(statements[0]) == "SELECT"


def _parses_as_one_select(sql: str) -> bool:
    try:
        return _one_select(_parse(sql))
    except ReadOnlyQueryError:
        return False


def check_read_only(sql: str) -> None:
    """Raise ReadOnlyQueryError unless `sql` is one plain read (see the module's docstring)."""
    if not sql.strip():
        raise ReadOnlyQueryError("empty query")
    statements = _parse(sql)
    if len(statements) != 1:
        raise ReadOnlyQueryError(
            f"refused: give one statement, not {len(statements)} ('tonevakt sql' runs a single read: {_READS})"
        )
    kind = _kind(statements[0])
    if kind == "EXPLAIN":
        inner = _explained(sql)
        inner_statements = _parse(inner) if inner.strip() else []
        if _one_select(inner_statements):
            return
        what = _kind(inner_statements[0]) if len(inner_statements) == 1 else "something else"
        raise ReadOnlyQueryError(f"refused: EXPLAIN is allowed for a read only, not for {what}. {_HINT}")
    if kind != "SELECT":
        raise ReadOnlyQueryError(
            f"refused: this query is a {kind} statement ({_first_word(sql)} …); only one {_READS} is "
            f"allowed. {_HINT}"
        )
    hidden = _modifying_parts(sql)
    if hidden:
        raise ReadOnlyQueryError(
            f"refused: this SELECT holds a {hidden[0]} (in a WITH clause); only plain reads are allowed. {_HINT}"
        )


def _modifying_parts(sql: str) -> list[str]:
    """Statements that change data hidden inside a SELECT (`WITH d AS (DELETE … RETURNING *) SELECT …`), as
    DuckDB's own parser sees them (`json_serialize_sql`: a `DELETE_QUERY_NODE` where a read has `SELECT_NODE`)."""
    con = duckdb.connect(":memory:")
    try:
        raw = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [sql]).fetchone()
    except duckdb.Error:
        return []  # not serialisable: the read-only, sandboxed connection still refuses any write
    finally:
        con.close()
    try:
        tree = json.loads(raw[0]) if raw and raw[0] else None
    except RecursionError as e:  # subqueries nested some hundred levels deep: json's own recursion limit
        raise ReadOnlyQueryError("refused: the query is nested too deeply to check that it only reads") from e
    found: list[str] = []
    stack = [tree]
    while stack:  # no recursion: the tree is as deep as the query's nesting
        node = stack.pop()
        if isinstance(node, dict):
            kind = node.get("type")
            if isinstance(kind, str) and kind.endswith("_QUERY_NODE"):
                found.append(kind.removesuffix("_QUERY_NODE").replace("_", " "))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def open_sandboxed(path: Path, snapshot: Path | None) -> Database:
    """`open_for_reading` (with its fall-back to the snapshot) in DuckDB's sandbox (`SANDBOX`)."""
    return open_for_reading(path, snapshot, config=SANDBOX)


@dataclass(frozen=True)
class SqlResult:
    """What a read returned: the column names and the rows, in the query's order."""

    columns: list[str]
    rows: list[tuple[Any, ...]]


def run_read_only(db: Database, sql: str) -> SqlResult:
    """Run one read (`check_read_only` first); a refusal or a failure is a ReadOnlyQueryError naming it."""
    check_read_only(sql)
    try:
        cur = db.con.execute(sql)
    except duckdb.PermissionException as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ReadOnlyQueryError(f"refused by the database's sandbox: {reason}. {_HINT}") from e
    except duckdb.Error as e:
        raise ReadOnlyQueryError(f"query failed: {e}") from e
    return SqlResult([d[0] for d in cur.description or []], cur.fetchall())

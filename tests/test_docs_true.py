"""Docs that stay true (issue 17): every command in `--help` appears in the README's command table and each of
its options in that command's own rows, and every table, view and column of a freshly migrated database is described in docs/schema.md."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click

from tests.support.paths import REPO
from tonevakt.cli import main
from tonevakt.storage.db import memory_database


def _commands(cmd: click.Command, path: list[str]) -> Iterator[tuple[str, click.Command]]:
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            if not sub.hidden:
                yield from _commands(sub, [*path, name])
    else:
        yield "tonevakt " + " ".join(path), cmd


def test_readme_command_table_names_every_command_and_option() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Commands") :]
    table = table[: table.index("\n## ", 5)]
    missing = []
    for name, cmd in _commands(main, []):
        if f"`{name}" not in table:
            missing.append(name)
        # The command's own rows: those that start with it (`tonevakt model train` is not `... train-tone`).
        start = re.compile(rf"^\| `{re.escape(name)}(?=[\s`])")
        rows = "\n".join(line for line in table.splitlines() if start.match(line))
        for p in cmd.params:
            if isinstance(p, click.Option) and not p.hidden:
                missing += [f"{name} {o}" for o in p.opts if o.startswith("--") and o not in rows]
    assert not missing, f"not in README.md's command table: {missing}"


def test_schema_doc_describes_every_table_view_and_column() -> None:
    doc = (REPO / "docs" / "schema.md").read_text(encoding="utf-8")
    parts = re.split(r"\n(?=#{2,4} )", doc)

    def section(name: str) -> str:
        return "\n".join(p for p in parts if re.match(rf"#{{2,4}} .*`{re.escape(name)}`", p))

    def names(column: str, text: str) -> bool:
        return re.search(rf"(?<!\w){re.escape(column)}(?!\w)", text) is not None

    db = memory_database()
    try:
        rows = db.fetchall(
            """SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main'
               ORDER BY table_name, ordinal_position"""
        )
    finally:
        db.close()
    missing = []
    for table, column in rows:
        own = section(table)
        if not own:
            missing.append(f"{table} (no section)")
            continue
        # A section may describe its columns as another's ("the columns of `x`", "as in `x`"): look there too.
        referred = "\n".join(section(t) for t in re.findall(r"`(\w+)`", own) if t != table)
        if not names(column, own) and not names(column, referred):
            missing.append(f"{table}.{column}")
    assert not missing, f"not described in docs/schema.md: {missing}"

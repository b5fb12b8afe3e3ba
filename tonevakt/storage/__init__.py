"""DuckDB storage: migrations, idempotent writes, read-only queries, the analyst snapshot."""

from tonevakt.storage.db import Database, open_database, open_for_reading
from tonevakt.storage.snapshot import publish_snapshot

__all__ = ["Database", "open_database", "open_for_reading", "publish_snapshot"]

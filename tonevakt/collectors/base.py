"""What every collector hands back to the pass."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tonevakt.models import Document, FetchLogEntry, Source

# Given a title + summary, is this a relevant candidate (worth fetching the full text)? The pass asks nlp.
CandidateTest = Callable[[str], bool]


@dataclass
class SourceOutcome:
    """One source's part of a pass: documents, the fetch log rows, and files imported (files kind)."""

    source: Source
    documents: list[Document] = field(default_factory=list)
    fetches: list[FetchLogEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    imported_files: list[tuple[str, str, str, int]] = field(default_factory=list)  # hash, source, path, rows
    skipped: bool = False  # not due yet (backoff or interval)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(f.primary and f.status.failed for f in self.fetches)

    @property
    def reason(self) -> str:
        return next((f.reason for f in self.fetches if f.primary and f.status.failed), "")

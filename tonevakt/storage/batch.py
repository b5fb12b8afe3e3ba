"""One batch of a collect pass (or of an import), stored all or nothing: what the pass, `tonevakt import` and the
spool's replay all write through. Near-copy grouping runs here, at store time, against the stored documents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from tonevakt.models import Document, SourceOutcome
from tonevakt.storage import repository as repo
from tonevakt.storage import story_index
from tonevakt.storage.db import Database
from tonevakt.storage.stories import (
    STORY_WINDOW,
    assign_stories,
    share_identical_stories,
    sign_documents,
    wanted_keys,
)


def store_outcomes(
    db: Database, docs: Sequence[Document], outcomes: Sequence[SourceOutcome], *, max_item_attempts: int
) -> list[str]:
    """Store one batch of a collect pass (or an import) all or nothing: the new documents grouped into stories
    (near-copies of the last `STORY_WINDOW`, identical texts of one voice), then documents, fetch log rows with
    each source's health, what became of pending items, and imported files. The first fetch of each source
    records how many of its documents were new. The new documents' signatures are stored with them
    (`story_index`), so later passes never sign them again. Returns the ids of new documents."""
    known = repo.existing_ids(db, list({d.id for d in docs}))
    fresh = [d for d in docs if d.id not in known]
    since = datetime.now(UTC) - STORY_WINDOW
    signatures = {}
    if fresh:  # only new documents need a story; a pass with nothing new reads nothing back
        story_index.refresh(db, since)
        signatures = sign_documents(fresh)
        assign_stories(fresh, story_index.candidates(db, since, wanted_keys(signatures.values())), signatures)
        share_identical_stories(fresh, repo.identical_texts(db, [d.text for d in fresh]))
    fetches = []
    for o in outcomes:
        n_new = len({d.id for d in o.documents} - known)
        for i, f in enumerate(o.fetches):
            if i == 0:
                f.new_documents = n_new
            fetches.append((f, o.source.interval_minutes))
    files = [f for o in outcomes for f in o.imported_files]
    items = [(o.source.id, o.source.interval_minutes, o.items) for o in outcomes if o.items]
    return repo.store_batch(
        db, docs, fetches, files, items, max_item_attempts, known=known, signatures=signatures, since=since
    )

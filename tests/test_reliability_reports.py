"""Reliability catalogue, report rows (docs/reliability.md): script and HTML in every untrusted field (title,
outlet, excerpt, author, URL, source name, a source's error message) and spreadsheet formulas in every text
cell, through the real report writer (HTML, PDF, CSV), the dashboard and `tonevakt sql`."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.support.config import settings_in
from tests.support.seed import NOW, WEEK
from tonevakt import dates
from tonevakt.config import Settings
from tonevakt.dates import OSLO
from tonevakt.models import Document, FetchLogEntry, FetchStatus, Score
from tonevakt.reports import ReportPaths, write_report
from tonevakt.reports.csv_json import FORMULA_START, neutralise
from tonevakt.reports.dashboard import write_dashboard
from tonevakt.storage import repository as repo
from tonevakt.storage.db import database

MODEL = "test-model"
HOSTILE = {
    "title": '<script>alert("tittel")</script>',
    "outlet": '<img src=x onerror=alert("kanal")>',
    "passage": "<iframe src=\"javascript:alert('utdrag')\"></iframe>",
    "author": '<b onmouseover=alert("forfatter")>Kari</b>',
    "source": '<svg onload=alert("kilde")>NRK</svg>',
    "error": '<script>alert("feil")</script> HTTP 500',
}
URLS = [
    'javascript:alert("lenke")',
    'http://127.0.0.1:9/sak" onmouseover="alert(1)',
    "data:text/html,<script>x</script>",
]
FORMULAS = [
    "=1+1",
    "+SUM(A1:A9)",
    "-2+3",
    "@SUM(1)",
    "\t=1+1",
    "\r=1+1",
    '=HYPERLINK("http://127.0.0.1:9/x","klikk")',
]


def hostile_sources() -> list[dict[str, Any]]:
    return [
        {
            "id": "nrk",
            "name": HOSTILE["source"],
            "kind": "rss",
            "voice": "media",
            "url": "http://127.0.0.1:9/nrk",
        },
        {
            "id": "lege",
            "name": HOSTILE["source"] + " (fagforening)",
            "kind": "web",
            "voice": "union",
            "url": "http://127.0.0.1:9/lege/",
        },
        {
            "id": "helsami",
            "name": HOSTILE["source"] + " app",
            "kind": "appstore",
            "voice": "patient",
            "app_id": "1",
        },
        {
            "id": "hmn",
            "name": HOSTILE["source"] + " HMN",
            "kind": "web",
            "voice": "official",
            "url": "http://127.0.0.1:9/hmn/",
        },
    ]


def seed_hostile(settings: Settings) -> list[Document]:
    monday = datetime.combine(dates.week_monday(WEEK), datetime.min.time(), tzinfo=OSLO).astimezone(UTC)
    docs, scores = [], []
    voices = {"media": "nrk", "union": "lege", "patient": "helsami", "official": "hmn"}
    k = 0
    for voice, src in voices.items():
        for i in range(8):
            start = FORMULAS[(i + k) % len(FORMULAS)] if i % 2 else HOSTILE["title"]
            title = f"{start} {voice} {i}"
            outlet = HOSTILE["outlet"] if i % 3 else FORMULAS[(i + 2) % len(FORMULAS)]
            d = Document(
                source_id=src,
                voice=voice,
                title=title,
                text=f"Helseplattformen {HOSTILE['passage']} {i}",
                url=URLS[i % len(URLS)] if i < 3 else f"http://127.0.0.1:9/{src}/{i}",
                author=HOSTILE["author"],
                outlet=outlet,
                published_at=monday + timedelta(days=i % 7, hours=9),
                language="nb",
                relevant=True,
                matched=["helseplattform*"],
                kind="review" if voice == "patient" else "article",
                rating=1 + i % 5 if voice == "patient" else None,
            )
            tone = (-0.9 + 0.25 * i) if voice != "patient" else (0.8 - 0.2 * i)
            passage = HOSTILE["passage"] if i % 2 else FORMULAS[(i + 3) % len(FORMULAS)] + " utdrag"
            neutral = 0.1
            p_pos = (1 - neutral + tone) / 2
            scores.append(
                Score(
                    d.id,
                    MODEL,
                    tone,
                    "negative" if tone < 0 else "positive",
                    1 - neutral - p_pos,
                    neutral,
                    p_pos,
                    passage=passage,
                )
            )
            docs.append(d)
            k += 1
    with database(settings.db_path) as db:
        repo.sync_sources(db, settings.source_records())
        repo.store_batch(
            db,
            docs,
            [
                (
                    FetchLogEntry(
                        source_id="hmn",
                        url="http://127.0.0.1:9/hmn/",
                        status=FetchStatus.TEMPORARY,
                        started_at=monday + timedelta(days=2, hours=h),
                        http_status=500,
                        reason=HOSTILE["error"],
                    ),
                    60,
                )
                for h in range(3)
            ],
        )
        repo.register_model(db, MODEL, "embedded", "testmodell", 0.6, active=True)
        repo.save_scores(db, scores)
    return docs


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, ReportPaths, Path]:
    tmp = tmp_path_factory.mktemp("hostile")
    settings = settings_in(tmp, sources=hostile_sources())
    seed_hostile(settings)
    paths = write_report(settings, WEEK, now=NOW)
    board = write_dashboard(settings, tmp / "tavle", now=NOW)
    return settings, paths, board


class Tags(HTMLParser):
    """Every element and attribute of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text.append(data)


def parse(html: str) -> Tags:
    p = Tags()
    p.feed(html)
    return p


def assert_no_markup_from_data(html: str, allowed_scripts: int) -> Tags:
    page = parse(html)
    names = {t for t, _ in page.tags}
    assert not names & {"img", "iframe", "object", "embed", "frame", "link", "meta-refresh"}, names
    assert sum(t == "script" for t, _ in page.tags) == allowed_scripts
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, value)
            if name in ("href", "src"):
                assert value and re.match(r"^(https?://|#|[\w./-]+$)", value), (tag, name, value)
    return page


def test_html_report_escapes_every_untrusted_field(written: tuple[Settings, ReportPaths, Path]) -> None:
    _, paths, _ = written
    html = paths.html.read_text(encoding="utf-8")
    assert_no_markup_from_data(html, allowed_scripts=0)
    assert "&lt;script&gt;alert(&#34;tittel&#34;)&lt;/script&gt;" in html  # the title, shown as text
    assert "&lt;img src=x onerror=alert(&#34;kanal&#34;)&gt;" in html  # the outlet
    assert "&lt;iframe" in html  # the excerpt
    assert "&lt;svg onload=alert(&#34;kilde&#34;)&gt;" in html  # the source name (sources table)
    assert "&lt;script&gt;alert(&#34;feil&#34;)&lt;/script&gt;" in html  # a failing source's error message
    assert "javascript:" not in html.replace("&#34;javascript:alert(", "")  # never a javascript: link
    assert 'onmouseover="alert(1)"' not in html


def test_pdf_shows_untrusted_fields_as_text(written: tuple[Settings, ReportPaths, Path]) -> None:
    import pypdfium2 as pdfium

    _, paths, _ = written
    assert paths.pdf is not None
    pdf = pdfium.PdfDocument(str(paths.pdf))
    text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    squeezed = re.sub(r"\s+", "", text)
    assert re.sub(r"\s+", "", HOSTILE["title"]) in squeezed  # printed literally, not interpreted
    assert 'onerror=alert("kanal")' in squeezed


def test_dashboard_keeps_untrusted_fields_as_data(written: tuple[Settings, ReportPaths, Path]) -> None:
    _, _, board = written
    html = board.read_text(encoding="utf-8")
    page = assert_no_markup_from_data(html, allowed_scripts=2)  # the page's own code + its JSON data
    blocks = [t for t in page.script_text if t.lstrip().startswith("{")]
    assert len(blocks) == 1
    raw = blocks[0]
    assert "<" not in raw and ">" not in raw  # no "</script>" can end the data block early
    data = json.loads(raw)
    titles = {s["title"] for s in data["stories"]}
    assert any(HOSTILE["title"] in t for t in titles)  # kept intact as data; the page sets it as text
    assert all(s["url"] is None or s["url"].startswith("http") for s in data["stories"])
    js = (Path(__file__).resolve().parent.parent / "tonevakt/reports/templates/dashboard.js").read_text(
        "utf-8"
    )
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function", js)


def test_report_csv_files_neutralise_formulas_in_every_text_cell(
    written: tuple[Settings, ReportPaths, Path],
) -> None:
    _, paths, _ = written
    seen_neutralised = 0
    for target in (paths.stories_csv, paths.figures_csv):
        with open(target, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows
        for r in rows:
            for col, v in r.items():
                v = v or ""
                if re.fullmatch(r"-?\d+(\.\d+)?(e-?\d+)?", v):
                    continue  # a number
                assert not v.startswith(FORMULA_START), (target.name, col, v)
                seen_neutralised += v.startswith("'") and v[1:2] in FORMULA_START
    assert seen_neutralised >= 5  # titles, outlets and excerpts that began with = + - @ tab or CR


@pytest.mark.parametrize("value", FORMULAS)
def test_neutralise_every_formula_start(value: str) -> None:
    out = neutralise(value)
    assert out == "'" + value and not out.startswith(FORMULA_START)
    assert neutralise(-0.25) == -0.25 and neutralise("Helseplattformen") == "Helseplattformen"


def test_sql_csv_is_a_data_tool_and_keeps_values_as_stored(
    written: tuple[Settings, ReportPaths, Path], make_settings: Callable[..., Settings]
) -> None:
    # `tonevakt sql --csv` prints stored values unchanged (for scripts and analysts' tools, not for opening in
    # a spreadsheet); the report's CSV files are the spreadsheet exports. Documented in docs/reliability.md.
    from click.testing import CliRunner

    from tonevakt.cli import main

    settings, _, _ = written
    res = CliRunner().invoke(
        main,
        [
            "--config",
            settings.file,
            "sql",
            "--csv",
            "SELECT title FROM documents WHERE title LIKE '=1+1%' LIMIT 1",
        ],
    )
    assert res.exit_code == 0 and res.output.splitlines()[1].startswith("=1+1"), res.output


def test_terminal_output_shows_untrusted_text_without_markup_or_control_sequences(
    make_settings: Callable[..., Settings],
) -> None:
    from click.testing import CliRunner

    from tonevakt.cli import main

    settings = make_settings(
        sources=[{"id": "avis", "kind": "rss", "voice": "media", "url": "http://127.0.0.1:9/"}]
    )
    title = "[/] lukket [link=file:///etc/passwd]klikk[/link] \x1b]0;tatt\x07 \x1b[2J\x1b[31mrød\r"
    with database(settings.db_path) as db:
        repo.sync_sources(db, settings.source_records())
        entry = FetchLogEntry(
            source_id="avis",
            url="http://127.0.0.1:9/",
            status=FetchStatus.SOFT_ERROR,
            started_at=datetime.now(UTC),
            reason="the page points to a feed at \x1b[8mskjult",
        )
        repo.store_batch(
            db,
            [
                Document(
                    source_id="avis",
                    voice="media",
                    title=title,
                    text="Helseplattformen",
                    url="http://127.0.0.1:9/a",
                )
            ],
            [(entry, 60)],
        )
    res = CliRunner().invoke(main, ["--config", settings.file, "sql", "SELECT title FROM documents"])
    assert res.exit_code == 0, res.output  # "[/]" crashed the table (rich markup) before
    assert "[/] lukket [link=file:///etc/passwd]klikk[/link]" in res.output
    assert "\x1b" not in res.output and "\x07" not in res.output and "\r" not in res.output
    res = CliRunner().invoke(main, ["--config", settings.file, "sources"])
    assert res.exit_code == 0 and "skjult" in res.output and "\x1b" not in res.output, res.output


# -- the catalogue itself -------------------------------------------------------------------------------------


def test_catalogue_names_real_tests() -> None:
    """docs/reliability.md: at least 40 rows, each naming tests that exist (`file.py::name`, `…::name` for
    another test in the same file)."""
    root = Path(__file__).resolve().parent.parent
    doc = (root / "docs" / "reliability.md").read_text(encoding="utf-8")
    # The catalogue, then the sections of later rounds ("## Round two: …"), numbered on from it.
    catalogue = doc[doc.index("## Catalogue") : doc.index("## Security notes")]
    catalogue += "".join(part for part in doc.split("\n## ") if part.startswith("Round two"))
    rows = [line for line in catalogue.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) >= 40
    assert [int(r.split("|")[1]) for r in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        cells = row.split("|")
        refs = re.findall(r"`((?:[\w.]+\.py|…)::\w+)`", cells[3])
        assert refs, row
        current = None
        for ref in refs:
            file, name = ref.split("::")
            current = current if file == "…" else file
            assert current is not None, row
            source = (root / "tests" / current).read_text(encoding="utf-8")
            assert re.search(rf"^(?:def|class) {name}\b|^    def {name}\b", source, re.M), (
                f"{current}::{name}"
            )

"""`make demo`: serve the SYNTHETIC sample archive on 127.0.0.1, run the real pipeline into a separate demo
database (demo/out/, git-ignored), then write the weekly reports and the dashboard and print their paths.

    python demo/run.py [--out demo/out] [--reports 4]

Nothing here touches the real database or config: the demo writes its own config (demo/out/config.yaml, with
allow_private_addresses: true so the collectors may read 127.0.0.1) whose source ids all start with
'syntetisk-', which makes every report and the dashboard say, at the top, that the data is synthetic.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from datetime import datetime
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from serve import ARCHIVE, OSLO, DemoServer, fill_dates  # noqa: E402

from tonevakt import dates, pipeline  # noqa: E402
from tonevakt.config import load_config  # noqa: E402
from tonevakt.errors import TonevaktError  # noqa: E402
from tonevakt.reports import write_report  # noqa: E402
from tonevakt.reports.dashboard import write_dashboard  # noqa: E402

REPO = HERE.parent


def demo_config(base: str, main_config: Path) -> dict[str, object]:
    """The demo's config: the project's relevance query, topics and regions; synthetic sources on 127.0.0.1."""
    real = yaml.safe_load(main_config.read_text(encoding="utf-8"))
    src = [
        {
            "id": "syntetisk-nrk-trondelag",
            "name": "NRK Trøndelag (syntetisk)",
            "kind": "rss",
            "voice": "media",
            "region": "trondelag",
            "url": f"{base}/feeds/nrk-trondelag.xml",
        },
        {
            "id": "syntetisk-nrk-more-og-romsdal",
            "name": "NRK Møre og Romsdal (syntetisk)",
            "kind": "rss",
            "voice": "media",
            "region": "more_og_romsdal",
            "url": f"{base}/feeds/nrk-mr.xml",
            "full_text": "never",
        },
        {
            "id": "syntetisk-adresseavisen",
            "name": "Adresseavisen (syntetisk)",
            "kind": "rss",
            "voice": "media",
            "region": "trondelag",
            "url": f"{base}/feeds/adressa.xml",
            "paywalled": True,
            "full_text": "never",
        },
        {
            "id": "syntetisk-sunnmorsposten",
            "name": "Sunnmørsposten (syntetisk)",
            "kind": "rss",
            "voice": "media",
            "region": "more_og_romsdal",
            "url": f"{base}/feeds/smp.xml",
            "paywalled": True,
            "full_text": "never",
        },
        {
            "id": "syntetisk-legeforeningen",
            "name": "Legeforeningen (syntetisk)",
            "kind": "web",
            "voice": "union",
            "url": f"{base}/pages/legeforeningen/",
            "include": "/pages/legeforeningen/nyheter/",
        },
        {
            "id": "syntetisk-sykepleierforbundet",
            "name": "Sykepleierforbundet (syntetisk)",
            "kind": "web",
            "voice": "union",
            "url": f"{base}/pages/sykepleierforbundet/",
            "include": "/pages/sykepleierforbundet/nyheter/",
        },
        {
            "id": "syntetisk-fagforbundet",
            "name": "Fagforbundet (syntetisk, finnes ikke i arkivet)",
            "kind": "web",
            "voice": "union",
            "url": f"{base}/pages/fagforbundet/",
            "include": "/pages/fagforbundet/nyheter/",
        },
        {
            "id": "syntetisk-helse-midt-norge",
            "name": "Helse Midt-Norge (syntetisk)",
            "kind": "web",
            "voice": "official",
            "url": f"{base}/pages/helse-midt-norge/",
            "include": "/pages/helse-midt-norge/nyheter/",
            "relevance": "always",
        },
        {
            "id": "syntetisk-helsami-appstore",
            "name": "HelsaMi, App Store (syntetisk)",
            "kind": "appstore",
            "voice": "patient",
            "app_id": "1",
            "url": f"{base}/appstore/page{{page}}.json",
            "max_pages": 3,
            "relevance": "always",
        },
        {
            "id": "syntetisk-tilbakemeldinger",
            "name": "Tilbakemeldingsskjema (syntetisk)",
            "kind": "files",
            "voice": "patient",
            "path": "inbox",
            "relevance": "always",
            "columns": {"text": "text", "title": "title", "published_at": "date", "rating": "rating"},
        },
    ]
    return {
        "database": {
            "path": "demo.duckdb",
            "snapshot": "demo-analyst.duckdb",
            "exports": "exports",
            "lock_timeout_s": 30,
        },
        "http": {
            "allow_private_addresses": True,
            "per_host_interval_s": 0,
            "respect_robots": False,
            "user_agent": "Tonevakt-demo/0.1",
        },
        "relevance": real["relevance"],
        "topics": real["topics"],
        "regions": real["regions"],
        "sources": src,
        "sentiment": real.get("sentiment", {}),
        "report": {
            "out_dir": "reports",
            "dashboard_dir": "reports/dashboard",
            "weeks": 12,
            "min_n": 5,
            "baseline_weeks": 8,
            "spike_factor": 2.0,
            "tone_drop": 0.2,
            "pdf": True,
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--out", type=Path, default=HERE / "out", help="demo folder (wiped first; default demo/out)"
    )
    ap.add_argument(
        "--reports", type=int, default=4, help="weekly reports to write, newest first (default 4)"
    )
    ap.add_argument(
        "--config", type=Path, default=REPO / "config.yaml", help="take relevance/topics/regions from here"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    out: Path = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)
    (out / "inbox").mkdir(parents=True)
    today = datetime.now(OSLO).date()
    for f in (ARCHIVE / "inbox").iterdir():
        (out / "inbox" / f.name).write_text(
            fill_dates(f.read_text(encoding="utf-8"), today), encoding="utf-8"
        )

    try:
        with DemoServer(today=today) as srv:
            cfg = demo_config(srv.base, args.config)
            (out / "config.yaml").write_text(
                "# Tonevakt DEMO configuration (SYNTHETIC data, written by demo/run.py; safe to delete).\n"
                + yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False),
                encoding="utf-8",
            )
            settings = load_config(out / "config.yaml")
            print(f"demo: serving the synthetic archive on {srv.base}; database {settings.db_path}")
            summary = pipeline.run_once(settings)
        print(f"demo: {summary.line()}")
        for sid, reason in summary.failures:
            print(f"demo: source failed (on purpose for the health section): {sid}: {reason}")
        last = dates.last_complete_week()
        written = [
            write_report(settings, dates.shift_week(last, -i)) for i in range(args.reports - 1, -1, -1)
        ]
        board = write_dashboard(settings)
    except TonevaktError as e:
        print(f"demo failed: {e}", file=sys.stderr)
        return 1
    print("\nSYNTETISKE DEMODATA – the demo is ready:")
    print(f"  report    {written[-1].html}")
    if written[-1].pdf:
        print(f"  pdf       {written[-1].pdf}")
    print(f"  figures   {written[-1].figures_csv}  {written[-1].json}")
    print(f"  dashboard {board}")
    print(
        f'  database  {settings.db_path}  (tonevakt --config {out / "config.yaml"} sql "SELECT * FROM weekly_tone")'
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

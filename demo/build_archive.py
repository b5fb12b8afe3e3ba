"""Build demo/archive/: a SYNTHETIC sample archive for `make demo` (feeds, web pages, App Store JSON, a
feedback CSV). Every text is invented; nothing describes real events or real people.

Dates are written as placeholders, @@DATE:<weeks back>:<weekday 0-6>:<HHMM>:<rfc822|iso>@@, which the demo
server (demo/serve.py) fills in relative to the current ISO week when it serves a file, so the sample always
covers the 14 weeks before today. Run `python demo/build_archive.py` to rebuild the archive (deterministic).
"""

from __future__ import annotations

import json
import random
import shutil
from html import escape
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

ROOT = Path(__file__).resolve().parent / "archive"
WEEKS = 14
NOTE = "SYNTETISKE DEMODATA – oppdiktet for å vise Tonevakt; ingenting her beskriver virkelige hendelser."

HOSPITALS = [
    "St. Olavs hospital",
    "Ålesund sjukehus",
    "Molde sjukehus",
    "Kristiansund sjukehus",
    "Levanger sykehus",
    "Namsos sykehus",
    "Volda sjukehus",
    "Orkdal sykehus",
]
TOWNS_T = ["Trondheim", "Levanger", "Namsos", "Steinkjer", "Orkdal"]
TOWNS_M = ["Ålesund", "Molde", "Kristiansund", "Volda"]

MEDIA = {
    "neg": [
        (
            "Nye forsinkelser med Helseplattformen ved {h}",
            "Ansatte ved {h} melder om lange ventetider etter at Helseplattformen igjen var ustabil. Flere "
            "avdelinger måtte gå over til papir, og tillitsvalgte advarer om at pasientsikkerheten er truet.",
        ),
        (
            "Helseplattformen kan koste {n} millioner kroner mer enn planlagt",
            "En ny gjennomgang viser at Helseplattformen blir langt dyrere enn budsjettert. Kommunene i "
            "{town} frykter kutt i andre tjenester for å dekke overskridelsene.",
        ),
        (
            "Fastleger i {town} melder om feil i Helseplattformen",
            "Fastlegene sier at prøvesvar forsvinner og at meldinger fra sykehuset kommer for sent. – Dette er "
            "alvorlig og går ut over pasientene, sier en lege som har fått nok av Helseplattformen.",
        ),
        (
            "Nedetid i Helseplattformen rammet {h} i natt",
            "Helseplattformen var nede i flere timer. Sykepleierne måtte dokumentere for hånd, og flere "
            "operasjoner ble utsatt. Det er tredje gang på kort tid at systemet svikter.",
        ),
        (
            "Tillitsvalgte: Helseplattformen sliter ut de ansatte ved {h}",
            "Overtid og frustrasjon preger hverdagen. De tillitsvalgte mener ledelsen undervurderer hvor "
            "krevende Helseplattformen er, og krever flere folk på vakt.",
        ),
    ],
    "neu": [
        (
            "Ny tidsplan for Helseplattformen i Møre og Romsdal",
            "Helse Møre og Romsdal legger fram en justert plan for innføringen av Helseplattformen. Styret "
            "skal behandle saken neste uke, og kommunene får informasjon på et møte i {town}.",
        ),
        (
            "Slik skal Helseplattformen innføres i {town}",
            "Kommunen forklarer hvordan overgangen til Helseplattformen skal skje, hvilke tjenester som "
            "berøres først, og hvor innbyggerne kan få hjelp med HelsaMi.",
        ),
        (
            "Styret i Helse Midt-Norge behandler Helseplattformen",
            "Styret får en orientering om status for Helseplattformen, med tall for drift, kostnader og "
            "opplæring. Saken er offentlig og kan følges direkte.",
        ),
    ],
    "pos": [
        (
            "Pasienter i {town} roser HelsaMi",
            "Flere pasienter forteller at det er enkelt å se timer, prøvesvar og journal i HelsaMi. – Jeg "
            "slipper å ringe sykehuset, og det er en stor lettelse, sier en fornøyd bruker.",
        ),
        (
            "Færre feil i Helseplattformen etter oppdateringen ved {h}",
            "Den siste oppdateringen av Helseplattformen har ført til færre feil og raskere skjermbilder. "
            "Ansatte ved {h} sier arbeidsdagen har blitt bedre, og ventetiden for pasientene er kortere.",
        ),
        (
            "Sykepleiere: Helseplattformen har blitt mye bedre",
            "Etter en tung start sier sykepleierne at Helseplattformen nå fungerer godt i det daglige. "
            "Opplæringen har hjulpet, og de er glade for at all informasjon er samlet på ett sted.",
        ),
    ],
}

UNION = {
    "neg": [
        (
            "Legeforeningen krever uavhengig gransking av Helseplattformen",
            "Legeforeningen mener Helseplattformen fortsatt truer pasientsikkerheten og krever en uavhengig "
            "gransking. Legene bruker for mye tid på systemet og for lite tid på pasientene.",
        ),
        (
            "Legeforeningen: Legene ved {h} mister tid til pasientene",
            "Tillitsvalgte leger ved {h} forteller om dokumentasjon til langt på kveld. Legeforeningen mener "
            "Helseplattformen må forenkles før flere sykehus tar den i bruk.",
        ),
        (
            "Legeforeningen advarer mot innføring av Helseplattformen i {town}",
            "Legeforeningen ber om at innføringen utsettes til feilene i Helseplattformen er rettet. Fastlegene i "
            "{town} har meldt om manglende epikriser og uklare ansvarsforhold.",
        ),
        (
            "Sykepleierforbundet: Pasientsikkerheten ved {h} er truet",
            "NSF har fått flere avviksmeldinger om feil i legemiddelmodulen i Helseplattformen. Forbundet krever "
            "at ledelsen ved {h} setter inn tiltak straks.",
        ),
        (
            "NSF krever kompensasjon for overtid etter Helseplattformen",
            "Sykepleierne har jobbet tusenvis av overtidstimer siden Helseplattformen kom. Forbundet krever at "
            "arbeidsgiver kompenserer og rydder i turnusene i {town}.",
        ),
        (
            "Sykepleierforbundet: Arbeidspresset med Helseplattformen er for høyt",
            "Norsk Sykepleierforbund får daglig meldinger fra medlemmer som er slitne. Helseplattformen gir "
            "mer dobbeltarbeid, og forbundet ber arbeidsgiver sette inn flere ressurser.",
        ),
    ],
    "neu": [
        (
            "NSF deltar i ny arbeidsgruppe om Helseplattformen",
            "Norsk Sykepleierforbund har fått to plasser i en arbeidsgruppe som skal se på rutinene i "
            "Helseplattformen ved {h}. Gruppen skal levere en rapport i vår.",
        ),
        (
            "Legeforeningen møter Helse Midt-Norge om Helseplattformen",
            "Legeforeningen og Helse Midt-Norge har hatt et møte om videre forbedringer av Helseplattformen. "
            "Partene skal møtes igjen etter jul.",
        ),
    ],
    "pos": [
        (
            "Legeforeningen: Endelig fungerer Helseplattformen bedre ved {h}",
            "Legene ved {h} melder at nye skjermbilder i Helseplattformen sparer tid. Legeforeningen er glad "
            "for at innspillene fra de tillitsvalgte er tatt på alvor.",
        ),
        (
            "NSF: Bedre opplæring i Helseplattformen gir resultater",
            "Sykepleierforbundet ser at den nye opplæringen i Helseplattformen virker. Medlemmene rapporterer "
            "færre problemer og bedre samarbeid med IT-avdelingen.",
        ),
    ],
}

OFFICIAL = [
    (
        "Helseplattformen: stabil drift siste uke",
        "Helseplattformen har hatt stabil drift, og antall feilmeldinger går ned. Vi takker de ansatte for "
        "innsatsen og fortsetter arbeidet med forbedringer.",
    ),
    (
        "Ny versjon av HelsaMi er lansert",
        "Den nye versjonen av HelsaMi gjør det enklere å bestille time og lese journalen. Pasientene kan nå "
        "også sende meldinger til fastlegen direkte i appen.",
    ),
    (
        "Status for innføringen av Helseplattformen i Møre og Romsdal",
        "Arbeidet med Helseplattformen i Helse Møre og Romsdal går etter planen. Opplæringen av ansatte i "
        "Ålesund og Molde starter i neste måned.",
    ),
]

# Reviews and feedback are put together from three independent parts, so that no two read the same.
REVIEW_PARTS = {
    "good": (
        [
            "Endelig kan jeg se prøvesvarene mine selv.",
            "HelsaMi er enkel og oversiktlig.",
            "Bestilte time på to minutter.",
            "Fin oversikt over timer og journal.",
            "Meldingen til fastlegen ble besvart samme dag.",
            "Innkallingen kom rett i appen.",
        ],
        [
            "Veldig fornøyd!",
            "Anbefales.",
            "Mye bedre enn før.",
            "Dette sparer meg for mange telefoner.",
            "Takk til dem som har laget den.",
            "Stor lettelse for oss som har mange timer.",
        ],
        [
            "Bruker den på {device}.",
            "Etter versjon {v} går alt raskt.",
            "Brukt den i {months} måneder nå.",
            "Har hjulpet meg mye med {thing}.",
            "Funker fint også for min mor på {age}.",
            "Logget inn med BankID uten problemer.",
        ],
    ),
    "mixed": (
        [
            "HelsaMi fungerer stort sett bra.",
            "Nyttig å kunne lese journalen.",
            "Greit nok, men litt rotete meny.",
            "Appen virker, men varslene kommer sent.",
            "Grei app, men treg innlogging.",
        ],
        [
            "Jeg finner ikke alltid det jeg leter etter.",
            "Kunne vært enklere å finne prøvesvar.",
            "Skriften er liten.",
            "Noen ganger må jeg logge inn to ganger.",
        ],
        ["Bruker den på {device}.", "Versjon {v}.", "Brukt den i {months} måneder.", "Mest for {thing}."],
    ),
    "bad": (
        [
            "HelsaMi logger meg ut hele tiden.",
            "Får ikke logget inn i HelsaMi.",
            "Prøvesvarene kommer ikke fram.",
            "Meldingen til legen forsvant.",
            "Appen krasjer når jeg åpner journalen.",
            "Timen min var borte fra oversikten.",
        ],
        [
            "Helt ubrukelig når man er syk og trenger svar.",
            "Dette er ikke godt nok.",
            "Irriterende.",
            "Måtte ringe sykehuset likevel.",
            "Har prøvd å installere på nytt uten hell.",
        ],
        [
            "Bruker den på {device}.",
            "Versjon {v}.",
            "Skjedde igjen nå i {month}.",
            "Gjelder {thing}.",
            "Har klaget før.",
        ],
    ),
}
FEEDBACK_TITLES = {
    "good": ["Godt møtt", "Takk", "Trygt", "Fornøyd"],
    "mixed": ["Forvirrende", "Ventetid"],
    "bad": ["Feil i innkalling", "Ventetid", "Problemer med HelsaMi"],
}
DETAILS = {
    "device": ["iPhone", "iPad", "en gammel telefon"],
    "v": ["3.1", "3.2", "3.3", "3.4"],
    "months": ["to", "tre", "seks", "ti"],
    "thing": ["timebestilling", "prøvesvar", "meldinger", "journalinnsyn"],
    "age": ["23", "37", "45", "58", "67", "78", "84"],
    "kids": ["to", "tre", "fire"],
    "freq": ["hver uke", "et par ganger i måneden", "nesten daglig", "før hver time", "av og til"],
    "town": TOWNS_T + TOWNS_M,
    "month": ["august", "september", "oktober", "november"],
}


WHO = [
    "Jeg er {age} år og bruker appen {freq}.",
    "Vi er en familie med {kids} barn som bruker den {freq}.",
    "Jeg har en kronisk sykdom og sjekker {thing} {freq}.",
    "Som pårørende bruker jeg den {freq}.",
    "Jobber selv i helsevesenet, men bruker den som pasient {freq}.",
    "Bor i {town} og har lang vei til sykehuset.",
]


def compose(rng: random.Random, kind: str) -> str:
    first, second, third = REVIEW_PARTS[kind]
    detail = rng.choice(third).format(**{k: rng.choice(v) for k, v in DETAILS.items()})
    who = rng.choice(WHO).format(**{k: rng.choice(v) for k, v in DETAILS.items()})
    return f"{rng.choice(first)} {rng.choice(second)} {detail} {who}"


def stars_kind(stars: int) -> str:
    return "good" if stars >= 4 else "mixed" if stars == 3 else "bad"


CONTEXT = [
    "{person} sier at saken følges tett de neste ukene.",
    "Ifølge en intern oversikt gjelder det rundt {n} pasienter.",
    "Saken ble tatt opp på et allmøte {day}.",
    "Det er {k}. gang i høst at saken er oppe.",
    "{person} ønsker ikke å kommentere saken utover dette.",
    "Direktøren skal orientere styret om saken {day}.",
    "Kommunestyret i {town} har bedt om en skriftlig redegjørelse.",
    "Avdelingen har {n} ansatte og tar imot pasienter fra hele regionen.",
    "En brukerrepresentant sier at pasientene må bli hørt.",
    "Helse Midt-Norge viser til at forbedringsarbeidet pågår.",
]
PEOPLE = [
    "Klinikksjefen",
    "Hovedtillitsvalgt Kari Nordmann",
    "Kommuneoverlegen",
    "Seksjonslederen",
    "Pressevakten",
    "Fagdirektøren",
    "Verneombudet",
]
DAYS = ["mandag", "tirsdag", "onsdag", "torsdag", "fredag"]


def vary(text: str, rng: random.Random, region: str, count: int = 2) -> str:
    """Context sentences drawn at random: stories on one template still read as different stories."""
    towns = TOWNS_T if region == "trondelag" else TOWNS_M
    extra = [
        c.format(
            person=rng.choice(PEOPLE),
            n=rng.randrange(40, 900),
            day=rng.choice(DAYS),
            k=rng.randrange(2, 6),
            town=rng.choice(towns),
        )
        for c in rng.sample(CONTEXT, count)
    ]
    return " ".join([text, *extra])


def date(weeks_back: int, weekday: int, hhmm: str, form: str) -> str:
    return f"@@DATE:{weeks_back}:{weekday}:{hhmm}:{form}@@"


def fill(text: str, rng: random.Random, region: str) -> str:
    towns = TOWNS_T if region == "trondelag" else TOWNS_M
    hospitals = HOSPITALS[:1] + HOSPITALS[4:] if region == "trondelag" else HOSPITALS[1:4] + HOSPITALS[6:7]
    return text.format(h=rng.choice(hospitals), town=rng.choice(towns), n=rng.choice([150, 300, 450, 800]))


def mood(rng: random.Random, weeks_back: int, voice: str) -> str:
    """Tone drifts: media and unions turn more negative in the last complete week (a spike), patients stay
    mostly positive."""
    if voice == "media":
        weights = (0.75, 0.15, 0.10) if weeks_back == 1 else (0.40, 0.30, 0.30)
    else:
        weights = (0.6, 0.25, 0.15)
    return rng.choices(["neg", "neu", "pos"], weights=weights)[0]


def rss(title: str, link: str, items: list[dict[str, str]]) -> str:
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0"><channel>',
        f"<title>{xml_escape(title)}</title>",
        f"<link>{xml_escape(link)}</link>",
        f"<description>{xml_escape(NOTE)}</description>",
        "<language>nb</language>",
    ]
    for it in items:
        out.append(
            f"<item><title>{xml_escape(it['title'])}</title><link>{xml_escape(it['link'])}</link>"
            f"<guid>{xml_escape(it['link'])}</guid><pubDate>{it['date']}</pubDate>"
            f"<description>{xml_escape(it['summary'])}</description></item>"
        )
    out.append("</channel></rss>")
    return "\n".join(out) + "\n"


def article_page(site: str, title: str, when: str, paragraphs: list[str]) -> str:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    return (
        '<!DOCTYPE html><html lang="nb"><head><meta charset="utf-8">'
        f"<title>{escape(title)} – {escape(site)}</title>"
        f'<meta property="article:published_time" content="{when}">'
        f'<meta name="description" content="{escape(NOTE)}"></head><body>'
        f"<header><p><strong>{escape(site)}</strong> · {escape(NOTE)}</p></header>"
        f'<main><article><h1>{escape(title)}</h1><time datetime="{when}">{when}</time>{body}</article></main>'
        "<footer><p>Syntetisk demoside for Tonevakt.</p></footer></body></html>\n"
    )


def build() -> None:
    rng = random.Random(2026)
    if ROOT.exists():
        shutil.rmtree(ROOT)
    for sub in ("feeds", "pages", "appstore", "inbox"):
        (ROOT / sub).mkdir(parents=True)
    base = "@@BASE@@"  # the server's own address, filled in when served

    # -- media feeds (NRK Trøndelag has article pages; the paywalled papers give title and lead only) ----
    feeds: dict[str, list[dict[str, str]]] = {k: [] for k in ("nrk-trondelag", "nrk-mr", "adressa", "smp")}
    for wb in range(WEEKS, 0, -1):
        extra = 12 if wb == 1 else 0  # a busy last week: the report opens with a volume alert
        plan = [("nrk-trondelag", "trondelag")] * (2 + extra // 2) + [("nrk-mr", "more_og_romsdal")] * (
            3 + extra // 3
        )
        plan += [("adressa", "trondelag"), ("adressa", "trondelag"), ("smp", "more_og_romsdal")]
        for k, (feed, region) in enumerate(plan):
            title, text = rng.choice(MEDIA[mood(rng, wb, "media")])
            title, text = fill(title, rng, region), vary(fill(text, rng, region), rng, region, 3)
            day, hhmm = rng.randrange(7), f"{rng.randrange(6, 22):02d}{rng.choice(['00', '15', '30', '45'])}"
            slug = f"{feed}-{WEEKS - wb:02d}-{k}"
            link = f"{base}/pages/{feed}/{slug}.html"
            lead = text.split(". ")[0] + "." if feed == "nrk-trondelag" else text  # full text on the page
            feeds[feed].append(
                {"title": title, "link": link, "date": date(wb, day, hhmm, "rfc822"), "summary": lead}
            )
            # syndicated: every third NRK Møre og Romsdal story also runs in Sunnmørsposten, hours later
            if feed == "nrk-mr" and k % 3 == 0:
                later = f"{min(int(hhmm[:2]) + 2, 23):02d}{hhmm[2:]}"
                feeds["smp"].append(
                    {
                        "title": title,
                        "link": f"{base}/pages/smp/{slug}-kopi.html",
                        "date": date(wb, day, later, "rfc822"),
                        "summary": text,
                    }
                )
            if feed == "nrk-trondelag":
                (ROOT / "pages" / feed).mkdir(exist_ok=True)
                (ROOT / "pages" / feed / f"{slug}.html").write_text(
                    article_page("NRK Trøndelag (syntetisk)", title, date(wb, day, hhmm, "iso"), [text]),
                    encoding="utf-8",
                )
        # one story a week that is not about Helseplattformen: the relevance filter drops it
        feeds["nrk-trondelag"].append(
            {
                "title": "Rosenborg vant på Lerkendal",
                "link": f"{base}/pages/sport/{wb}.html",
                "date": date(wb, 5, "2000", "rfc822"),
                "summary": "Fotball: seier i siste hjemmekamp.",
            }
        )
    names = {
        "nrk-trondelag": "NRK Trøndelag",
        "nrk-mr": "NRK Møre og Romsdal",
        "adressa": "Adresseavisen",
        "smp": "Sunnmørsposten",
    }
    for feed, items in feeds.items():
        (ROOT / "feeds" / f"{feed}.xml").write_text(
            rss(f"{names[feed]} – SYNTETISK DEMO", f"{base}/feeds/{feed}.xml", items), encoding="utf-8"
        )

    # -- union and official news pages (listing + articles) ----------------------------------------------
    sites = {
        "legeforeningen": ("Legeforeningen (syntetisk)", UNION, 1),
        "sykepleierforbundet": ("Sykepleierforbundet (syntetisk)", UNION, 1),
        "helse-midt-norge": ("Helse Midt-Norge (syntetisk)", None, 1),
    }
    for site, (name, pool, per_week) in sites.items():
        links = []
        (ROOT / "pages" / site / "nyheter").mkdir(parents=True)
        for wb in range(WEEKS, 0, -1):
            for k in range(per_week):
                if pool is None:
                    title, text = rng.choice(OFFICIAL)
                else:
                    key = mood(rng, wb, "union")
                    items = [
                        x for x in pool[key] if (site == "legeforeningen") == ("Legeforeningen" in x[0])
                    ] or pool[key]
                    title, text = rng.choice(items)
                region = rng.choice(["trondelag", "more_og_romsdal"])
                title, text = fill(title, rng, region), vary(fill(text, rng, region), rng, region, 3)
                day, hhmm = rng.randrange(5), f"{rng.randrange(8, 16):02d}00"
                slug = f"{WEEKS - wb:02d}-{k}"
                (ROOT / "pages" / site / "nyheter" / f"{slug}.html").write_text(
                    article_page(name, title, date(wb, day, hhmm, "iso"), [text]), encoding="utf-8"
                )
                links.append((f"{base}/pages/{site}/nyheter/{slug}.html", title))
        listing = "".join(f'<li><a href="{href}">{escape(t)}</a></li>' for href, t in reversed(links))
        (ROOT / "pages" / site / "index.html").write_text(
            f'<!DOCTYPE html><html lang="nb"><head><meta charset="utf-8"><title>{escape(name)} – nyheter</title>'
            f"</head><body><h1>{escape(name)}: nyheter</h1><p>{escape(NOTE)}</p><ul>{listing}</ul></body></html>\n",
            encoding="utf-8",
        )

    # -- App Store reviews (JSON feed form, two pages; page 1 starts with the app entry) ----------------
    entries = []
    for wb in range(WEEKS, 0, -1):
        for _ in range(5):
            stars = rng.choices([5, 4, 3, 2, 1], weights=(0.35, 0.2, 0.15, 0.15, 0.15))[0]
            text = compose(rng, stars_kind(stars))
            entries.append(
                {
                    "author": {"name": {"label": f"Syntetisk bruker {len(entries) + 1}"}},
                    "updated": {"label": date(wb, rng.randrange(7), f"{rng.randrange(7, 23):02d}10", "iso")},
                    "im:rating": {"label": str(stars)},
                    "im:version": {"label": rng.choice(["3.1", "3.2", "3.3"])},
                    "id": {"label": f"9{len(entries) + 1:05d}"},
                    "title": {"label": text.split(".")[0][:40]},
                    "content": {"label": text, "attributes": {"type": "text"}},
                }
            )
    entries.reverse()  # newest first, like the real feed
    app = {
        "im:name": {"label": "HelsaMi (syntetisk demo)"},
        "id": {"label": "https://apps.apple.com/no/app/id1"},
    }
    pages = [entries[:50], entries[50:]]
    for i, page in enumerate(pages, start=1):
        feed = {
            "feed": {
                "title": {"label": "HelsaMi – SYNTETISKE DEMOANMELDELSER"},
                "entry": ([app] if i == 1 else []) + page,
            }
        }
        (ROOT / "appstore" / f"page{i}.json").write_text(
            json.dumps(feed, ensure_ascii=False, indent=1), encoding="utf-8"
        )
    (ROOT / "appstore" / "page3.json").write_text(
        json.dumps({"feed": {"title": {"label": "tom side – SYNTETISK DEMO"}}}, ensure_ascii=False),
        encoding="utf-8",
    )

    # -- feedback forms (CSV export dropped into the inbox) ------------------------------------------------
    lines = ["date,title,text,rating"]
    for wb in range(WEEKS, 0, -1):
        for _ in range(3):
            rating = rng.choices([5, 4, 3, 2, 1], weights=(0.3, 0.25, 0.15, 0.15, 0.15))[0]
            kind = stars_kind(rating)
            title = rng.choice(FEEDBACK_TITLES[kind])
            text = (
                compose(rng, kind).replace("HelsaMi", "HelsaMi-appen", 1)
                + " Gjelder besøk ved "
                + rng.choice(HOSPITALS)
                + "."
            )
            hhmm = f"{rng.randrange(8, 20):02d}{rng.randrange(60):02d}"
            lines.append(f'{date(wb, rng.randrange(7), hhmm, "iso")},"{title}","{text}",{rating}')
    (ROOT / "inbox" / "tilbakemeldinger-syntetisk.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (ROOT / "README.md").write_text(
        "# Tonevakt demo archive — SYNTHETIC\n\n" + NOTE + "\n\nBuilt by `demo/build_archive.py`; served by "
        "`demo/serve.py` (dates are placeholders filled in relative to the current week).\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    build()
    print(f"wrote {sum(1 for p in ROOT.rglob('*') if p.is_file())} files into {ROOT}")

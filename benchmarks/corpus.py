"""A generated corpus of Norwegian news-length articles (about 600 words each) for the scoring benchmark.

Sentences are drawn with a fixed seed from pools: some about Helseplattformen (negative, neutral and positive
framing), most about unrelated local matters, as in a regional paper's article that mentions the system in
passing or as its subject.
"""

from __future__ import annotations

import random

HP_SENTENCES = [
    "Helseplattformen har ført til lengre ventetid for pasientene ved St. Olavs hospital, sier tillitsvalgte.",
    "Ansatte i Trondheim kommune forteller at Helseplattformen krever mye ekstra dokumentasjon hver dag.",
    "Ifølge Helse Midt-Norge vil Helseplattformen koste flere hundre millioner kroner mer enn planlagt.",
    "Legeforeningen advarer om at feil i Helseplattformen kan true pasientsikkerheten.",
    "Helsetilsynet har åpnet tilsyn etter flere uønskede hendelser knyttet til Helseplattformen.",
    "Innføringen av Helseplattformen i Helse Møre og Romsdal er utsatt til neste år.",
    "Pasienter sier at HelsaMi gjør det enklere å lese journalen og bestille time.",
    "Direktøren mener Helseplattformen nå fungerer bedre enn for et år siden.",
    "Flere fastleger i Molde opplever at meldinger fra sykehuset kommer raskere etter overgangen til Helseplattformen.",
    "Helseplattformen ble tatt i bruk i Trondheim i mai 2022 og omfatter nå flere kommuner i Trøndelag.",
    "Sykepleierne ved Ålesund sjukehus har fått ny opplæring i Helseplattformen denne høsten.",
    "Styret i Helseplattformen AS behandler den nye rapporten på et møte i neste uke.",
    "Mange pasienter er fornøyde med den nye appen HelsaMi, viser en undersøkelse.",
    "Fagforbundet krever at kommunene får mer støtte til arbeidet med Helseplattformen.",
    "Riksrevisjonen kritiserer styringen av prosjektet med Helseplattformen.",
]

OTHER_SENTENCES = [
    "Kommunestyret vedtok budsjettet etter en lang debatt tirsdag kveld.",
    "Den nye gang- og sykkelveien langs fjorden skal etter planen stå ferdig til sommeren.",
    "Været har vært ustabilt hele uken, og meteorologene venter mer regn i helgen.",
    "Rosenborg vant den viktige kampen mot Molde etter et sent mål på overtid.",
    "Ordføreren sier at skolen i bygda skal bestå i hvert fall de neste fem årene.",
    "Fergeselskapet melder om innstilte avganger på grunn av sterk vind.",
    "Butikken i sentrum har utvidet åpningstidene før jul.",
    "Elever ved videregående skole har laget en utstilling om lokalhistorie.",
    "Politiet ber bilister være ekstra forsiktige på glatte veier i morgentimene.",
    "Festivalen trakk rekordmange besøkende i år, ifølge arrangørene.",
    "Fylkeskommunen har lyst ut anbud på ny busstrasé mellom byen og flyplassen.",
    "Den lokale fotballklubben har fått ny trener, som kommer fra en klubb i Bergen.",
    "Prisene på strøm har steget kraftig i Midt-Norge den siste måneden.",
    "Biblioteket arrangerer lesestund for barn hver lørdag formiddag.",
    "Byggingen av det nye kulturhuset er forsinket med flere måneder.",
    "Bonden på gården har satset på økologisk melkeproduksjon i ti år.",
    "Næringsforeningen mener at sentrum trenger flere parkeringsplasser.",
    "Et nytt hotell med 150 rom skal bygges ved havna, melder utbyggeren.",
    "Skredfaren er økt i fjellet etter store snømengder de siste dagene.",
    "Innbyggerne i kommunen kan levere innspill til den nye arealplanen fram til fredag.",
    "Statsforvalteren har godkjent sammenslåingen av de to barnehagene.",
    "Turistforeningen har åpnet en ny hytte i fjellet, og den er allerede godt besøkt.",
    "Næringslivet i regionen melder om god ordreinngang etter sommeren.",
    "Kirken skal pusses opp for flere millioner kroner neste år.",
]

TITLES = [
    "Nye tall om Helseplattformen",
    "Dette skjedde i kommunestyret",
    "Ansatte slår alarm",
    "Pasientene er mer fornøyde",
    "Nytt fra regionen",
    "Utsettelse igjen",
]


def article(rng: random.Random, words: int = 600, hp_share: float = 0.12) -> tuple[str, str]:
    """(title, text) of about `words` words, in paragraphs of 3–5 sentences."""
    sentences: list[str] = []
    n_words = 0
    while n_words < words:
        pool = HP_SENTENCES if rng.random() < hp_share else OTHER_SENTENCES
        s = rng.choice(pool)
        sentences.append(s)
        n_words += len(s.split())
    if not any(s in HP_SENTENCES for s in sentences):  # every article is a relevant candidate
        sentences[rng.randrange(len(sentences))] = rng.choice(HP_SENTENCES)
    paragraphs, i = [], 0
    while i < len(sentences):
        k = rng.randint(3, 5)
        paragraphs.append(" ".join(sentences[i : i + k]))
        i += k
    return rng.choice(TITLES), "\n\n".join(paragraphs)


def corpus(n: int, seed: int = 20261125, words: int = 600) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [article(rng, words) for _ in range(n)]


def sentence_count(text: str) -> int:
    from tonevakt.nlp.passages import split_sentences

    return len(split_sentences(text))

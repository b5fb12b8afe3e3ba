"""Language of a document: 'nb', 'nn', 'en', 'da', 'sv', 'de', or 'und' (too short or unknown).

No network and no model: function words and frequent forms per language (a word listed for k languages
counts 1/k for each of them, so only distinctive words decide), plus character and ending cues for the
words no list knows (æ/ø against ä/ö, Nynorsk -leg/-ane/-heit, Danish -erne/-hed, Swedish -erna, ...).
The point is to keep Danish and Swedish from passing as Bokmål and to tell Nynorsk from Bokmål; the
accuracy on a labelled set written for the purpose is in tests/test_language.py and docs/model.md.
"""

from __future__ import annotations

import re
from collections import defaultdict

LANGUAGES: tuple[str, ...] = ("nb", "nn", "en", "da", "sv", "de")
UNDETERMINED = "und"
MIN_EVIDENCE = 1.0  # summed weight the winner needs; below it the text is 'und'
MAX_TOKENS = 600

_WORDS: dict[str, str] = {
    "nb": """
        og i det er som en et ei på til av for med har de ikke om men var jeg vi kan seg å den skal vil at fra
        ble blei blir hadde også så eller etter når mer nå bare noen noe hva hvordan hvorfor hvem hvor dette
        disse slik sånn mange få alle andre over under mellom uten siden fordi derfor hele helt meg deg oss dem
        deres hennes hans sin sitt sine sykehus sykehuset sykehusene pasient pasienten pasienter pasientene
        ansatte ansattes leger legene sykepleiere sykepleierne tjenesten tjenester helsetjenesten kommunen
        kommunene fortsatt fremdeles fikk gikk kommer gjør sier tror vet egen eget egne mye være vært blitt
        skulle kunne måtte burde enn hos mot gjennom ved inn ut opp ned igjen allerede kanskje aldri alltid
        ingen hver hverandre selv sammen samme flere første siste nye nytt ny stor store uke uker år dag dager
        tid gang ganger må bli får går ta gi se ser sa sagt jo nok vel altså likevel dessverre veldig ganske
        svært både enten hvis dersom mens da løsning løsningen systemet journal journalen problemer problemene
        feil kritikk kritikken innføringen hjelp hjelpe takk spørsmål vår vårt våre hjem bedre godt dårlig
        mer mest mye nesten lenge lang lange kort skrev skriver mener mente viser vist tatt gitt ting måte
        fått bruke bruker brukerne brukere mulig egentlig vanskelig heller henne ham timer time legen lege
        fastlegen pårørende avdeling avdelingen direktør styret regjeringen millioner milliarder kroner
        hun han finne ha søke kjøpe lage kjenne sende hente heter hvilken hvilke nei ja mann kvinne barn
        syk syke sykdom tilbake fram fremover mindre nemlig kun frem
        """,
    "nn": """
        og i det er som ein eit ei på til av for med har dei ikkje om men var eg me vi kan seg å den skal vil
        at frå vart blei blir hadde òg også så eller etter når meir no berre nokon noko nokre kva korleis
        kvifor kven kvar dette desse slik mange få alle andre over under mellom utan sidan fordi difor derfor
        heile heilt meg deg oss dykk deira hennar hans sin sitt sine sjukehus sjukehuset sjukehusa pasient
        pasienten pasientar pasientane tilsette tilsettes legar legane sjukepleiarar sjukepleiarane tenesta
        tenester helsetenesta helsetenestene kommunen kommunane framleis enno fekk gjekk kjem gjer seier trur
        veit eigen eige eigne mykje vere vore vorte skulle kunne måtte burde enn hjå mot gjennom ved inn ut opp
        ned att igjen allereie kanskje aldri alltid ingen inga kvarandre sjølv saman same fleire første siste
        nye nytt ny stor store veke veker år dag dagar tid gong gonger må bli få gå ta gje gjeve sjå ser sa
        sagt jo nok vel altså likevel dessverre veldig ganske svært både anten viss dersom medan då løysing
        løysinga systemet journal journalen problem problema feil kritikk kritikken innføringa hjelp hjelpe
        takk spørsmål vår vårt våre heim betre godt dårleg mest nesten lenge lang lange kort skreiv skriv meiner
        meinte viser vist teke gjeve ting måte fått bruke brukar brukarane brukarar mogleg eigentleg vanskeleg
        heller henne han timar time legen lege fastlegen pårørande avdeling avdelinga direktør styret
        regjeringa millionar milliardar kroner sjølve nokre nokon einaste endå framtida ikring kring
        """,
    "da": """
        og i det er som en et på til af for med har de ikke om men var jeg vi kan sig at fra blev bliver havde
        også så eller efter når mere nu bare nogle noget nogen hvad hvordan hvorfor hvem hvor dette disse sådan
        mange få alle andre over under mellem uden siden fordi derfor hele helt mig dig os dem deres hendes
        hans sin sit sine sygehus sygehuset sygehusene hospital hospitalet hospitaler hospitalerne patient
        patienten patienter patienterne ansatte læger lægerne læge lægen sygeplejersker sygeplejerskerne
        kommunen kommunerne stadig stadigvæk fik gik kommer gør siger tror ved egen eget egne meget være været
        blevet skulle kunne måtte burde end hos mod gennem ind ud op ned igen allerede måske aldrig altid ingen
        hver hinanden selv sammen samme flere første sidste nye nyt ny stor store uge uger år dag dage tid gang
        gange må blive får går tage give se ser sagde sagt jo nok vel altså alligevel desværre ret både enten
        hvis mens da løsning løsningen systemet journal journalen problemer problemerne fejl fejlene kritik
        kritikken indførelsen hjælp hjælpe tak spørgsmål vores vort jeres hjem bedre godt dårlig mest næsten
        længe lang lange kort skrev skriver mener mente viser vist taget givet ting måde fået bruge bruger
        brugerne brugere mulig egentlig svært vanskelig hellere hende ham timer lige kun rigtig rigtigt
        derefter endnu nemlig omkring regeringen millioner milliarder kroner region regionen borgere borgerne
        sige spørge læse køre vide lægge sætte finde have søge købe lave kende sende hente hedder jer mindre frem fremover tilbage
        sygdom syg syge hvorfor hvilken hvilke nej ja mand kvinde børn barn
        """,
    "sv": """
        och i det är som en ett på till av för med har de inte om men var jag vi kan sig att från blev blir
        hade också så eller efter när mer nu bara några något någon vad hur varför vem vart detta dessa sådan
        många få alla andra över under mellan utan sedan eftersom därför hela helt mig dig oss dem deras hennes
        hans sin sitt sina sjukhus sjukhuset sjukhusen patient patienten patienter patienterna anställda
        personalen läkare läkarna sjuksköterskor sjuksköterskorna kommunen kommunerna fortfarande fick gick
        kommer gör säger tror vet egen eget egna mycket vara varit blivit skulle kunna måste borde än hos mot
        genom vid in ut upp ner igen redan kanske aldrig alltid ingen inga varje varandra själv tillsammans
        samma fler flera första sista nya nytt ny stor stora vecka veckor år dag dagar tid gång gånger får går
        ta ge se ser sa sagt ju nog väl alltså ändå tyvärr väldigt ganska både antingen om medan då lösning
        lösningen systemet journal journalen problem problemen fel felen kritik kritiken införandet hjälp
        hjälpa tack fråga frågor vår vårt våra hem bättre bra dåligt mest nästan länge lång långa kort skrev
        skriver menar visar visat tagit gett saker sätt fått använda användare användarna möjligt egentligen
        svårt henne honom timmar finns fanns vården regionen invånare miljoner miljarder kronor också
        """,
    "de": """
        und der die das ist nicht ich wir sie es ein eine einen einem einer mit von zu den dem des auf für im
        in auch als an bei nach aus oder aber noch sehr wie kann können dass mehr schon nur wird werden wurde
        wurden hat haben hatte war sind sein diese dieser dieses alle viele keine kein man sich uns ihr ihre
        seine durch über unter zwischen ohne seit weil deshalb ganz mich dich mir dir krankenhaus krankenhäuser
        krankenhauses klinik patienten mitarbeiter ärzte arzt pflegekräfte immer nie jetzt hier dort heute
        gestern jahr jahre jahren tag tage tagen zeit mal neue neuen neues neu große großen gibt geht macht sagt
        sagte muss müssen soll sollen wollen will gut schlecht probleme problem fehler kritik einführung
        gesundheit system systems systeme millionen milliarden euro kronen region bereits wieder zum zur vom
        beim einem damit dabei sowie jedoch denn doch also etwa worden bisher
        """,
    "en": """
        the and of to a in is that it was for with not are this be have has on by from they we you i he she at
        as or but an will would can could should there their them his her its our your been were which what
        who when where why how all more most some no new system systems hospital hospitals patients patient
        staff nurses doctors record records health very also only just into about after before over than then
        so such these those many much one two first last year years week weeks day days time said says
        problems problem errors criticism app if do does did had out up because still already never always
        other others every since while however through between without again us me my him being well good bad
        million billion region record's electronic
        """,
}

# Frequent Bokmål words (the most frequent lower-case words of NoReC_sentence train that no list above has,
# minus a few shared with Danish or English): weak evidence, weight NB_EXTRA_WEIGHT each.
NB_EXTRA_WEIGHT = 0.25
_NB_EXTRA = """
    du denne litt før filmen gir beste langt spillet rundt står tar annet sett låter blant rett tillegg
    spiller faktisk gamle tidligere annen lett gjøre norsk verden skjermen kom først historien eksempel
    fire fungerer bak finnes lite laget historie hvert si bandet kjent handler ligger minst gode gjort
    serien plass føles stort liten slags samtidig komme ville akkurat musikk finner spesielt forhold
    imidlertid virker norske grunn fleste livet bør mennesker sitter minutter virkelig holder lar ofte
    unge folk spill eneste enda små la slett vei selvsagt telefonen fall musikken tallet bilder klart
    følger neste stedet gjorde albumet full skrevet klarer spille aller liker gjerne tiden satt tross
    foran gjelder største tydelig derimot vanlig riktig ute skjer trenger synes plate setter slutten
    holde videre ulike samt gangen ene viktig bruk én begynner møter scenen filmens forskjellige særlig
    lenger sette enkelt publikum kveld gammel uansett spennende forteller lever fremst snart inne filmer
    følelser høy låtene spilt tok ønsker rekke selve voksne stemme skrive større ekstra snakker
    amerikanske sanger nærmest versjonen hatt direkte basert forsøker skuespillere testet imponerende
    menn låt veien årene sesong øyeblikk meste verken versjon hånd lagt rette fort tro vite byr navn
    kommet kvinner best velge bærer familien skaper fantastisk nettopp klar løpet bilen merke tvil høyt
    sider måter lille absolutt interessant slutt skape holdt enkel rollen sjelden selvfølgelig nær følge
    tider utgangspunktet deler sterk valg tredje død roman amerikansk havner skjerm bilde alene sønn
    starter raskt senere ferd dessuten minner kjenner ung solid passe høres leverer årets begge fjor din
    filmene betyr romanen kjærlighet varme familie utmerket greit kameraet plassert regissør fremstår
    jobb perfekt naturlig snakke forsøk tilsynelatende mørke stemmer hjelper ingenting gått stund enkle
    hører boken åpenbart verdens teksten svart vise hodet følelse måten høre opplevelse sist relativt
    legger hundre seks landet fortelling vakre følelsen handlingen britiske mangler resten helst moderne
    dine sterke konserten kvalitet navnet barna scener knapper lys typisk maskinen steder prøver
    muligens min boksen føler fast kamera møte personlig legge boka skuespillerne krigen konsert
    inspirert tekst verdt dukker hjemme stykke mannen overbevisende tidlig politisk stå grep riktignok
    tekster enkelte ekte kampen bildene hvite stede felles hørt synger fjerde lyd språk utenfor våpen
    leve figurer serie disken kjente jobber menyen dermed galt krever penger tunge bort komedie talt bor
    indre manus dypt platen sangene underholdende foregår tenke spilte heldigvis års behov fortalt borte
    skolen prosent musikalsk bygger gitar inneholder sterkt døde forgjengeren voksen tilgjengelig kraft
    øvrig tempo evne trommer drar menneske bærbare overraskende lager fantastiske brukes valgt maten
    fint sak kraftig gjengen lese dårligere nærheten skikkelig opplever ellers bokstavelig
"""

# (compiled ending/character cue, {language: weight}) for every token, known or not.
_CUES: list[tuple[re.Pattern[str], dict[str, float]]] = [
    (re.compile(r"[æø]"), {"nb": 0.3, "nn": 0.3, "da": 0.3}),
    (re.compile(r"[äö]"), {"sv": 0.4, "de": 0.3}),
    (re.compile(r"[üß]"), {"de": 1.0}),
    (re.compile(r"øj"), {"da": 0.6}),
    (re.compile(r"øy"), {"nb": 0.2, "nn": 0.4}),
    (re.compile(r"\w{3,}leg$"), {"nn": 0.8}),
    (re.compile(r"\w{3,}lig$"), {"nb": 0.3, "da": 0.3, "sv": 0.3}),
    (re.compile(r"\w{3,}ane$"), {"nn": 0.6}),
    (re.compile(r"\w{3,}arar$"), {"nn": 0.8}),
    (re.compile(r"\w{3,}heit$"), {"nn": 0.8}),
    (re.compile(r"\w{3,}het$"), {"nb": 0.4, "sv": 0.3}),
    (re.compile(r"\w{3,}hed$"), {"da": 0.6}),
    (re.compile(r"\w{2,}heds\w"), {"da": 0.6}),
    (re.compile(r"\w{2,}igt$"), {"da": 0.5, "sv": 0.4}),
    (re.compile(r"\w{3,}ede$"), {"da": 0.3}),
    (re.compile(r"\w{3,}heden$"), {"da": 0.6}),
    (re.compile(r"\w{3,}erne$"), {"da": 0.35, "nb": 0.15}),
    (re.compile(r"^op[^p]\w{3,}"), {"da": 0.5}),
    (re.compile(r"^opp\w{3,}"), {"nb": 0.3, "nn": 0.3}),
    (re.compile(r"^ud\w{3,}"), {"da": 0.4}),
    (re.compile(r"\w{3,}erna$"), {"sv": 0.6}),
    (re.compile(r"\w{3,}ene$"), {"nb": 0.3, "nn": 0.1}),
    (re.compile(r"\w{3,}inga$"), {"nn": 0.5}),
    (re.compile(r"\w{3,}ingen$"), {"nb": 0.2, "da": 0.2, "sv": 0.1}),
    (re.compile(r"\w{2,}sjon(?:en|er|ene|ar|ane)?$"), {"nb": 0.4, "nn": 0.4}),
    (re.compile(r"\w{2,}tion$"), {"en": 0.3, "de": 0.2, "sv": 0.1, "da": 0.1}),
    (re.compile(r"\w{2,}tionen$"), {"sv": 0.3, "da": 0.3, "de": 0.2}),
    (re.compile(r"\w{2,}skab"), {"da": 0.6}),
    (re.compile(r"\w{2,}schaft"), {"de": 0.8}),
    (re.compile(r"sch"), {"de": 0.4}),
    (re.compile(r"\w{3,}ung(?:en)?$"), {"de": 0.5}),
    (re.compile(r"\w{3,}ing$"), {"en": 0.2, "nb": 0.1, "nn": 0.1, "da": 0.1, "sv": 0.1}),
    (re.compile(r"^th|th$"), {"en": 0.3}),
    (re.compile(r"\w{2,}ck"), {"sv": 0.2, "de": 0.2, "en": 0.2}),
    (re.compile(r"\w{3,}ed$"), {"en": 0.2, "da": 0.1}),
    (re.compile(r"\w{3,}ly$"), {"en": 0.5}),
]

_TOKEN_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;«»\"“”()\-–—]\s*)$")
NAME_WEIGHT = 0.3  # capitalised words inside a sentence are mostly names and titles (often English)


def _build_lexicon() -> dict[str, dict[str, float]]:
    where: dict[str, set[str]] = defaultdict(set)
    for lang, words in _WORDS.items():
        for w in words.split():
            where[w.casefold()].add(lang)
    lexicon = {w: {lang: 1.0 / len(langs) for lang in langs} for w, langs in where.items()}
    for w in _NB_EXTRA.split():
        lexicon.setdefault(w.casefold(), {"nb": NB_EXTRA_WEIGHT})
    return lexicon


_LEXICON = _build_lexicon()


def language_scores(text: str) -> dict[str, float]:
    """Evidence per language (summed weights); exposed for tests and diagnostics."""
    scores = dict.fromkeys(LANGUAGES, 0.0)
    for n, m in enumerate(_TOKEN_RE.finditer(text)):
        if n >= MAX_TOKENS:
            break
        raw = m.group(0)
        tok = raw.casefold()
        factor = 1.0
        if raw[0].isupper() and not _SENTENCE_START.search(text[max(0, m.start() - 3) : m.start()]):
            factor = NAME_WEIGHT
        for lang, weight in _LEXICON.get(tok, {}).items():
            scores[lang] += weight * factor
        for pattern, weights in _CUES:
            if pattern.search(tok):
                for lang, weight in weights.items():
                    scores[lang] += weight * factor
    return scores


def detect_language(text: str) -> str:
    """'nb', 'nn', 'en', 'da', 'sv', 'de', or 'und' for short or unrecognised text."""
    if not text or len(_TOKEN_RE.findall(text)) < 3:
        return UNDETERMINED
    scores = language_scores(text)
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], LANGUAGES.index(kv[0])))
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < MIN_EVIDENCE:
        return UNDETERMINED
    if top == second and best not in ("nb", "nn"):
        # A tie with Bokmål or Nynorsk on top goes to them (the order of LANGUAGES): the sources are
        # Norwegian, and a tie means no Danish or Swedish evidence either.
        return UNDETERMINED
    return best

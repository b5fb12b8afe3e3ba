"""Text from bytes whose encoding nobody declared: feedback files, and web pages without a charset.

One rule, used by `files.py` (CSV, JSON, JSONL) and `fulltext.decode_html` (after the HTTP and `<meta>`
charsets): a byte-order mark decides; bytes that are valid UTF-8 and hold no NUL are UTF-8; anything else is
left to charset-normalizer, limited to the encodings Norwegian feedback actually comes in (UTF-8, UTF-16 with
or without a byte-order mark, Windows-1252 and ISO-8859-1).

Hand-written parts stay where a side-by-side measurement (`benchmarks/bench_libraries.py`: five Norwegian
texts with æøå in UTF-8, UTF-8 with BOM, Windows-1252, ISO-8859-1, UTF-16 with and without BOM; 34 cases) shows
them better. charset-normalizer alone reads 25 of the 34 right, this function 34, the old fallback 24:
- the shortlist: choosing among all its code pages, charset-normalizer reads Windows-1252 Norwegian as
  Windows-1250 ("Dĺrlig") or UTF-16;
- no UTF-16 without a NUL byte (Norwegian text always holds ASCII, which UTF-16 writes with a zero byte):
  even on the shortlist a 6-byte Windows-1252 "Dårlig" comes out as UTF-16;
- the UTF-8 fast path: valid UTF-8 is the common case and certain (Windows-1252 æøå are never valid UTF-8);
  the detector misreads short UTF-8 ("Å gå på Øya") and is slower;
- UTF-16 by the place of the zero bytes where charset-normalizer finds nothing (short UTF-16 without BOM).
What charset-normalizer adds is UTF-16 without a byte-order mark, which the old fallback read as UTF-8 full
of NULs, and a reasoned choice between Windows-1252 and ISO-8859-1.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

from charset_normalizer import from_bytes

# Encodings a Norwegian spreadsheet, export or page plausibly comes in, in charset-normalizer's spelling.
CANDIDATES = ["utf_8", "utf_16_le", "utf_16_be", "cp1252", "latin_1"]
# Without a NUL byte UTF-16 is out: Norwegian text always holds ASCII (spaces, digits, most letters), which
# UTF-16 writes with a zero byte.
CANDIDATES_8BIT = ["utf_8", "cp1252", "latin_1"]

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # Python's codec name, e.g. "utf-8", "cp1252"
    guessed: bool  # True when neither a byte-order mark nor valid UTF-8 decided it


def decode_unlabelled(data: bytes) -> Decoded:
    """Decode bytes of unknown encoding (see the module docstring for the rule). Never raises."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return Decoded(data.decode(codec), codec, False)
            except UnicodeDecodeError:
                break  # a byte-order mark that the rest belies: guessed like the unmarked
    wide = b"\x00" in data
    if not wide:
        try:
            return Decoded(data.decode("utf-8"), "utf-8", False)
        except UnicodeDecodeError:
            pass
    best = from_bytes(data, cp_isolation=CANDIDATES if wide else CANDIDATES_8BIT).best()
    if best is not None:
        return Decoded(str(best), codecs.lookup(best.encoding).name, True)
    if wide and len(data) % 2 == 0:
        # charset-normalizer gives up on short UTF-16 ("Å gå på Øya"): ASCII puts its zero byte second in
        # little-endian, first in big-endian.
        codec = "utf-16-le" if data[1::2].count(0) >= data[0::2].count(0) else "utf-16-be"
        try:
            return Decoded(data.decode(codec), codec, True)
        except UnicodeDecodeError:
            pass
    # Nothing on the shortlist reads it without errors (e.g. bytes undefined in Windows-1252 in a short
    # input): ISO-8859-1 reads any byte.
    return Decoded(data.decode("latin-1"), "iso8859-1", True)

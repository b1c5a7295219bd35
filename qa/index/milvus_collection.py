"""One Milvus collection of chunks, and the connection to Milvus: the only module that
imports pymilvus.

One row per chunk: `id` (our stable chunk id), `doc_id`, `terms` (our own keyword tokens,
each one ASCII word: `qa.index.milvus_query`), `sparse` (BM25 of `terms`, computed by
Milvus), `vector`, and `date`/`source`/`category` for filters. The service reaches the
live collection through an alias (`qa.index.milvus_layout`).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient, MilvusException
from pymilvus.exceptions import ConnectionConfigException

from qa.config import MilvusConfig
from qa.errors import IndexDamagedError, QAError
from qa.index.milvus_query import ANALYZERS

__all__ = ["Collection", "MilvusClient", "MilvusException", "connect"]

logger = logging.getLogger(__name__)

# Rows per upsert or delete call: well under gRPC's message limit at 384 dimensions.
WRITE_BATCH = 512
VARCHAR = 4096
TERMS_CHARS = 65535


class Collection:
    """Searches, reads and writes of one collection (by its real name, not the alias)."""

    def __init__(self, client: MilvusClient, name: str, settings: MilvusConfig,
                 dimension: int):
        self.client = client
        self.name = name
        self.settings = settings
        self.dimension = dimension

    def create(self, analyzer: str) -> None:
        schema = self.client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=VARCHAR)
        schema.add_field("terms", DataType.VARCHAR, max_length=TERMS_CHARS,
                         enable_analyzer=True, analyzer_params=ANALYZERS[analyzer])
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dimension)
        for name in ("date", "source", "category"):
            schema.add_field(name, DataType.VARCHAR, max_length=VARCHAR)
        schema.add_function(Function(name="terms_bm25", function_type=FunctionType.BM25,
                                     input_field_names=["terms"], output_field_names=["sparse"]))
        index = self.client.prepare_index_params()
        index.add_index("vector", index_type=self.settings.index_type, metric_type="IP",
                        params=dict(self.settings.index_params))
        index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
        self.client.create_collection(self.name, schema=schema, index_params=index,
                                      consistency_level="Strong")

    def load(self) -> None:
        self.client.load_collection(self.name)

    def flush(self) -> None:
        """Seal the rows written so far into indexed segments. Measured on Milvus Lite
        (`scripts/milvus_flush_cost.py`): unflushed rows sit in growing segments that
        every search scans row by row (a CMRC pool of 3,358 chunks: 0.4-3 s a question
        per mode, 0.02-0.16 s once flushed), and a BM25 search restricted to some ids scored them
        lower than the full search did (flushed: the same scores). A server seals
        segments itself and limits how often a collection may be flushed, so a refused
        flush is only logged."""
        try:
            self.client.flush(self.name)
        except MilvusException as exc:
            logger.warning("Milvus did not flush %s (%s); searches stay correct, slower "
                           "until Milvus seals the rows itself", self.name, exc)

    def search(self, data: list[Any], field: str, k: int,
               expression: str) -> list[tuple[int, float]]:
        """(id, distance) hits of one query on the vector or the BM25 field."""
        params = ({"metric_type": "IP", "params": dict(self.settings.search_params)}
                  if field == "vector" else {"metric_type": "BM25"})
        try:
            hits = self.client.search(self.name, data=data, anns_field=field, limit=k,
                                      filter=expression, search_params=params)
        except MilvusException as exc:
            raise QAError(f"Milvus search failed: {exc}") from None
        return [(int(hit["id"]), float(hit["distance"])) for hit in hits[0]]

    def fetch_vectors(self, ids: list[int]) -> dict[int, np.ndarray]:
        rows = self.client.query(self.name, ids=[int(i) for i in ids],
                                 output_fields=["vector"])
        return {int(r["id"]): np.asarray(r["vector"], dtype=np.float32) for r in rows}

    def upsert(self, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), WRITE_BATCH):
            self.client.upsert(self.name, rows[start:start + WRITE_BATCH])

    def delete(self, ids: list[int]) -> None:
        for start in range(0, len(ids), WRITE_BATCH):
            self.client.delete(self.name, ids=ids[start:start + WRITE_BATCH])

    def delete_where(self, expression: str) -> None:
        self.client.delete(self.name, filter=expression)

    def ids(self, up_to: int) -> set[int]:
        """Every chunk id in the collection (for `qa check`), read in windows of ids up to
        `up_to` and then everything above it."""
        ids: set[int] = set()
        window = 10_000
        for low in range(0, up_to + 1, window):
            ids.update(self._ids(f"id >= {low} and id < {low + window}"))
        ids.update(self._ids(f"id >= {(up_to // window + 1) * window}"))
        return ids

    def _ids(self, expression: str) -> set[int]:
        rows = self.client.query(self.name, filter=expression, output_fields=["id"],
                                 limit=16_384)
        return {int(r["id"]) for r in rows}


def connect(settings: MilvusConfig) -> MilvusClient:
    """A client of the configured Milvus (Lite file or server)."""
    uri = settings.uri
    if "://" not in uri and not uri.endswith(".db"):
        raise QAError(f"milvus.uri {uri!r}: a Milvus Lite file must end in .db "
                      "(or give http://host:19530 for a server)")
    token = settings.token or os.environ.get("MILVUS_TOKEN", "")
    try:
        return MilvusClient(uri=uri, token=token) if token else MilvusClient(uri=uri)
    except ConnectionConfigException as exc:
        if "://" not in uri:
            raise IndexDamagedError(
                f"cannot open Milvus Lite at {uri} ({exc.message}); Milvus Lite serves one "
                "process at a time: stop the server (or send changes through its write API)"
            ) from None
        raise QAError(f"cannot connect to Milvus at {uri}: {exc.message}") from None
    except MilvusException as exc:
        raise QAError(f"cannot connect to Milvus at {uri}: {exc}") from None

"""Opening the Milvus index to change it: the live one (created empty if there is none),
or a new pair that a rebuild fills and then makes live. Both clean up first what an
interrupted rebuild left (`qa.index.milvus_layout`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from qa.config import Config, MilvusConfig
from qa.embedder import Embedder
from qa.errors import IndexMissingError
from qa.index.milvus_collection import connect
from qa.index.milvus_engine import MilvusEngine
from qa.index.milvus_layout import drop_index, remove_leftovers, writer_lock


@contextmanager
def writable_milvus(config: Config,
                    embedder: Callable[[], Embedder] | None) -> Iterator[MilvusEngine]:
    """The live index, created empty first if there is none (when a model is at hand to
    tell the dimension)."""
    try:
        engine = MilvusEngine(config)
    except IndexMissingError:
        if embedder is None:
            raise
        with writer_lock(config.milvus):
            engine = _build_clean(config, embedder().dimension)
            engine.go_live()
            engine._locked = False
    else:
        with writer_lock(config.milvus):
            remove_leftovers(engine.client, config.milvus)
    try:
        yield engine
    finally:
        engine.close()


@contextmanager
def fresh_milvus(config: Config, dimension: int,
                 wait_seconds: float = 30.0) -> Iterator[MilvusEngine]:
    """A new pair to fill in the block, made live when the block ends without an error;
    the old pair serves until then, and is dropped after. On an error the new pair is
    dropped and the old one keeps serving."""
    with writer_lock(config.milvus, wait_seconds=wait_seconds):
        engine = _build_clean(config, dimension)
        try:
            yield engine
        except BaseException:
            engine.discard()
            engine.close()
            raise
        try:
            engine.go_live()
        finally:
            engine.close()


def _build_clean(config: Config, dimension: int) -> MilvusEngine:
    """A new pair, once the leftovers of an interrupted rebuild are gone (lock held)."""
    client = MilvusEngine.client_for(config.milvus)
    try:
        remove_leftovers(client, config.milvus)
    except BaseException:
        client.close()
        raise
    return MilvusEngine.build(config, dimension, client)


def drop_milvus_index(settings: MilvusConfig) -> None:
    """Drop the configured index whole (a scratch index of `qa eval` on a server)."""
    client = connect(settings)
    try:
        drop_index(client, settings)
    finally:
        client.close()

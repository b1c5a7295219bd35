"""A saved approximate index is loaded memory-mapped, with later changes held beside it:
it must answer exactly as the same index held whole in memory, through adds, removals,
replacements, filters, a save that folds the changes in, and a reload (the engine side
is in test_ann.py)."""

from __future__ import annotations

import numpy as np
import pytest

from qa.index.mapped_ivf import MappedIvf
from qa.index.vectors import VectorIndex
from tests.test_ann import unit_vectors

COUNT = 3000
IDS = list(range(10, 10 + COUNT))


@pytest.fixture
def pair(tmp_path):
    """The same approximate index twice: built in memory, and saved then loaded mapped."""
    vectors = unit_vectors(COUNT)
    memory = VectorIndex.build(32, COUNT, lambda: [(IDS, vectors)], ann_min_chunks=1000)
    memory.save(tmp_path / "v.faiss")
    mapped = VectorIndex.load(tmp_path / "v.faiss")
    assert isinstance(mapped._index, MappedIvf) and mapped.kind == "approximate"
    return memory, mapped


def change_both(memory: VectorIndex, mapped: VectorIndex) -> None:
    """The same store changes applied to both, the way the engine applies them."""
    fresh = unit_vectors(300, seed=1)
    for index in (memory, mapped):
        assert index.remove(IDS[:100] + [99999]) == 100          # removed documents
        replaced = IDS[500:600]                                   # replaced: same ids
        assert index.remove(replaced) == 100
        index.add(replaced, fresh[:100])
        index.add(list(range(50_000, 50_200)), fresh[100:])       # new documents
        assert index.remove(list(range(50_000, 50_050))) == 50    # added, then removed
        assert index.remove(IDS[:10]) == 0                        # already gone


def assert_same_answers(memory: VectorIndex, mapped: VectorIndex) -> None:
    assert len(mapped) == len(memory)
    assert sorted(mapped.ids().tolist()) == sorted(memory.ids().tolist())
    held = sorted(memory.ids().tolist())
    queries = unit_vectors(20, seed=2)
    allowed = held[::7] + list(range(10, 60))  # some allowed ids were removed
    for query in queries:
        for kwargs in ({}, {"allowed": allowed}):
            expected = memory.search(query, 50, **kwargs)
            got = mapped.search(query, 50, **kwargs)
            assert [i for i, _ in got] == [i for i, _ in expected]
            np.testing.assert_allclose([s for _, s in got], [s for _, s in expected],
                                       rtol=0, atol=1e-6)
    some = held[::97]
    np.testing.assert_allclose(mapped.vectors(some), memory.vectors(some), atol=1e-6)


def test_a_mapped_index_with_changes_answers_as_the_index_in_memory(pair):
    memory, mapped = pair
    assert_same_answers(memory, mapped)
    change_both(memory, mapped)
    assert mapped._index._delta.ntotal == 250
    assert_same_answers(memory, mapped)
    # A vector added since the file was saved finds itself.
    fresh = unit_vectors(300, seed=1)
    assert mapped.search(fresh[150], 1)[0][0] == 50_050


def test_saving_folds_the_changes_into_a_file_that_maps_again(pair, tmp_path):
    memory, mapped = pair
    change_both(memory, mapped)
    mapped.save(tmp_path / "folded.faiss")
    reloaded = VectorIndex.load(tmp_path / "folded.faiss")
    assert reloaded._index._delta.ntotal == 0 and not len(reloaded._index._removed)
    assert_same_answers(memory, reloaded)
    # The reloaded one keeps changing like the others.
    for index in (memory, reloaded):
        index.remove(IDS[1000:1100])
    assert_same_answers(memory, reloaded)


"""The manifest check: an index is refused when it was built with other settings."""

from __future__ import annotations

import dataclasses

import pytest

from qa.errors import IndexMismatchError
from qa.index.manifest import check_manifest, expected_manifest


def test_a_changed_keyword_title_asks_for_a_rebuild(make_config):
    built = expected_manifest(make_config(), dimension=64)
    keywords_only = make_config(chunking={"embed_title": False})
    check_manifest(built, make_config(), dimension=64)
    with pytest.raises(IndexMismatchError, match="chunking.*qa index --rebuild"):
        check_manifest(built, make_config(chunking={"keyword_title": False}), dimension=64)
    with pytest.raises(IndexMismatchError, match="chunking"):
        check_manifest(built, keywords_only, dimension=64)
    check_manifest(expected_manifest(keywords_only, 64), keywords_only, dimension=64)


@pytest.mark.parametrize("embed_title", [True, False])
def test_a_manifest_from_before_keyword_title_reads_as_it_was_built(make_config,
                                                                     embed_title):
    """Before the setting, the keyword text held the title exactly when the model
    embedded it; such an index still opens with the settings that built it."""
    config = make_config(chunking={"embed_title": embed_title, "keyword_title": embed_title})
    old = expected_manifest(config, dimension=64)
    del old["chunking"]["keyword_title"]
    check_manifest(old, config, dimension=64)
    other = make_config(chunking={"embed_title": embed_title, "keyword_title": not embed_title})
    with pytest.raises(IndexMismatchError, match="keyword_title"):
        check_manifest(old, other, dimension=64)
    assert dataclasses.asdict(config.chunking)["keyword_title"] is embed_title

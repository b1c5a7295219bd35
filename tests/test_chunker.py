"""Chunker invariants, checked on generated documents with hypothesis."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qa.config import ChunkingConfig
from qa.ingest.chunker import chunk_document, embedding_text, keyword_text, split_paragraph
from qa.ingest.document import Block, Document
from qa.ingest.sentences import ends_sentence, sentence_spans

WORDS = ["宜宾", "白酒", "产业", "营业收入", "1600亿元", "京东", "数字化", "AI", "5G", "景德镇"]
ENDS = ["。", "！", "？", "；", "……", "。”", "，"]

sentence = st.builds(
    lambda words, end: "".join(words) + end,
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=40),
    st.sampled_from(ENDS),
)
paragraph = st.lists(sentence, min_size=1, max_size=12).map("".join)
block = st.one_of(
    paragraph.map(Block),
    st.sampled_from(["智享酒博", "数字产业"]).map(lambda t: Block(t, is_heading=True)),
)
documents = st.lists(block, min_size=1, max_size=15).map(
    lambda blocks: Document(doc_id="doc", path="doc.txt", blocks=tuple(blocks), title="标题")
)
chunk_settings = st.builds(
    ChunkingConfig,
    max_chars=st.integers(min_value=20, max_value=400),
    min_chars=st.integers(min_value=0, max_value=20),
)


@settings(max_examples=300, deadline=None)
@given(documents, chunk_settings)
def test_offsets_point_exactly_at_the_chunk_text(document, settings_):
    text = document.text
    for chunk in chunk_document(document, settings_):
        assert text[chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.text.strip() == chunk.text and chunk.text


@settings(max_examples=300, deadline=None)
@given(documents, chunk_settings)
def test_chunks_cover_every_paragraph_once_in_order_and_never_a_heading(document, settings_):
    chunks = chunk_document(document, settings_)
    covered = "".join(chunk.text.replace("\n", "") for chunk in chunks)
    body = "".join(b.text for b in document.blocks if not b.is_heading)
    assert covered == body
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert before.char_end <= after.char_start
    headings = {b.text for b in document.blocks if b.is_heading}
    assert not any(chunk.text in headings for chunk in chunks)


@settings(max_examples=300, deadline=None)
@given(documents, chunk_settings)
def test_chunks_respect_the_maximum_and_record_paragraph_and_section(document, settings_):
    spans = document.block_spans()
    numbers = document.paragraph_numbers()
    for chunk in chunk_document(document, settings_):
        assert len(chunk.text) <= settings_.max_chars
        where = next(i for i, (s, e) in enumerate(spans) if s <= chunk.char_start < e)
        assert numbers[where] == chunk.paragraph
        headings_before = [b.text for b in document.blocks[:where] if b.is_heading]
        assert chunk.section == (headings_before[-1] if headings_before else None)


@settings(max_examples=300, deadline=None)
@given(paragraph, st.integers(min_value=10, max_value=300))
def test_long_paragraphs_split_only_at_sentence_ends_unless_a_sentence_is_too_long(text, limit):
    pieces = split_paragraph(text, limit)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(text)
    sentence_ends = {end for _, end in sentence_spans(text)}
    longest = max(end - start for start, end in sentence_spans(text))
    for start, end in pieces[:-1]:
        assert end - start <= limit
        if longest <= limit:
            assert end in sentence_ends


def test_short_paragraphs_merge_with_a_neighbour_in_the_same_section():
    document = Document(
        "d", "d.txt",
        (Block("短句。"), Block("这是一个足够长的段落，讲的是宜宾白酒产业的营业收入。"),
         Block("小节", is_heading=True), Block("另一个。")),
    )
    chunks = chunk_document(document, ChunkingConfig(max_chars=100, min_chars=10))
    assert [c.text for c in chunks] == [
        "短句。\n这是一个足够长的段落，讲的是宜宾白酒产业的营业收入。", "另一个。"
    ]
    assert [(c.paragraph, c.section) for c in chunks] == [(1, None), (3, "小节")]


def test_a_500_character_paragraph_becomes_balanced_pieces():
    text = "".join(f"第{i}句讲一件事情，说得很清楚。" for i in range(36))
    pieces = split_paragraph(text, 220)
    lengths = [end - start for start, end in pieces]
    assert len(pieces) == 3 and max(lengths) - min(lengths) < 40


def test_embedding_text_adds_title_and_section_but_not_twice():
    document = Document("d", "d.txt", (Block("标题", True), Block("正文内容。")), title="标题")
    chunk = chunk_document(document, ChunkingConfig())[0]
    assert embedding_text(chunk, "标题", ChunkingConfig()) == "标题\n正文内容。"
    plain = ChunkingConfig(embed_title=False, embed_section=False)
    assert embedding_text(chunk, "标题", plain) == "正文内容。"


def test_keyword_title_keeps_the_title_in_the_keyword_text_only():
    document = Document("d", "d.txt", (Block("第一段正文。"),), title="景德镇综试区获批")
    chunk = chunk_document(document, ChunkingConfig())[0]
    both = ChunkingConfig()
    assert keyword_text(chunk, document.title, both) == embedding_text(
        chunk, document.title, both) == "景德镇综试区获批\n第一段正文。"
    keywords_only = ChunkingConfig(embed_title=False, keyword_title=True)
    assert embedding_text(chunk, document.title, keywords_only) == "第一段正文。"
    assert keyword_text(chunk, document.title, keywords_only) == "景德镇综试区获批\n第一段正文。"
    neither = ChunkingConfig(embed_title=False, keyword_title=False)
    assert keyword_text(chunk, document.title, neither) == "第一段正文。"


def test_one_over_long_sentence_is_cut_into_balanced_pieces():
    text = "宜宾" * 20 + "。"
    lengths = [end - start for start, end in split_paragraph(text, 20)]
    assert lengths == [14, 14, 13]


def test_sentence_helpers():
    assert sentence_spans("他说：“好。”然后走了！") == [(0, 7), (7, 12)]
    assert sentence_spans("1.76万亿元") == [(0, 7)]
    assert ends_sentence("增长18.8%。") and ends_sentence("他说：“好。”")
    assert not ends_sentence("两个国家") and not ends_sentence("如下：")

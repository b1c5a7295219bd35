"""What `qa serve --workers` loads before forking (qa.preload): it starts no thread, and the
forked processes use it and get the same results as from their own copy."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import qa.tokenizer
from qa.preload import ENGLISH_BRIDGE, KEYWORD_DICTIONARY, MODEL_TOKENIZER, load_before_fork
from qa.tokenizer import Tokenizer, share_dictionary
from tests.conftest import REPO


def _tiny_export(folder):
    """An export folder with a small word-level tokenizer.json and its manifest."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers

    folder.mkdir()
    vocab = {"<unk>": 0, "<pad>": 1, **{w: i + 2 for i, w in enumerate(
        "query passage : 宜宾 白酒 产业 营业 收入 is a test".split())}}
    tokenizer = HFTokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "export.json").write_text(json.dumps({"pooling": "mean", "max_seq_length": 6}))
    return folder


def test_a_tokenizer_loaded_before_a_fork_starts_no_thread_and_works_in_the_children(tmp_path):
    folder = _tiny_export(tmp_path / "export")
    # In its own process: pytest's may have threads of its own, and must not fork.
    probe = textwrap.dedent(f"""\
        import os
        from pathlib import Path
        from qa import onnx_embedder

        def threads():
            return len(os.listdir("/proc/self/task"))

        folder = Path({str(folder)!r})
        before = threads()
        onnx_embedder.share_tokenizer(folder)
        shared = onnx_embedder._SHARED_TOKENIZERS[folder.resolve()]
        assert threads() == before, (before, threads())
        texts = ["query: 宜宾 白酒 产业 营业 收入 is a test", "passage: 白酒", "unknown words"]
        # One text at a time: a batch would start the library's thread pool here.
        expected = [onnx_embedder.load_tokenizer(folder).encode(t).ids for t in texts]
        assert threads() == before
        children = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    mine = onnx_embedder._SHARED_TOKENIZERS[folder.resolve()]
                    # Many texts: the batch runs on the library's thread pool, in the child.
                    got = [e.ids for e in mine.encode_batch(texts * 50)]
                    code = 0 if mine is shared and got == expected * 50 else 2
                finally:
                    os._exit(code)
            children.append(pid)
        print([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children])
        print(len(expected[0]))
    """)
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "parallelism" not in done.stderr  # the library's note when it turns it off
    exits, length = done.stdout.split("\n")[:2]
    assert exits == "[0, 0]"
    assert length == "6"  # the manifest's max_seq_length truncates, as in the model


def test_a_shared_dictionary_is_used_by_tokenizers_with_the_same_user_words(monkeypatch):
    monkeypatch.setattr(qa.tokenizer, "_SHARED", {})
    text = "五粮液和产融协同在宜宾"
    own = Tokenizer(["五粮液", "产融协同"])
    expected_tokens = own.tokens(text)
    expected_tags = own.tagged_words(text)
    share_dictionary(["产融协同", "五粮液"])
    (segmenter, tagger), = qa.tokenizer._SHARED.values()
    shared = Tokenizer(["五粮液", "产融协同"])
    assert shared.tokens(text) == expected_tokens
    assert shared.tagged_words(text) == expected_tags
    assert shared._jieba is segmenter and shared._tagger is tagger
    other = Tokenizer(["陶溪川"])  # other user words: its own dictionary
    other.load()
    assert other._jieba is not segmenter


def test_load_before_fork_loads_what_there_is(make_config, monkeypatch):
    monkeypatch.setattr(qa.tokenizer, "_SHARED", {})
    # The fake model has no ONNX export, and the bridge is off: only jieba's dictionary.
    config = make_config(keywords={"english_bridge": False})
    assert load_before_fork(config) == [KEYWORD_DICTIONARY]
    assert load_before_fork(config, parts=()) == []
    with pytest.raises(ValueError, match="unknown part"):
        load_before_fork(config, parts=["faiss"])
    assert len({MODEL_TOKENIZER, KEYWORD_DICTIONARY, ENGLISH_BRIDGE}) == 3

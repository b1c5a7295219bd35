"""scripts/split_paragraphs.py: whole-article contexts -> one context per paragraph."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "split_paragraphs.py"
spec = importlib.util.spec_from_file_location("split_paragraphs", SCRIPT)
split_paragraphs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(split_paragraphs)

CONTEXT = "第一段说青禾。\n  第二段，4月12日获批。\n\n第三段没有问题。"


def article(answer: str, start: int) -> dict:
    return {"title": "青禾获批", "paragraphs": [{"context": CONTEXT, "qas": [
        {"id": "q1", "question": "哪天获批？",
         "answers": [{"text": answer, "answer_start": start}]}]}]}


def test_each_paragraph_is_a_context_and_questions_follow_their_answer():
    split = split_paragraphs.split_article(article("4月12日", CONTEXT.index("4月12日")))
    contexts = [p["context"] for p in split["paragraphs"]]
    assert contexts == ["第一段说青禾。", "第二段，4月12日获批。", "第三段没有问题。"]
    assert split["title"] == "青禾获批"
    assert [len(p["qas"]) for p in split["paragraphs"]] == [0, 1, 0]
    answer = split["paragraphs"][1]["qas"][0]["answers"][0]
    assert contexts[1][answer["answer_start"]:].startswith("4月12日")
    assert answer["answer_start"] == 4


def test_an_answer_across_paragraphs_is_refused():
    with pytest.raises(split_paragraphs.SplitError, match="q1"):
        split_paragraphs.split_article(article("青禾。\n  第二段", CONTEXT.index("青禾")))
    with pytest.raises(split_paragraphs.SplitError, match="outside"):
        split_paragraphs.split_article(article("\n", CONTEXT.index("\n\n")))


def test_the_shipped_paragraph_files_are_what_the_script_makes(tmp_path):
    news = SCRIPT.parents[1] / "benchmarks" / "news"
    for name in ("news_dev", "news_heldout"):
        made = split_paragraphs.split_file(
            json.loads((news / f"{name}.json").read_text("utf-8")))
        shipped = json.loads((news / f"{name}_paragraphs.json").read_text("utf-8"))
        assert made == shipped
        questions = sum(len(p["qas"]) for a in made["data"] for p in a["paragraphs"])
        assert questions == sum(len(p["qas"]) for a in json.loads(
            (news / f"{name}.json").read_text("utf-8"))["data"] for p in a["paragraphs"])

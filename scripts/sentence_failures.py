"""Why the marked sentence misses the answer: dump and classify the failures.

Reads dumps written by `scripts/tune_highlight.py dump` and, for every question of
the tuning part whose rank-1 document is right but whose marked sentence lacks
the answer, writes the case (question, answer, marked sentence, the sentence that
holds the answer, both scores) to a JSON-lines file and counts it in one class:

- not in candidates: no candidate chunk of the document holds the answer;
- other chunk: a candidate chunk holds it, but not the passage shown;
- across sentences: the passage holds it, but no single sentence does (the
  answer crosses a sentence end: a segmentation problem);
- no question word: the answering sentence shares no question word (coverage 0
  before carries) while another sentence does;
- cue missing: the question asks for a kind (time, number, ...) and the
  answering sentence holds one, but it loses;
- outscored: everything else (the answering sentence has question words but
  another has more).

Each class is also counted for the cases whose answer text occurs in two or more
sentences of the document's candidate chunks (", answer in 2+ candidate sentences").

The tuning part is fixed by article: even positions of a file's `data` list for
CMRC dev and the news dev file, all of CMRC trial; everything else is held out.

    PYTHONPATH=. .venv/bin/python scripts/sentence_failures.py \
        artifacts/sent/cmrc_dev.jsonl artifacts/sent/cmrc_trial.jsonl \
        --out artifacts/sent/failures.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa import highlight, passage_choice, sentence_choice
from qa.answer_cues import question_kind
from qa.config import load_config
from qa.evaluation import sentence_holds_answer
from qa.normalize import fold
from qa.tokenizer import Tokenizer


def tuning_part(path: Path, row: dict) -> bool:
    """Whether a dumped question belongs to the tuning part (see the docstring)."""
    if "trial" in path.name or path.name.startswith("news_dev"):
        return True
    if "drcd" in path.name.lower() or "heldout" in path.name:
        return False
    return not row["held_out"]


def document_candidates(row: dict) -> list[tuple[SimpleNamespace, SimpleNamespace]]:
    """The rank-1 document's candidate chunks, best ranked first, as stand_ins takes them."""
    top_doc = row["ranked"][0][0]
    ranks = [(o, s) for doc, o, s in row["ranked"] if doc == top_doc]
    return [(SimpleNamespace(doc_id=top_doc, ordinal=o, text=text), SimpleNamespace(score=s))
            for (o, s), text in zip(ranks, row["top_doc"], strict=True)]


def document_sentences(row: dict, tokenizer: Tokenizer) -> tuple[list, list, list]:
    """The rank-1 document's candidates (at most passage_choice's pool), as
    sentence_choice's ChunkCandidates with their vector and keyword components, and
    their sentences' rows as sentence_choice scores them: (found, chunks, rows)."""
    found = document_candidates(row)[: passage_choice.POOL_LIMIT]
    top_doc = row["ranked"][0][0]
    components = [c for (doc, _, _), c in zip(row["ranked"], row["components"], strict=True)
                  if doc == top_doc][: len(found)]
    chunks = [sentence_choice.ChunkCandidate(c.text, c.ordinal, s.score, vector=v, keyword=k)
              for (c, s), (v, k) in zip(found, components, strict=True)]
    return found, chunks, sentence_choice.sentence_rows(row["question"], row["idf"],
                                                        tokenizer, chunks)


def sentence_table(row: dict, tokenizer: Tokenizer, text: str, context: str) -> list[dict]:
    """Every sentence of a passage with its score parts as qa.highlight computes them."""
    folded = fold(row["question"])
    asked = highlight._Question(folded, highlight._without_question_words(folded, row["idf"]),
                                frozenset(highlight.question_terms(row["question"])),
                                question_kind(row["question"]))
    spans = highlight.passage_sentences(text)
    sentences = [text[s:e] for s, e in spans]
    inherited = highlight._context_credit(asked, tokenizer, context) if context else {}
    scores = highlight._sentence_scores(asked, tokenizer, sentences, inherited)
    own = [sum(asked.idf[t] * c for t, c in highlight.matched_terms(
        asked.folded, asked.idf, fold(s), tokenizer.tokens(fold(s), already_folded=True)).items())
        for s in sentences]
    total = sum(asked.idf.values()) or 1.0
    return [{"sentence": s, "score": round(score, 3), "own": round(o / total, 3)}
            for s, score, o in zip(sentences, scores, own, strict=True)]


def classify(row: dict, tokenizer: Tokenizer) -> tuple[str, dict] | None:
    """None when the marked sentence holds the answer; else (class, details)."""
    answers = tuple(row["answers"])
    found = document_candidates(row)
    order, scored = passage_choice.stand_ins(row["question"], row["idf"], tokenizer, found,
                                             [found[0][0].doc_id])
    chunk = found[order[0]][0]
    start, end = scored[order[0]][0]
    if sentence_holds_answer(chunk.text[start:end], answers):
        return None
    case = {"question": row["question"], "answer": answers[0],
            "kind": question_kind(row["question"]), "marked": chunk.text[start:end],
            # Candidate sentences (of every candidate chunk) that hold a gold answer.
            "answer sentences": sum(
                sentence_holds_answer(c.text[a:b], answers)
                for c, _ in found for a, b in highlight.passage_sentences(c.text))}
    if not any(sentence_holds_answer(c.text, answers) for c, _ in found):
        return "not in candidates", case
    if not sentence_holds_answer(chunk.text, answers):
        holder = next(c for c, _ in found if sentence_holds_answer(c.text, answers))
        case["chunk shown"], case["chunk with answer"] = chunk.ordinal, holder.ordinal
        case["scores"] = {c.ordinal: round(scored[i][1], 3) for i, (c, _) in enumerate(found)
                          if i in scored}
        return "other chunk", case
    context = sentence_choice.earlier_text([c.ordinal for c, _ in found],
                                          [c.text for c, _ in found], chunk.ordinal)
    table = sentence_table(row, tokenizer, chunk.text, context)
    case["sentences"] = table
    holders = [s for s in table if sentence_holds_answer(s["sentence"], answers)]
    if not holders:
        return "across sentences", case
    best = max(holders, key=lambda s: s["score"])
    if best["own"] == 0 and any(s["own"] > 0 for s in table):
        return "no question word", case
    kind = case["kind"]
    if kind is not None and best["score"] < max(s["score"] for s in table):
        from qa.answer_cues import sentence_has_cue
        words = tokenizer.tagged_words(fold(best["sentence"]))
        if sentence_has_cue(kind, fold(best["sentence"]), words, fold(row["question"])):
            return "cue present, still outscored", case
        return "cue missing in the answer sentence", case
    return "outscored", case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dumps", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--held-out", action="store_true", help="the held-out part instead")
    args = parser.parse_args()
    tokenizer = Tokenizer(list(load_config(args.config).keywords.user_words))
    counts: Counter[str] = Counter()
    with args.out.open("w", encoding="utf-8") as sink:
        for path in args.dumps:
            for line in path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                if tuning_part(path, row) == args.held_out:
                    continue
                counts["questions"] += 1
                if not row["right"] or not row["answers"]:
                    continue
                counts["right document"] += 1
                result = classify(row, tokenizer)
                if result is None:
                    counts["sentence holds the answer"] += 1
                    continue
                name, case = result
                counts[name] += 1
                if case["answer sentences"] > 1:
                    counts[f"{name}, answer in 2+ candidate sentences"] += 1
                sink.write(json.dumps({"class": name, "file": path.name, **case},
                                      ensure_ascii=False) + "\n")
    right = counts["right document"] or 1
    for name, count in counts.most_common():
        print(f"{name:40s} {count:6d}  {count / right:.3f} of right documents")


if __name__ == "__main__":
    main()

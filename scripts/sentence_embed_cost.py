"""What embedding sentences costs the model, the way qa.meaning_choice embeds them (each
after its document's title), and the ways tried to make it cheaper.

Samples `--sentences` sentences (seeded) from the chunks of SQuAD-format files, chunked by
the product's chunker and split by qa.highlight.passage_sentences, each as
qa.meaning_choice.embedded_text gives it (title, line break, sentence), and measures the
process CPU and wall time per sentence: each alone (as the product does at question
time), with model threads 0 (all cores) and 1; in calls of 3 and 6 (a close call's
contenders together); in length-sorted batches of 32 (as an indexer would embed them);
and alone with only the first `--cap` characters of the sentence. Also prints the
sentences per chunk of the files and the mean tokens a titled sentence is.

    QA_MODEL_CACHE=… .venv/bin/python scripts/sentence_embed_cost.py \
        ../shared/benchmarks/cmrc2018/cmrc2018_dev.json ../shared/benchmarks/drcd/DRCD_dev.json \
        [--sentences 300] [--cap 40] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import time
from pathlib import Path

import script_setup  # noqa: F401 - this checkout's qa first on sys.path
from script_setup import announce

from qa.config import load_config, with_model_cache_from_environment
from qa.embedder import create_embedder
from qa.evaluation import read_squad
from qa.highlight import passage_sentences
from qa.ingest.chunker import chunk_document
from qa.meaning_choice import embedded_text


def titled_sentences(paths: list[Path], config) -> tuple[list[tuple[str, str]], list[int]]:
    """(title, sentence) for every sentence of every chunk, and each chunk's count."""
    pairs, counts = [], []
    for document in read_squad(paths).documents:
        for chunk in chunk_document(document, config.chunking):
            spans = passage_sentences(chunk.text)
            counts.append(len(spans))
            pairs += [(document.title or "", chunk.text[s:e]) for s, e in spans]
    return pairs, counts


def timed(embed, groups: list[list[str]]) -> tuple[float, float]:
    """CPU and wall milliseconds per text, embedding `groups` one call each."""
    count = sum(len(g) for g in groups)
    cpu, wall = time.process_time(), time.perf_counter()
    for group in groups:
        embed(group)
    return (1000 * (time.process_time() - cpu) / count,
            1000 * (time.perf_counter() - wall) / count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--cap", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    announce()
    config = with_model_cache_from_environment(load_config(args.config))
    pairs, counts = titled_sentences(args.files, config)
    sample = random.Random(args.seed).sample(pairs, min(args.sentences, len(pairs)))
    texts = [embedded_text(sentence, title) for title, sentence in sample]
    capped = [embedded_text(sentence[:args.cap], title) for title, sentence in sample]
    print(f"{len(counts)} chunks, {len(pairs)} sentences: {statistics.mean(counts):.2f} a chunk "
          f"(median {statistics.median(counts)}); {len(texts)} sampled")
    rows = []
    for threads in (0, 1):
        model = dataclasses.replace(config.model, threads=threads)
        embedder = create_embedder(model)
        embedder.embed_passages(texts[:3])  # warm-up
        if threads == 0:
            tokenizer = getattr(embedder, "_tokenizer", None)
            if tokenizer is not None:
                tokens = [len(tokenizer.encode(config.model.passage_prompt + t).ids)
                          for t in texts]
                print(f"tokens a titled sentence, prompt included: mean "
                      f"{statistics.mean(tokens):.1f}, max {max(tokens)}")
        ways = [("alone", [[t] for t in texts])]
        if threads == 0:
            ways += [("calls of 3", [texts[i:i + 3] for i in range(0, len(texts), 3)]),
                     ("calls of 6", [texts[i:i + 6] for i in range(0, len(texts), 6)])]
            ordered = sorted(texts, key=len)
            ways += [("length-sorted batches of 32",
                      [ordered[i:i + 32] for i in range(0, len(ordered), 32)]),
                     (f"alone, first {args.cap} characters", [[t] for t in capped])]
        for label, groups in ways:
            cpu, wall = timed(embedder.embed_passages, groups)
            rows.append({"threads": threads, "way": label, "cpu_ms": round(cpu, 2),
                         "wall_ms": round(wall, 2)})
    print("\n| model threads | how | CPU ms / sentence | wall ms / sentence |")
    print("|---|---|---|---|")
    for row in rows:
        print(f"| {row['threads']} | {row['way']} | {row['cpu_ms']:.2f} | {row['wall_ms']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({
            "command": sys.argv, "chunks": len(counts), "sentences": len(pairs),
            "sentences_per_chunk": statistics.mean(counts), "rows": rows}, indent=1),
            encoding="utf-8")


if __name__ == "__main__":
    main()

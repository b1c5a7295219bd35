"""The answering sentence chosen by the model (qa.highlight's fallback for a passage that
shares no word with the question): what it costs, and whether embedding each sentence
alone chooses as well as embedding a request's sentences together.

Held-out questions only (the odd-numbered articles of each SQuAD file). For each sampled
question the chunk of its paragraph holding the answer (the product's chunker) is asked
as the fallback asks it: its sentences embedded with those of `--mates` other chunks (the
other passages of a request) in one `embed_passages` call, as today ("together"), or each
sentence on its own ("alone": no padding, no batch-mates, so a sentence's vector depends
on its text only). A choice is right when the chosen sentence holds a gold answer.
Prints the share right, how often the two choose differently, the CPU per request of
each, and (with `--fp32`) each one's cosine to the fp32 model's vectors; with
`--shape-only`, only the shape of the work (sentences per request, tokens per sentence,
the batches the ONNX embedder cuts one call into and their padding), without the model.

    QA_MODEL_CACHE=… .venv/bin/python scripts/sentence_fallback.py \
        ../shared/benchmarks/cmrc2018/cmrc2018_dev.json ../shared/benchmarks/drcd/DRCD_dev.json \
        [--questions 200] [--mates 4] [--fp32] [--shape-only] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import script_setup  # noqa: F401 - this checkout's qa first on sys.path

from qa.config import load_config, with_model_cache_from_environment
from qa.embedder import create_embedder
from qa.evaluation import read_squad, sentence_holds_answer
from qa.highlight import best_span, passage_sentences
from qa.ingest.chunker import chunk_document

REPO = Path(__file__).resolve().parent.parent


def held_out_cases(path: Path, config, limit: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """(question, chunk text, answers) for up to `limit` held-out questions whose answer
    lies in a chunk of more than one sentence, spread evenly over the file."""
    evalset = read_squad([path])
    documents = {d.doc_id: d for d in evalset.documents}
    held = [q for q in evalset.questions
            if int(q.paragraph_id.rsplit("-", 2)[1]) % 2 == 1 and q.answers]
    step = max(1, len(held) // (limit * 2))
    cases = []
    for question in held[::step]:
        for chunk in chunk_document(documents[question.paragraph_id], config.chunking):
            if any(a in chunk.text for a in question.answers) and \
                    len(passage_sentences(chunk.text)) > 1:
                cases.append((question.question, chunk.text, question.answers))
                break
        if len(cases) == limit:
            break
    return cases


def shape(embedder, cases, mates: int) -> dict[str, object]:
    """Sentences per request, tokens per sentence, and the padded tokens of the batches
    one call is cut into (qa.onnx_embedder), against each sentence alone."""
    per_request, lengths, batches, padded = [], [], [], 0
    for number, (_, text, _) in enumerate(cases):
        texts = [text] + [cases[(number + k) % len(cases)][1] for k in range(1, mates + 1)]
        sentences = [t[s:e] for t in texts for s, e in passage_sentences(t)]
        prompt = config_prompt(embedder)
        sizes = [len(e.ids) for e in embedder._tokenizer.encode_batch(
            [prompt + s for s in sentences])]
        order = sorted(range(len(sizes)), key=sizes.__getitem__)
        cut = embedder._batches(order, sizes)
        per_request.append(len(sentences))
        lengths.extend(sizes)
        batches.append(len(cut))
        padded += sum(len(b) * max(sizes[i] for i in b) for b in cut)
    return {"requests": len(cases),
            "sentences_per_request_p50_max": [float(np.median(per_request)),
                                              max(per_request)],
            "tokens_per_sentence_p50_p90_max": [float(np.median(lengths)),
                                                float(np.percentile(lengths, 90)),
                                                max(lengths)],
            "batches_per_request_mean": round(float(np.mean(batches)), 2),
            "padded_tokens_share": round(1 - sum(lengths) / padded, 4)}


def config_prompt(embedder) -> str:
    return embedder._prompts["passage"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--questions", type=int, default=200, help="per file")
    parser.add_argument("--mates", type=int, default=4)
    parser.add_argument("--fp32", action="store_true")
    parser.add_argument("--shape-only", action="store_true")
    parser.add_argument("--json", dest="json_out", type=Path)
    args = parser.parse_args()
    config = with_model_cache_from_environment(load_config(args.config))
    embedder = create_embedder(config.model)
    fp32 = (create_embedder(dataclasses.replace(config.model, precision="fp32"))
            if args.fp32 else None)
    print(f"$ {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs; load {os.getloadavg()}")
    results = {}
    for path in args.files:
        cases = held_out_cases(path, config, args.questions)
        if args.shape_only:
            results[path.name] = shape(embedder, cases, args.mates)
            print(f"{path.name}: {json.dumps(results[path.name])}")
            continue
        right = {"together": 0, "alone": 0}
        cpu = {"together": 0.0, "alone": 0.0}
        differ = 0
        cosines: dict[str, list[float]] = {"together": [], "alone": []}
        for number, (question, text, answers) in enumerate(cases):
            spans = passage_sentences(text)
            mates = [cases[(number + k) % len(cases)][1] for k in range(1, args.mates + 1)]
            own = [text[s:e] for s, e in spans]
            others = [m[s:e] for m in mates for s, e in passage_sentences(m)]
            query = embedder.embed_queries([question])[0]
            started = time.process_time()
            together = embedder.embed_passages(own + others)[: len(own)]
            cpu["together"] += time.process_time() - started
            started = time.process_time()
            alone = np.vstack([embedder.embed_passages([s]) for s in own + others])[: len(own)]
            cpu["alone"] += time.process_time() - started
            chosen = {}
            for name, vectors in (("together", together), ("alone", alone)):
                span = best_span(spans, (vectors @ query).tolist())
                chosen[name] = span
                right[name] += sentence_holds_answer(text[span[0]:span[1]], answers)
            differ += chosen["together"] != chosen["alone"]
            if fp32 is not None:
                reference = fp32.embed_passages(own)
                for name, vectors in (("together", together), ("alone", alone)):
                    cosines[name].extend((vectors * reference).sum(axis=1).tolist())
        n = len(cases)
        row = {"questions": n, "differ": differ,
               **{f"right_{k}": round(v / n, 4) for k, v in right.items()},
               **{f"cpu_ms_{k}": round(1000 * v / n, 1) for k, v in cpu.items()}}
        if fp32 is not None:
            for name, values in cosines.items():
                row[f"cos_fp32_{name}_mean"] = round(float(np.mean(values)), 5)
                row[f"cos_fp32_{name}_min"] = round(float(np.min(values)), 5)
        results[path.name] = row
        print(f"{path.name}: {json.dumps(row)}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps({"command": sys.argv, "results": results},
                                            indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

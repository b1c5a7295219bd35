// The passage cards of an answer: the text with its answering sentence marked, a relevance
// bar that means the same in every mode, 查看原文 (the exact span) and 复制引用.
// Every piece of text from the server goes into the page through textContent, never as HTML.
(function () {
  "use strict";

  var permalink = window.NewsQA.permalink;
  var FEEDBACK_MS = 2000;
  var cardTemplate = document.getElementById("card-template");
  var announcer = document.getElementById("announcer");

  function element(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  }

  function announce(text) {
    announcer.textContent = text;
  }

  // A response as {ok, status, body}: the body is null when it is not JSON.
  function readJson(response) {
    return response.json().then(
      function (body) { return { ok: response.ok, status: response.status, body: body }; },
      function () { return { ok: false, status: response.status, body: null }; }
    );
  }

  function httpUrl(url) {
    if (typeof url !== "string") return null;
    try {
      var parsed = new URL(url);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (e) {
      return null;
    }
  }

  // Offsets from the server count code points (Python); JS strings count UTF-16 units.
  // Without a highlight (an answer that is not confident) the text is shown unmarked.
  function markedText(container, text, highlight) {
    var chars = Array.from(text);
    var start = highlight ? Math.max(0, Math.min(highlight.start, chars.length)) : 0;
    var end = highlight ? Math.max(start, Math.min(highlight.end, chars.length)) : 0;
    container.appendChild(document.createTextNode(chars.slice(0, start).join("")));
    if (end > start) container.appendChild(element("mark", "answer", chars.slice(start, end).join("")));
    container.appendChild(document.createTextNode(chars.slice(end).join("")));
  }

  // "第 3 段", or "第 3–4 段" for a passage that merged paragraphs (paragraph_start/_end, where
  // the API gives them).
  function paragraphs(c) {
    var first = c.paragraph_start || c.paragraph;
    if (!first) return null;
    return c.paragraph_end > first ? "第 " + first + "–" + c.paragraph_end + " 段" : "第 " + first + " 段";
  }

  // 标题. 来源, 日期. 链接, 第 n 段. (the order of a Chinese news reference); a part the article
  // does not have is left out with its punctuation.
  function citationLine(c) {
    var groups = [
      [c.title],
      [c.source, c.date],
      [httpUrl(c.url), paragraphs(c)],
    ].map(function (parts) {
      return parts.filter(function (part) { return part; }).join(", ");
    }).filter(function (group) { return group; });
    return groups.reduce(function (line, group) {
      // A title ending in its own stop (？！。) takes no extra full stop.
      var stop = /[.。!！?？]$/.test(line) ? " " : ". ";
      return line ? line + stop + group : group;
    }, "") + (groups.length ? "." : "");
  }

  // The bar reads the same in every mode, 0–1. A hybrid score is already normalised (min-max
  // over the candidates, then blended); a BM25 score or a cosine has a scale of its own, so in
  // those modes a passage is shown relative to the answer's best one.
  function relevance(score, best, answerMode) {
    score = Number(score) || 0;
    var value = answerMode === "keyword" || answerMode === "vector" ? (best > 0 ? score / best : 0) : score;
    return Math.max(0, Math.min(1, value));
  }

  function scoreTooltip(value, passage, answerMode) {
    var lines = ["相关度 " + value.toFixed(2) +
      (answerMode === "keyword" || answerMode === "vector" ? "（相对本次最相关的段落）" : "（混合检索，归一化）")];
    var scores = passage.scores || {};
    if (typeof scores.vector === "number") lines.push("语义相似度（余弦）" + scores.vector.toFixed(3));
    if (typeof scores.keyword === "number") lines.push("关键词得分（BM25）" + scores.keyword.toFixed(2));
    return lines.join("\n");
  }

  function card(passage, answer, best) {
    var node = cardTemplate.content.firstElementChild.cloneNode(true);
    var c = passage.citation || {};
    var confident = answer.confident !== false;
    node.querySelector(".rank").textContent = String(passage.rank);
    node.querySelector(".card-title").textContent = c.title || c.doc_id || "（无标题）";
    var value = relevance(passage.score, best, answer.mode);
    node.querySelector(".score-value").textContent = value.toFixed(2);
    node.querySelector(".score-fill").style.width = Math.round(value * 100) + "%";
    node.querySelector(".score").title = scoreTooltip(value, passage, answer.mode);
    var meta = node.querySelector(".card-meta");
    [c.source, c.date, paragraphs(c), c.section].forEach(function (part) {
      if (part) meta.appendChild(element("span", null, part));
    });
    markedText(node.querySelector(".card-text"), passage.text || "", confident ? passage.highlight : null);
    var copies = passage.also_in || [];
    if (copies.length) {
      // Wire copies: the same text in other documents, each a link to its cited span.
      var also = element("p", "also-in", "亦见于：");
      copies.forEach(function (other, i) {
        var link = element("a", null, other.source || other.title || other.doc_id);
        link.href = permalink.sourceLink(other, null, false);
        if (other.date) link.title = other.date;
        if (i) also.appendChild(document.createTextNode("、"));
        also.appendChild(link);
      });
      node.querySelector(".card-text").after(also);
    }
    node.querySelector(".open-doc").href = permalink.sourceLink(c, passage.highlight, confident);
    var copy = node.querySelector(".copy-citation");
    copy.addEventListener("click", function () { copyCitation(copy, citationLine(c)); });
    var original = node.querySelector(".original");
    var url = httpUrl(c.url);
    if (url) original.href = url;
    else original.remove();
    return node;
  }

  function copied(button) {
    button.textContent = "已复制";
    button.classList.add("done");
    announce("引用已复制");
    window.setTimeout(function () {
      button.textContent = "复制引用";
      button.classList.remove("done");
    }, FEEDBACK_MS);
  }

  // The clipboard API is refused on plain http from another machine, or by a permission;
  // then copy through a selection, and failing that show the line selected, to copy by hand.
  function copyCitation(button, line) {
    function fallback() {
      if (copyBySelection(line, button)) copied(button);
      else showForManualCopy(button, line);
    }
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(line).then(function () { copied(button); }, fallback);
    } else {
      fallback();
    }
  }

  function copyBySelection(line, button) {
    var buffer = element("textarea", "copy-buffer");
    buffer.value = line;
    buffer.setAttribute("readonly", "");
    buffer.setAttribute("aria-hidden", "true");
    document.body.appendChild(buffer);
    buffer.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    buffer.remove();
    button.focus();
    return ok;
  }

  function showForManualCopy(button, line) {
    var foot = button.closest(".card-foot");
    var box = foot.parentNode.querySelector(".copy-manual");
    if (!box) {
      box = element("label", "copy-manual");
      box.appendChild(element("span", null, "无法自动复制，请手动复制这条引用："));
      box.appendChild(element("input", "copy-manual-text"));
      foot.parentNode.insertBefore(box, foot.nextSibling);
    }
    var field = box.querySelector("input");
    field.readOnly = true;
    field.value = line;
    field.focus();
    field.select();
    announce("无法自动复制，引用已选中，请手动复制");
  }

  // What a question was narrowed to, in a few words: "只看：江西日报 · 2024-01-01 至
  // 2024-06-30 · 按日期". Empty when it searched everything by relevance.
  function filterLine(filters, sort) {
    var f = filters || {};
    var parts = [];
    var sources = [].concat(f.source || f.sources || []).filter(function (s) { return typeof s === "string" && s; });
    if (sources.length) parts.push(sources.join("、"));
    if (f.date_from && f.date_to) parts.push(f.date_from + " 至 " + f.date_to);
    else if (f.date_from) parts.push(f.date_from + " 以来");
    else if (f.date_to) parts.push(f.date_to + " 以前");
    var line = parts.length ? "只看：" + parts.join(" · ") : "";
    if (sort === "date") line = line ? line + " · 按日期" : "按日期排序";
    return line;
  }

  // The filters an answer was given under: as the server read them when it says, else as asked.
  function answerFilters(request, answer) {
    var echoed = answer.filters && typeof answer.filters === "object" ? answer.filters : null;
    return filterLine(echoed || request.filters, answer.sort || request.sort);
  }

  // An answer's block: its summary with the permalink, a warning when it is not confident,
  // and the cards.
  function answerBlock(request, answer) {
    var block = element("section", "reply");
    var passages = Array.isArray(answer.passages) ? answer.passages : [];
    var summary = block.appendChild(element("p", "answer-summary"));
    if (passages.length) {
      var took = typeof answer.took_ms === "number" ? " · 用时 " + Math.round(answer.took_ms) + " 毫秒" : "";
      summary.appendChild(element("span", null, "找到 " + passages.length + " 段相关内容" + took));
    }
    var link = summary.appendChild(element("a", "permalink", "固定链接"));
    link.href = permalink.queryFromRequest(request);
    link.title = "打开这个链接会重新提出这个问题";
    var narrowed = answerFilters(request, answer);
    if (narrowed) {
      var matched = typeof answer.documents_matched === "number"
        ? "（符合条件的文章 " + answer.documents_matched + " 篇）" : "";
      block.insertBefore(element("p", "answer-filters", narrowed + matched), summary.nextSibling);
    }
    if (!passages.length) {
      block.appendChild(element("p", "notice empty", narrowed
        ? "在筛选范围内没有找到相关内容，放宽筛选或换个问法试试。"
        : "没有找到相关内容，换个问法试试。"));
    } else if (answer.confident === false) {
      block.appendChild(element("p", "notice unsure", "这些段落与问题的关联不强，语料中可能没有直接答案，所以没有标出回答句。"));
    }
    var best = passages.reduce(function (top, p) { return Math.max(top, Number(p.score) || 0); }, 0);
    passages.forEach(function (passage) {
      block.appendChild(card(passage, answer, best));
    });
    return block;
  }

  window.NewsQA = window.NewsQA || {};
  window.NewsQA.cards = {
    element: element,
    announce: announce,
    readJson: readJson,
    answerBlock: answerBlock,
    citationLine: citationLine,
    filterLine: filterLine,
  };
})();

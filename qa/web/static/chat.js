// The chat page: sends questions to the JSON API and shows the answers as passage cards,
// keeps the conversation in this browser, and asks the question of a permalink (/?q=…).
// Every piece of text from the server goes into the page through textContent, never as HTML.
(function () {
  "use strict";

  var permalink = window.NewsQA.permalink;
  var store = window.NewsQA.history;

  var REQUEST_TIMEOUT_MS = 60000;
  var FEEDBACK_MS = 2000;
  var SCROLL_KEY = "newsqa.scroll";
  var ERROR_LEADS = {
    invalid_question: "这个问题无法处理",
    body_too_large: "问题太长了",
    internal_error: "服务器出错了",
  };

  var form = document.getElementById("ask-form");
  var input = document.getElementById("question");
  var topK = document.getElementById("top-k");
  var mode = document.getElementById("mode");
  var send = document.getElementById("send");
  var conversation = document.getElementById("conversation");
  var welcome = document.getElementById("welcome");
  var status = document.getElementById("status");
  var clearButton = document.getElementById("clear-history");
  var announcer = document.getElementById("announcer");
  var cardTemplate = document.getElementById("card-template");
  var busy = false;

  function element(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  }

  function announce(text) {
    announcer.textContent = text;
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

  // 标题. 来源, 日期. 链接, 第 n 段. (the order of a Chinese news reference); a part the article
  // does not have is left out with its punctuation.
  function citationLine(c) {
    var groups = [
      [c.title],
      [c.source, c.date],
      [httpUrl(c.url), c.paragraph ? "第 " + c.paragraph + " 段" : null],
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
    [c.source, c.date, c.paragraph ? "第 " + c.paragraph + " 段" : null, c.section].forEach(function (part) {
      if (part) meta.appendChild(element("span", null, part));
    });
    markedText(node.querySelector(".card-text"), passage.text || "", confident ? passage.highlight : null);
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

  function addBubble(className, text) {
    var bubble = element("div", "bubble " + className, text);
    conversation.appendChild(bubble);
    return bubble;
  }

  function showAnswer(request, answer) {
    var block = element("section", "reply");
    var passages = Array.isArray(answer.passages) ? answer.passages : [];
    var summary = element("p", "answer-summary");
    if (passages.length === 0) {
      block.appendChild(element("p", "notice empty", "没有找到相关内容，换个问法试试。"));
    } else {
      var took = typeof answer.took_ms === "number" ? " · 用时 " + Math.round(answer.took_ms) + " 毫秒" : "";
      summary.appendChild(element("span", null, "找到 " + passages.length + " 段相关内容" + took));
    }
    var link = element("a", "permalink", "固定链接");
    link.href = permalink.queryFromRequest(request);
    link.title = "打开这个链接会重新提出这个问题";
    summary.appendChild(link);
    block.appendChild(summary);
    if (passages.length && answer.confident === false) {
      block.appendChild(element("p", "notice unsure", "这些段落与问题的关联不强，语料中可能没有直接答案，所以没有标出回答句。"));
    }
    var best = passages.reduce(function (top, p) { return Math.max(top, Number(p.score) || 0); }, 0);
    passages.forEach(function (passage) {
      block.appendChild(card(passage, answer, best));
    });
    conversation.appendChild(block);
    return block;
  }

  function showError(message) {
    var bubble = addBubble("error", "");
    bubble.setAttribute("role", "alert");
    bubble.appendChild(element("strong", null, "出错了"));
    bubble.appendChild(element("span", null, message));
  }

  function errorMessage(body, status) {
    var error = body && body.error;
    if (error && typeof error.message === "string") {
      var lead = ERROR_LEADS[error.code];
      return lead ? lead + "：" + error.message : error.message;
    }
    return "服务器返回了 HTTP " + status + "。";
  }

  function showWelcome(shown) {
    welcome.hidden = !shown;
  }

  function updateClearButton() {
    clearButton.hidden = store.load().length === 0 && !conversation.querySelector(".bubble");
  }

  function scrollToBottom() {
    window.scrollTo(0, document.documentElement.scrollHeight);
  }

  function currentRequest(question) {
    return { question: question, top_k: Number(topK.value), mode: mode.value };
  }

  function ask(request) {
    if (busy) return;
    request.question = request.question.trim();
    if (!request.question) {
      input.focus();
      return;
    }
    showWelcome(false);
    busy = true;
    send.disabled = true;
    var questionBubble = addBubble("question", request.question);
    var loading = addBubble("loading", "");
    loading.setAttribute("aria-label", "正在检索");
    loading.appendChild(element("span", "dots", ""));
    loading.appendChild(element("span", null, "正在检索相关新闻…"));
    input.value = "";
    resize();
    updateClearButton();
    scrollToBottom();

    var controller = new AbortController();
    var timer = window.setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS);
    fetch("/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(request),
      signal: controller.signal,
    })
      .then(function (response) {
        return response.json().then(
          function (body) { return { ok: response.ok, status: response.status, body: body }; },
          function () { return { ok: false, status: response.status, body: null }; }
        );
      })
      .then(function (result) {
        loading.remove();
        if (result.ok) {
          store.add(request, result.body);
          showAnswer(request, result.body);
          var count = Array.isArray(result.body.passages) ? result.body.passages.length : 0;
          announce(count ? "找到 " + count + " 段相关内容" : "没有找到相关内容");
          questionBubble.scrollIntoView({ block: "start" });
        } else {
          showError(errorMessage(result.body, result.status));
          scrollToBottom();
        }
      })
      .catch(function (error) {
        loading.remove();
        showError(error && error.name === "AbortError" ? "等待太久，请稍后再试。" : "无法连接服务器，请检查服务是否在运行。");
        scrollToBottom();
      })
      .finally(function () {
        window.clearTimeout(timer);
        busy = false;
        send.disabled = false;
        updateClearButton();
        input.focus({ preventScroll: true });
      });
  }

  function restoreHistory() {
    conversation.querySelectorAll(".bubble, .reply, .notice.cleared").forEach(function (el) { el.remove(); });
    var entries = store.load();
    entries.forEach(function (entry) {
      addBubble("question", entry.request.question);
      showAnswer(entry.request, entry.answer);
    });
    showWelcome(entries.length === 0);
    updateClearButton();
    return entries.length;
  }

  function clearHistory() {
    var removed = store.clear();
    restoreHistory();
    var notice = element("p", "notice cleared", "记录已清空。");
    var undo = element("button", "undo", "撤销");
    undo.type = "button";
    undo.addEventListener("click", function () {
      store.save(removed.concat(store.load()));
      restoreHistory();
      scrollToBottom();
      input.focus();
    });
    notice.appendChild(undo);
    conversation.insertBefore(notice, conversation.firstChild);
    announce("记录已清空");
    input.focus();
  }

  function selectValue(select, value, label) {
    value = String(value);
    var found = Array.prototype.some.call(select.options, function (option) { return option.value === value; });
    if (!found) select.appendChild(new Option(label, value));
    select.value = value;
  }

  function resize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  }

  function isTyping(target) {
    return Boolean(target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)));
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    ask(currentRequest(input.value));
  });

  input.addEventListener("keydown", function (event) {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an IME candidate is neither.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      ask(currentRequest(input.value));
    } else if (event.key === "Escape" && !event.isComposing) {
      event.preventDefault();
      input.value = "";
      resize();
    }
  });
  input.addEventListener("input", resize);

  // "/" goes to the question box from anywhere but another field.
  document.addEventListener("keydown", function (event) {
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey && !isTyping(event.target)) {
      event.preventDefault();
      input.focus();
    }
  });

  document.querySelectorAll(".example").forEach(function (button) {
    button.addEventListener("click", function () { ask(currentRequest(button.textContent)); });
  });

  clearButton.addEventListener("click", clearHistory);

  // Another tab asked or cleared: show the same conversation here.
  window.addEventListener("storage", function (event) {
    if (!busy && (event.key === null || event.key === store.KEY)) restoreHistory();
  });

  // Back to this page (Back, reload, or the article's "返回问答") lands where the reader was.
  if ("scrollRestoration" in window.history) window.history.scrollRestoration = "manual";
  window.addEventListener("pagehide", function () {
    try {
      window.sessionStorage.setItem(SCROLL_KEY, String(Math.round(window.scrollY)));
    } catch (e) {
      // No session storage: Back lands at the newest answer instead.
    }
  });

  function savedScroll() {
    try {
      var value = window.sessionStorage.getItem(SCROLL_KEY);
      return value !== null && /^\d+$/.test(value) ? Number(value) : null;
    } catch (e) {
      return null;
    }
  }

  fetch("/api/health", { headers: { Accept: "application/json" } })
    .then(function (response) { return response.ok ? response.json() : Promise.reject(response.status); })
    .then(function (health) {
      status.textContent = "已收录 " + health.index.documents + " 篇文章 · " + health.index.chunks + " 个段落";
      status.classList.add("ok");
    })
    .catch(function () {
      status.textContent = "服务暂不可用";
      status.classList.add("down");
    });

  var restored = restoreHistory();
  var linked = permalink.requestFromQuery(window.location.search);
  if (linked) {
    // Asked once: a reload shows it from the history instead of asking again.
    window.history.replaceState(null, "", "/");
    if (linked.top_k !== undefined) selectValue(topK, linked.top_k, linked.top_k + " 条");
    if (linked.mode !== undefined) selectValue(mode, linked.mode, linked.mode);
    ask(Object.assign(currentRequest(linked.question), linked));
  } else if (restored) {
    var position = savedScroll();
    if (position === null) scrollToBottom();
    else window.scrollTo(0, position);
  }
  input.focus({ preventScroll: true });
})();

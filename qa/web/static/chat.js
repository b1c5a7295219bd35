// The chat page: sends questions to the JSON API and shows the answers as passage cards.
// Every piece of text from the server goes into the page through textContent, never as HTML.
(function () {
  "use strict";

  var REQUEST_TIMEOUT_MS = 60000;
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
  var cardTemplate = document.getElementById("card-template");
  var busy = false;

  function element(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
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
  function markedText(container, text, highlight) {
    var chars = Array.from(text);
    var start = highlight ? Math.max(0, Math.min(highlight.start, chars.length)) : 0;
    var end = highlight ? Math.max(start, Math.min(highlight.end, chars.length)) : 0;
    container.appendChild(document.createTextNode(chars.slice(0, start).join("")));
    if (end > start) container.appendChild(element("mark", "answer", chars.slice(start, end).join("")));
    container.appendChild(document.createTextNode(chars.slice(end).join("")));
  }

  function card(passage) {
    var node = cardTemplate.content.firstElementChild.cloneNode(true);
    var c = passage.citation || {};
    node.querySelector(".rank").textContent = String(passage.rank);
    node.querySelector(".card-title").textContent = c.title || c.doc_id || "（无标题）";
    var score = Number(passage.score) || 0;
    node.querySelector(".score-value").textContent = score.toFixed(3);
    node.querySelector(".score-fill").style.width = Math.round(Math.max(0, Math.min(1, score)) * 100) + "%";
    var meta = node.querySelector(".card-meta");
    [c.source, c.date, c.paragraph ? "第 " + c.paragraph + " 段" : null, c.section].forEach(function (part) {
      if (part) meta.appendChild(element("span", null, part));
    });
    markedText(node.querySelector(".card-text"), passage.text || "", passage.highlight);
    var copies = passage.also_in || [];
    if (copies.length) {
      // Wire copies: the same text in other documents, each a link to its paragraph.
      var also = element("p", "also-in", "亦见于：");
      copies.forEach(function (copy, i) {
        var link = element("a", null, copy.source || copy.title || copy.doc_id);
        link.href = "/doc/" + encodeURIComponent(copy.doc_id || "") + "#p" + encodeURIComponent(copy.paragraph || 1);
        if (copy.date) link.title = copy.date;
        if (i) also.appendChild(document.createTextNode("、"));
        also.appendChild(link);
      });
      node.querySelector(".card-text").after(also);
    }
    var open = node.querySelector(".open-doc");
    open.href = "/doc/" + encodeURIComponent(c.doc_id || "") + "#p" + encodeURIComponent(c.paragraph || 1);
    var original = node.querySelector(".original");
    var url = httpUrl(c.url);
    if (url) original.href = url;
    else original.remove();
    return node;
  }

  function scrollToBottom() {
    window.requestAnimationFrame(function () {
      conversation.scrollTop = conversation.scrollHeight;
    });
  }

  function addBubble(className, text) {
    var bubble = element("div", "bubble " + className, text);
    conversation.appendChild(bubble);
    scrollToBottom();
    return bubble;
  }

  function showAnswer(answer, questionBubble) {
    var block = element("section", "answer");
    var passages = Array.isArray(answer.passages) ? answer.passages : [];
    if (passages.length === 0) {
      block.appendChild(element("p", "notice empty", "没有找到相关内容，换个问法试试。"));
    } else {
      var took = typeof answer.took_ms === "number" ? " · 用时 " + Math.round(answer.took_ms) + " 毫秒" : "";
      block.appendChild(element("p", "answer-summary", "找到 " + passages.length + " 段相关内容" + took));
      if (answer.confident === false) {
        block.appendChild(element("p", "notice unsure", "这些段落与问题的关联不强，语料中可能没有直接答案。"));
      }
      passages.forEach(function (passage) {
        block.appendChild(card(passage));
      });
    }
    conversation.appendChild(block);
    window.requestAnimationFrame(function () {
      conversation.scrollTop = questionBubble.offsetTop - 12;
    });
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

  function ask(question) {
    if (busy) return;
    question = question.trim();
    if (!question) {
      input.focus();
      return;
    }
    if (welcome) {
      welcome.remove();
      welcome = null;
    }
    busy = true;
    send.disabled = true;
    var questionBubble = addBubble("question", question);
    var loading = addBubble("loading", "");
    loading.setAttribute("aria-label", "正在检索");
    loading.appendChild(element("span", "dots", ""));
    loading.appendChild(element("span", null, "正在检索相关新闻…"));
    input.value = "";
    resize();

    var controller = new AbortController();
    var timer = window.setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS);
    fetch("/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ question: question, top_k: Number(topK.value), mode: mode.value }),
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
        if (result.ok) showAnswer(result.body, questionBubble);
        else showError(errorMessage(result.body, result.status));
      })
      .catch(function (error) {
        loading.remove();
        showError(error && error.name === "AbortError" ? "等待太久，请稍后再试。" : "无法连接服务器，请检查服务是否在运行。");
      })
      .finally(function () {
        window.clearTimeout(timer);
        busy = false;
        send.disabled = false;
        input.focus();
      });
  }

  function resize() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight, 160) + "px";
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    ask(input.value);
  });

  input.addEventListener("keydown", function (event) {
    // Enter sends; Shift+Enter is a new line; Enter that confirms an IME candidate is neither.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      event.preventDefault();
      ask(input.value);
    }
  });
  input.addEventListener("input", resize);

  document.querySelectorAll(".example").forEach(function (button) {
    button.addEventListener("click", function () { ask(button.textContent); });
  });

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

  input.focus();
})();

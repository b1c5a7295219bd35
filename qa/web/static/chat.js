// The chat page: sends questions to the JSON API and shows the answers (cards.js),
// keeps the conversation in this browser, and asks the question of a permalink (/?q=…).
// Every piece of text from the server goes into the page through textContent, never as HTML.
(function () {
  "use strict";

  var permalink = window.NewsQA.permalink;
  var store = window.NewsQA.history;
  var cards = window.NewsQA.cards;
  var filters = window.NewsQA.filters;

  var REQUEST_TIMEOUT_MS = 60000;
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
  var clearButton = document.getElementById("clear-history");
  var busy = false;

  var element = cards.element;
  var announce = cards.announce;

  function addBubble(className, text) {
    var bubble = element("div", "bubble " + className, text);
    conversation.appendChild(bubble);
    return bubble;
  }

  function showAnswer(request, answer) {
    conversation.appendChild(cards.answerBlock(request, answer));
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
    return filters.applyTo({ question: question, top_k: Number(topK.value), mode: mode.value });
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
      .then(cards.readJson)
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
    if (event.key === "/" && !event.ctrlKey && !event.metaKey && !event.altKey && !isTyping(event.target) &&
        !document.querySelector("dialog[open]")) {
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

  // The status line (counts from /api/health) is archive.js's.

  var restored = restoreHistory();
  var linked = permalink.requestFromQuery(window.location.search);
  if (linked) {
    // Asked once: a reload shows it from the history instead of asking again.
    window.history.replaceState(null, "", "/");
    if (linked.top_k !== undefined) selectValue(topK, linked.top_k, linked.top_k + " 条");
    if (linked.mode !== undefined) selectValue(mode, linked.mode, linked.mode);
    // The link's filters replace any chosen here: it asks exactly what it says.
    filters.set(linked);
    ask(Object.assign(currentRequest(linked.question), linked));
  } else if (restored) {
    var position = savedScroll();
    if (position === null) scrollToBottom();
    else window.scrollTo(0, position);
  }
  input.focus({ preventScroll: true });
})();

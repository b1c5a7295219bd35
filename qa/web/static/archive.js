// The archive panel: what the index holds (counts, sources, date range, the latest documents)
// and, with an API key, upload and delete through the write API. The key lives in this tab's
// sessionStorage only: never in localStorage, a cookie or a URL.
// Every piece of text from the server goes into the page through textContent, never as HTML.
(function () {
  "use strict";

  var KEY_STORAGE = "newsqa.apiKey";
  var PAGE_SIZE = 100;       // GET /api/documents' largest page
  var MAX_READ = 2000;       // the newest documents listed (the API pages them newest first)
  var LATEST = 10;
  var STATUS_WORDS = { added: "已添加", replaced: "已替换", unchanged: "无变化（已收录）" };
  var ERROR_LEADS = {
    writes_disabled: "服务器没有开启写入",
    missing_key: "需要 API 密钥",
    invalid_key: "密钥无效",
    body_too_large: "文件太大",
    unreadable_file: "读不出这个文件",
    invalid_document: "不能收录",
    index_busy: "索引正忙，请稍后再试",
    document_not_found: "没有这篇文章",
  };

  var dialog = document.getElementById("archive");
  var openButton = document.getElementById("archive-open");
  var closeButton = document.getElementById("archive-close");
  var status = document.getElementById("status");
  var counts = document.getElementById("archive-counts");
  var rangeLine = document.getElementById("archive-range");
  var sourceList = document.getElementById("archive-sources");
  var find = document.getElementById("archive-find");
  var latestNote = document.getElementById("archive-latest-note");
  var documentList = document.getElementById("archive-documents");
  var writesOff = document.getElementById("archive-writes-off");
  var keyForm = document.getElementById("key-form");
  var keyInput = document.getElementById("api-key");
  var keySet = document.getElementById("key-set");
  var forget = document.getElementById("key-forget");
  var dropZone = document.getElementById("drop-zone");
  var picker = document.getElementById("upload-files");
  var uploads = document.getElementById("uploads");
  var announcer = document.getElementById("archive-announcer");
  var maxBytes = Number(dropZone.getAttribute("data-max-bytes")) || Infinity;

  var writesOn = true;       // as /api/health last said
  var listed = [];           // the documents read, newest first
  var listedAll = false;     // whether that is every document
  var documentsLoaded = false;
  var queue = Promise.resolve();
  var focusAfterClose = null;  // where focus goes when the panel closes (else its button)

  var element = window.NewsQA.cards.element;
  var readJson = window.NewsQA.cards.readJson;

  function announce(text) {
    announcer.textContent = text;
  }

  // ---- The key

  function storedKey() {
    try {
      return window.sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (e) {
      return "";
    }
  }

  var memoryKey = "";  // when sessionStorage is off, the key lasts as long as the page

  function apiKey() {
    return storedKey() || memoryKey;
  }

  function setKey(key) {
    memoryKey = key;
    try {
      if (key) window.sessionStorage.setItem(KEY_STORAGE, key);
      else window.sessionStorage.removeItem(KEY_STORAGE);
    } catch (e) {
      // Kept in memory only.
    }
    showKey();
  }

  function showKey() {
    var has = Boolean(apiKey());
    keyForm.hidden = has;
    keySet.hidden = !has;
    document.getElementById("key-set-text").textContent = writesOn
      ? "已输入密钥，可以上传和删除。" : "已输入密钥，但服务器没有开启写入。";
    renderDocuments();
  }

  function headers(extra) {
    var h = Object.assign({ Accept: "application/json" }, extra || {});
    var key = apiKey();
    if (key) h.Authorization = "Bearer " + key;
    return h;
  }

  // ---- Reading: health, sources, documents

  function getJson(url) {
    return fetch(url, { headers: headers() }).then(readJson);
  }

  function showHealth(health) {
    var index = health.index || {};
    status.textContent = "";
    status.appendChild(element("span", "status-lead", "已收录 "));
    status.appendChild(document.createTextNode(index.documents + " 篇文章"));
    status.appendChild(element("span", "status-detail", " · " + index.chunks + " 个段落"));
    status.classList.remove("down");
    status.classList.add("ok");
    counts.textContent = index.documents + " 篇文章 · " + index.chunks + " 个段落";
    var changed = typeof index.changed_at === "string" ? index.changed_at : null;
    if (changed) counts.appendChild(element("span", "archive-changed", " · 最近更新 " + shortTime(changed)));
    writesOn = health.writes !== false;
    writesOff.hidden = writesOn;
    showKey();
  }

  // "2026-11-27T12:40:31+00:00" -> "2026-11-27 12:40" in the reader's time zone.
  function shortTime(text) {
    var when = new Date(text);
    if (isNaN(when.getTime())) return text;
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return when.getFullYear() + "-" + two(when.getMonth() + 1) + "-" + two(when.getDate()) +
      " " + two(when.getHours()) + ":" + two(when.getMinutes());
  }

  function showCatalog(catalog) {
    sourceList.textContent = "";
    var sources = catalog && Array.isArray(catalog.sources) ? catalog.sources : [];
    sources.forEach(function (s) {
      if (!s || typeof s.name !== "string") return;
      // Each source is a shortcut to asking only of it.
      var item = element("li");
      var only = item.appendChild(element("button", "archive-source"));
      only.type = "button";
      only.title = "只看" + s.name + "的文章";
      only.appendChild(element("span", "source-name", s.name));
      only.appendChild(element("span", "source-count", s.documents + " 篇"));
      only.addEventListener("click", function () {
        window.NewsQA.filters.onlySource(s.name);
        focusAfterClose = document.getElementById("question");
        dialog.close();
      });
      sourceList.appendChild(item);
    });
    sourceList.hidden = sources.length === 0;
    var from = catalog && catalog.date_from;
    var to = catalog && catalog.date_to;
    rangeLine.hidden = !(from || to);
    rangeLine.textContent = from || to ? "日期 " + (from || "…") + " 至 " + (to || "…") : "";
  }

  // Health for the counts, sources for the list and the filters; the sources endpoint may
  // not exist on an older server, and then only the list is missing.
  function refresh() {
    var health = getJson("/api/health").then(function (result) {
      if (!result.ok || !result.body || !result.body.index) throw new Error("health " + result.status);
      showHealth(result.body);
    }).catch(function () {
      status.textContent = "服务暂不可用";
      status.classList.remove("ok");
      status.classList.add("down");
      counts.textContent = "读不到资料库的状态。";
    });
    var catalog = getJson("/api/sources").then(function (result) {
      return result.ok && result.body ? result.body : null;
    }, function () { return null; }).then(function (body) {
      showCatalog(body);
      document.dispatchEvent(new CustomEvent("newsqa:catalog", { detail: body }));
    });
    // The list is read when the panel is open (and again on each change), not on every visit.
    var docs = dialog.open ? loadDocuments() : Promise.resolve();
    return Promise.all([health, catalog, docs]);
  }

  // Every document's metadata, a page at a time (up to MAX_READ), newest date first.
  function loadDocuments() {
    latestNote.textContent = "正在读取文章列表…";
    var read = [];
    function page(offset) {
      return getJson("/api/documents?sort=date&offset=" + offset + "&limit=" + PAGE_SIZE).then(function (result) {
        if (!result.ok || !result.body || !Array.isArray(result.body.documents)) {
          throw new Error(errorText(result));
        }
        read = read.concat(result.body.documents);
        var total = Number(result.body.total) || 0;
        if (result.body.documents.length && read.length < total && read.length < MAX_READ) {
          return page(offset + PAGE_SIZE);
        }
        return total;
      });
    }
    return page(0).then(function (total) {
      listed = read.sort(newestFirst);
      listedAll = read.length >= total;
      documentsLoaded = true;
      renderDocuments();
    }).catch(function (error) {
      latestNote.textContent = "读不到文章列表：" + error.message;
    });
  }

  function newestFirst(a, b) {
    var da = a.date || "";
    var db = b.date || "";
    if (da !== db) return da < db ? 1 : -1;
    return a.doc_id < b.doc_id ? -1 : a.doc_id > b.doc_id ? 1 : 0;
  }

  function matches(doc, words) {
    var haystack = [doc.title, doc.source, doc.doc_id, doc.date].join(" ").toLowerCase();
    return words.every(function (word) { return haystack.indexOf(word) >= 0; });
  }

  var renderWaiting = false;  // a refresh came while a deletion was being confirmed

  function renderDocuments() {
    if (!documentsLoaded) return;
    // Not under the reader's hand: a confirmation open in the list stays until answered.
    if (documentList.querySelector(".confirm")) {
      renderWaiting = true;
      return;
    }
    renderWaiting = false;
    documentList.textContent = "";
    var words = find.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    var shown = (words.length ? listed.filter(function (d) { return matches(d, words); }) : listed)
      .slice(0, LATEST);
    shown.forEach(function (doc) { documentList.appendChild(documentItem(doc)); });
    var note;
    if (!listed.length) note = "资料库里还没有文章。";
    else if (words.length) note = shown.length ? "找到的文章（最多 " + LATEST + " 篇）：" : "没有找到符合的文章。";
    else note = "按日期，最新的 " + shown.length + " 篇" +
      (listedAll ? "：" : "（在按编号读取的前 " + listed.length + " 篇中）：");
    latestNote.textContent = note;
  }

  function documentItem(doc) {
    var item = element("li", "archive-document");
    item.setAttribute("data-doc-id", doc.doc_id);
    var text = item.appendChild(element("div", "archive-document-text"));
    var link = text.appendChild(element("a", "archive-document-title", doc.title || doc.doc_id));
    link.href = "/doc/" + encodeURIComponent(doc.doc_id);
    var meta = text.appendChild(element("span", "archive-document-meta"));
    [doc.source, doc.date, doc.doc_id].forEach(function (part) {
      if (part) meta.appendChild(element("span", null, part));
    });
    if (apiKey() && writesOn) {
      var remove = item.appendChild(element("button", "doc-delete", "删除"));
      remove.type = "button";
      remove.setAttribute("aria-label", "删除《" + (doc.title || doc.doc_id) + "》");
      remove.addEventListener("click", function () { confirmDelete(item, doc, remove); });
    }
    return item;
  }

  // ---- Writing: delete, upload

  function errorText(result) {
    var error = result.body && result.body.error;
    if (error && typeof error.message === "string") {
      var lead = ERROR_LEADS[error.code];
      return lead ? lead + "：" + error.message : error.message;
    }
    return result.status ? "服务器返回了 HTTP " + result.status + "。" : "无法连接服务器。";
  }

  // Asked in place, not with window.confirm: the row itself says what will go.
  function confirmDelete(item, doc, button) {
    if (item.querySelector(".confirm")) return;
    button.hidden = true;
    var box = item.appendChild(element("div", "confirm"));
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "确认删除");
    box.appendChild(element("span", "confirm-text", "从资料库删除这篇文章？"));
    var yes = box.appendChild(element("button", "confirm-yes", "确定删除"));
    yes.type = "button";
    var no = box.appendChild(element("button", "confirm-no", "取消"));
    no.type = "button";
    no.addEventListener("click", function () { dismiss(box, button, doc); });
    yes.addEventListener("click", function () {
      yes.disabled = no.disabled = true;
      deleteDocument(doc).then(function (result) {
        if (result.ok) {
          box.remove();
          listed = listed.filter(function (d) { return d.doc_id !== doc.doc_id; });
          announce("已删除《" + (doc.title || doc.doc_id) + "》");
          showResult(null, "已删除《" + (doc.title || doc.doc_id) + "》", "ok");
          refresh().then(function () { find.focus(); });
        } else {
          box.textContent = "";
          box.appendChild(element("span", "confirm-error", errorText(result)));
          box.setAttribute("role", "alert");
          var back = box.appendChild(element("button", "confirm-no", "知道了"));
          back.type = "button";
          back.addEventListener("click", function () { dismiss(box, button, doc); });
          back.focus();
        }
      });
    });
    no.focus();
  }

  // The confirmation closed: the row as it was, with its button focused (re-found when the
  // list was redrawn meanwhile).
  function dismiss(box, button, doc) {
    box.remove();
    button.hidden = false;
    if (renderWaiting) {
      renderDocuments();
      var rows = documentList.querySelectorAll(".archive-document");
      button = Array.prototype.filter.call(rows, function (row) {
        return row.getAttribute("data-doc-id") === doc.doc_id;
      }).map(function (row) { return row.querySelector(".doc-delete"); })[0] || find;
    }
    button.focus();
  }

  function deleteDocument(doc) {
    return fetch("/api/documents/" + encodeURIComponent(doc.doc_id), {
      method: "DELETE", headers: headers(),
    }).then(readJson, function () { return { ok: false, status: 0, body: null }; });
  }

  // A row in the results list: a file's name, its progress, then what became of it.
  function showResult(name, text, kind) {
    var row = element("li", "upload " + (kind || ""));
    if (name) row.appendChild(element("span", "upload-name", name));
    var progress = row.appendChild(element("progress", "upload-progress"));
    progress.max = 1;
    progress.value = 0;
    progress.setAttribute("aria-label", name ? "上传 " + name : "进度");
    progress.hidden = Boolean(text);
    row.appendChild(element("span", "upload-result", text || "等待上传…"));
    uploads.insertBefore(row, uploads.firstChild);
    return row;
  }

  function finishRow(row, text, kind, ids) {
    row.querySelector(".upload-progress").hidden = true;
    row.querySelector(".upload-result").textContent = text;
    row.classList.add(kind);
    if (kind === "error") row.querySelector(".upload-result").setAttribute("role", "alert");
    (ids || []).slice(0, 3).forEach(function (id) {
      var link = row.appendChild(element("a", "upload-open", "查看"));
      link.href = "/doc/" + encodeURIComponent(id);
      link.setAttribute("aria-label", "查看 " + id);
    });
  }

  // "已添加 · 3 个段落", or for a file of several documents "3 篇：已添加 2 · 无变化 1 · 共 9 个段落".
  function uploadSummary(body) {
    var docs = Array.isArray(body.documents) && body.documents.length ? body.documents : [body];
    var chunks = docs.reduce(function (sum, d) { return sum + (Number(d.chunks) || 0); }, 0);
    if (docs.length === 1) return (STATUS_WORDS[docs[0].status] || docs[0].status) + " · " + chunks + " 个段落";
    var tally = {};
    docs.forEach(function (d) { tally[d.status] = (tally[d.status] || 0) + 1; });
    var parts = Object.keys(tally).map(function (s) {
      return (STATUS_WORDS[s] || s).replace(/（.*）/, "") + " " + tally[s];
    });
    return docs.length + " 篇：" + parts.join(" · ") + " · 共 " + chunks + " 个段落";
  }

  function uploadFile(file) {
    var row = showResult(file.name, "", "");
    if (file.size > maxBytes) {
      finishRow(row, "文件太大：超过 " + Math.round(maxBytes / 1048576) + " MB 的上限，没有上传。", "error");
      return Promise.resolve(false);
    }
    var progress = row.querySelector(".upload-progress");
    var result = row.querySelector(".upload-result");
    return new Promise(function (resolve) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/documents");
      var h = headers();
      Object.keys(h).forEach(function (name) { xhr.setRequestHeader(name, h[name]); });
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) {
          progress.value = event.loaded / event.total;
          result.textContent = "正在上传 " + Math.round(100 * event.loaded / event.total) + "%";
        }
      });
      xhr.upload.addEventListener("load", function () {
        progress.removeAttribute("value");  // indeterminate while the server reads and indexes
        result.textContent = "正在收录…";
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch (e) {
          body = null;
        }
        if (xhr.status >= 200 && xhr.status < 300 && body) {
          var docs = Array.isArray(body.documents) && body.documents.length ? body.documents : [body];
          finishRow(row, uploadSummary(body), "ok", docs.map(function (d) { return d.doc_id; }));
          announce(file.name + "：" + uploadSummary(body));
          resolve(true);
        } else {
          var text = errorText({ status: xhr.status, body: body });
          finishRow(row, text, "error");
          announce(file.name + "：" + text);
          resolve(false);
        }
      });
      xhr.addEventListener("error", function () {
        finishRow(row, "无法连接服务器。", "error");
        resolve(false);
      });
      var data = new FormData();
      data.append("file", file, file.name);
      xhr.send(data);
    });
  }

  // One file at a time: the server embeds each upload while the request waits.
  function uploadFiles(files) {
    files = Array.prototype.slice.call(files || []);
    if (!files.length) return;
    queue = queue.then(function () {
      return files.reduce(function (chain, file) {
        return chain.then(function () { return uploadFile(file); });
      }, Promise.resolve());
    }).then(refresh);
  }

  // ---- Opening and closing, and the controls

  function openArchive() {
    if (!dialog.open) dialog.showModal();
    openButton.setAttribute("aria-expanded", "true");
    refresh();
  }

  dialog.addEventListener("close", function () {
    openButton.setAttribute("aria-expanded", "false");
    (focusAfterClose || openButton).focus();
    focusAfterClose = null;
  });
  openButton.setAttribute("aria-expanded", "false");
  openButton.addEventListener("click", openArchive);
  closeButton.addEventListener("click", function () { dialog.close(); });
  // A click on the backdrop (outside the panel's box) closes it too.
  dialog.addEventListener("click", function (event) {
    if (event.target !== dialog) return;
    var box = dialog.getBoundingClientRect();
    var inside = event.clientX >= box.left && event.clientX <= box.right &&
      event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) dialog.close();
  });

  keyForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var key = keyInput.value.trim();
    keyInput.value = "";
    if (!key) {
      keyInput.focus();
      return;
    }
    setKey(key);
    announce("已使用这个密钥");
    forget.focus();
  });
  forget.addEventListener("click", function () {
    setKey("");
    announce("密钥已忘记");
    keyInput.focus();
  });
  find.addEventListener("input", renderDocuments);

  picker.addEventListener("change", function () {
    uploadFiles(picker.files);
    picker.value = "";
  });
  ["dragenter", "dragover"].forEach(function (name) {
    dropZone.addEventListener(name, function (event) {
      event.preventDefault();
      dropZone.classList.add("dragging");
    });
  });
  ["dragleave", "dragend"].forEach(function (name) {
    dropZone.addEventListener(name, function () { dropZone.classList.remove("dragging"); });
  });
  dropZone.addEventListener("drop", function (event) {
    event.preventDefault();
    dropZone.classList.remove("dragging");
    uploadFiles(event.dataTransfer && event.dataTransfer.files);
  });
  // A file dropped beside the zone must not navigate away from the conversation.
  ["dragover", "drop"].forEach(function (name) {
    window.addEventListener(name, function (event) {
      if (!dropZone.contains(event.target)) event.preventDefault();
    });
  });

  showKey();
  refresh();

  window.NewsQA = window.NewsQA || {};
  window.NewsQA.archive = { refresh: refresh, open: openArchive };
})();

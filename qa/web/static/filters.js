// The filter controls under the question box: sources (from GET /api/sources), a date range
// and the order. They travel with each question as the POST /api/ask `filters` and `sort`
// fields, and a summary line says what is active. Nothing is sent when nothing is chosen.
(function () {
  "use strict";

  var STORAGE_KEY = "newsqa.filters";
  var cards = window.NewsQA.cards;
  var permalink = window.NewsQA.permalink;

  var panel = document.getElementById("filters");
  var toggle = document.getElementById("filter-toggle");
  var sourceBox = document.getElementById("filter-sources");
  var sourceList = document.getElementById("source-options");
  var since = document.getElementById("filter-since");
  var until = document.getElementById("filter-until");
  var range = document.getElementById("filter-range");
  var sort = document.getElementById("sort");
  var reset = document.getElementById("filter-reset");
  var done = document.getElementById("filter-done");
  var summary = document.getElementById("filter-summary");
  var summaryText = document.getElementById("filter-summary-text");
  var clear = document.getElementById("filter-clear");

  var element = cards.element;

  function sourceInputs() {
    return Array.prototype.slice.call(sourceList.querySelectorAll("input[type=checkbox]"));
  }

  function checkedSources() {
    return sourceInputs().filter(function (box) { return box.checked; })
      .map(function (box) { return box.value; });
  }

  function addSource(name, documents, checked) {
    var label = element("label", "source-option");
    var box = element("input");
    box.type = "checkbox";
    box.name = "source";
    box.value = name;
    box.checked = Boolean(checked);
    label.appendChild(box);
    label.appendChild(element("span", "source-name", name));
    if (typeof documents === "number") label.appendChild(element("span", "source-count", documents + " 篇"));
    sourceList.appendChild(label);
    return box;
  }

  // The sources the archive has (null when the server has no /api/sources): rebuilt keeping
  // what was ticked, including a source a permalink named that the list does not have.
  function setSources(catalog) {
    var ticked = checkedSources();
    sourceList.textContent = "";
    var names = [];
    if (catalog && Array.isArray(catalog.sources)) {
      catalog.sources.forEach(function (s) {
        if (!s || typeof s.name !== "string" || !s.name) return;
        names.push(s.name);
        addSource(s.name, s.documents, ticked.indexOf(s.name) >= 0);
      });
    }
    ticked.forEach(function (name) {
      if (names.indexOf(name) < 0) addSource(name, null, true);
    });
    sourceBox.hidden = sourceInputs().length === 0;
    var from = catalog && permalink.isoDate(String(catalog.date_from || ""));
    var to = catalog && permalink.isoDate(String(catalog.date_to || ""));
    since.min = until.min = from || "";
    since.max = until.max = to || "";
    range.textContent = from && to ? "资料库收录 " + from + " 至 " + to + " 的文章" : "";
    update();
  }

  function dateValue(input) {
    return permalink.isoDate(input.value || "") || null;
  }

  // A range given backwards is meant the other way round.
  function orderDates() {
    var from = dateValue(since);
    var to = dateValue(until);
    if (from && to && from > to) {
      since.value = to;
      until.value = from;
    }
  }

  function chosen() {
    var filters = {};
    var sources = checkedSources();
    if (sources.length) filters.source = sources;
    var from = dateValue(since);
    var to = dateValue(until);
    if (from) filters.date_from = from;
    if (to) filters.date_to = to;
    return { filters: filters, sort: sort.value === "date" ? "date" : "relevance" };
  }

  // The request with the chosen filters and order; without any, the request as it was.
  function applyTo(request) {
    var now = chosen();
    if (Object.keys(now.filters).length) request.filters = now.filters;
    if (now.sort !== "relevance") request.sort = now.sort;
    return request;
  }

  // The controls as a request (a permalink's) asks; what it does not name is cleared.
  function set(request) {
    var f = (request && request.filters) || {};
    var wanted = [].concat(f.source || []);
    sourceInputs().forEach(function (box) { box.checked = wanted.indexOf(box.value) >= 0; });
    var have = sourceInputs().map(function (box) { return box.value; });
    wanted.forEach(function (name) {
      if (have.indexOf(name) < 0) addSource(name, null, true);
    });
    sourceBox.hidden = sourceInputs().length === 0;
    since.value = f.date_from || "";
    until.value = f.date_to || "";
    sort.value = request && request.sort === "date" ? "date" : "relevance";
    update();
  }

  // Kept for this tab, so that reading an article and coming Back does not silently widen
  // the next question to the whole archive.
  function remember(now) {
    try {
      window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(now));
    } catch (e) {
      // No session storage: the filters last as long as the page.
    }
  }

  function remembered() {
    try {
      var saved = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || "null");
      return saved && typeof saved === "object" ? saved : null;
    } catch (e) {
      return null;
    }
  }

  // From the archive's source list: ask only of this source (the dates and order stay).
  function onlySource(name) {
    var now = chosen();
    now.filters.source = [name];
    set(now);
  }

  function update() {
    var now = chosen();
    remember(now);
    var line = cards.filterLine(now.filters, now.sort);
    summaryText.textContent = line;
    summary.hidden = !line;
    toggle.classList.toggle("active", Boolean(line));
    toggle.textContent = line ? "已筛选" : "筛选";
    toggle.title = line || "按来源、日期筛选，或按日期排序";
  }

  function open(shown) {
    panel.hidden = !shown;
    toggle.setAttribute("aria-expanded", String(shown));
  }

  function clearAll() {
    set({});
  }

  toggle.addEventListener("click", function () {
    open(panel.hidden);
    if (!panel.hidden) (sourceInputs()[0] || since).focus();
  });
  done.addEventListener("click", function () {
    open(false);
    document.getElementById("question").focus();
  });
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") {
      event.preventDefault();
      open(false);
      toggle.focus();
    }
  });
  panel.addEventListener("change", function (event) {
    if (event.target === since || event.target === until) orderDates();
    update();
  });
  reset.addEventListener("click", function () {
    clearAll();
    since.focus();
  });
  clear.addEventListener("click", function () {
    clearAll();
    document.getElementById("question").focus();
  });
  document.addEventListener("newsqa:catalog", function (event) { setSources(event.detail); });

  var saved = remembered();
  if (saved && saved.filters) set(saved);
  else update();

  window.NewsQA = window.NewsQA || {};
  window.NewsQA.filters = {
    applyTo: applyTo,
    set: set,
    setSources: setSources,
    onlySource: onlySource,
  };
})();

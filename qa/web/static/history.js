// The conversation, kept in this browser (localStorage) so that it survives Back, reload and
// a restart. Each entry is a question as asked (the request body) and the answer as received.
// Storage can be full or switched off (private windows): the page then works without history.
(function () {
  "use strict";

  var KEY = "newsqa.history.v1";
  var MAX_ENTRIES = 100;

  function isEntry(entry) {
    return Boolean(entry && entry.request && typeof entry.request.question === "string" &&
      entry.answer && Array.isArray(entry.answer.passages));
  }

  function load() {
    try {
      var stored = JSON.parse(window.localStorage.getItem(KEY) || "[]");
      return Array.isArray(stored) ? stored.filter(isEntry) : [];
    } catch (e) {
      return [];
    }
  }

  // Keeps the newest entries that fit: when storage is full, the oldest go first.
  function save(entries) {
    entries = entries.slice(-MAX_ENTRIES);
    while (true) {
      try {
        if (entries.length) window.localStorage.setItem(KEY, JSON.stringify(entries));
        else window.localStorage.removeItem(KEY);
        return true;
      } catch (e) {
        if (!entries.length) return false;
        entries = entries.slice(Math.ceil(entries.length / 2));
      }
    }
  }

  function add(request, answer) {
    var entries = load();
    entries.push({ request: request, answer: answer, at: new Date().toISOString() });
    return save(entries);
  }

  function clear() {
    var entries = load();
    save([]);
    return entries;
  }

  window.NewsQA = window.NewsQA || {};
  window.NewsQA.history = {
    KEY: KEY,
    load: load,
    save: save,
    add: add,
    clear: clear,
  };
})();

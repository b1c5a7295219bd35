// Links to answers and to their sources.
//
// A permalink /?q=…&k=…&mode=…&source=…&since=…&until=…&sort=… asks its question again, with
// the same filters, when opened. Each row of FIELDS maps one URL parameter to one field of the
// POST /api/ask body; linking a new request field is one row.
(function () {
  "use strict";

  var MODES = ["hybrid", "vector", "keyword"];
  var SORTS = ["relevance", "date"];

  function text(value) {
    value = value.trim();
    return value ? value : undefined;
  }

  function integer(min, max) {
    return function (value) {
      var n = /^\d{1,6}$/.test(value) ? Number(value) : NaN;
      return n >= min && n <= max ? n : undefined;
    };
  }

  function oneOf(choices) {
    return function (value) {
      return choices.indexOf(value) >= 0 ? value : undefined;
    };
  }

  // A real calendar day as YYYY-MM-DD (2024-02-30 is not one).
  function isoDate(value) {
    value = value.trim();
    if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return undefined;
    var day = new Date(value + "T00:00:00Z");
    return !isNaN(day.getTime()) && day.toISOString().slice(0, 10) === value ? value : undefined;
  }

  // param: its name in the URL; field: its path in the request body ("filters.source" is
  // nested); many: the parameter repeats and the field is a list; read: the parameter's text
  // to the field's value, or undefined when it is not valid (the page's default is used).
  var FIELDS = [
    { param: "q", field: "question", read: text },
    { param: "k", field: "top_k", read: integer(1, 50) },
    { param: "mode", field: "mode", read: oneOf(MODES) },
    { param: "source", field: "filters.source", many: true, read: text },
    { param: "since", field: "filters.date_from", read: isoDate },
    { param: "until", field: "filters.date_to", read: isoDate },
    { param: "sort", field: "sort", read: oneOf(SORTS) },
  ];

  function getField(request, path) {
    return path.split(".").reduce(function (value, key) {
      return value === undefined || value === null ? undefined : value[key];
    }, request);
  }

  function setField(request, path, value) {
    var keys = path.split(".");
    var last = keys.pop();
    var holder = keys.reduce(function (object, key) {
      if (typeof object[key] !== "object" || object[key] === null) object[key] = {};
      return object[key];
    }, request);
    holder[last] = value;
  }

  // The URL <-> request mapping, both ways. `requestFromQuery` gives null when there is no
  // question; parameters it does not know, or cannot read, are left out.
  function requestFromQuery(search) {
    var params = new URLSearchParams(search);
    var request = {};
    FIELDS.forEach(function (f) {
      var values = params.getAll(f.param).map(f.read).filter(function (v) { return v !== undefined; });
      if (f.many ? values.length : values.length === 1) setField(request, f.field, f.many ? values : values[0]);
    });
    return request.question ? request : null;
  }

  function queryFromRequest(request) {
    var params = new URLSearchParams();
    FIELDS.forEach(function (f) {
      var value = getField(request, f.field);
      [].concat(value === undefined || value === null ? [] : value).forEach(function (item) {
        if (item !== "") params.append(f.param, String(item));
      });
    });
    return "/?" + params.toString();
  }

  function isOffset(value) {
    return typeof value === "number" && value >= 0 && Math.floor(value) === value;
  }

  // /doc/<id>?start=…&end=…[&hs=…&he=…]#p<n>: the cited span in the document's clean text and,
  // when `withSentence`, the answering sentence (its highlight counts from the passage start).
  function sourceLink(citation, highlight, withSentence) {
    var c = citation || {};
    var params = new URLSearchParams();
    if (isOffset(c.char_start) && isOffset(c.char_end) && c.char_start < c.char_end) {
      params.set("start", c.char_start);
      params.set("end", c.char_end);
      var h = highlight || {};
      if (withSentence && isOffset(h.start) && isOffset(h.end) && h.start < h.end) {
        params.set("hs", c.char_start + h.start);
        params.set("he", c.char_start + h.end);
      }
    }
    var query = params.toString();
    var paragraph = isOffset(c.paragraph) && c.paragraph > 0 ? "#p" + c.paragraph : "";
    return "/doc/" + encodeURIComponent(c.doc_id || "") + (query ? "?" + query : "") + paragraph;
  }

  window.NewsQA = window.NewsQA || {};
  window.NewsQA.permalink = {
    MODES: MODES,
    SORTS: SORTS,
    isoDate: isoDate,
    requestFromQuery: requestFromQuery,
    queryFromRequest: queryFromRequest,
    sourceLink: sourceLink,
  };
})();

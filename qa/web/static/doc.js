// The article page: mark the cited span and, inside it, the answering sentence, then bring
// them to the middle of the screen.
//
// A link from an answer card is /doc/<id>?start=S&end=E&hs=HS&he=HE#p<n>: S..E is the cited
// passage and HS..HE the answering sentence, as code-point offsets into the document's clean
// text (each block carries its own offsets in data-start/data-end). Links with only #p<n>
// (older ones, or a paragraph number clicked here) mark that whole paragraph.
(function () {
  "use strict";

  var body = document.getElementById("article-body");
  var note = document.getElementById("cite-note");
  var noteText = document.getElementById("cite-note-text");
  var jump = document.getElementById("cite-jump");
  var target = null; // the element brought into view: the sentence, the span or the paragraph
  document.documentElement.classList.add("js");

  function offset(params, name) {
    var value = params.get(name);
    return value !== null && /^\d{1,9}$/.test(value) ? Number(value) : null;
  }

  // The offsets from the query string, or null unless they describe a span of this document;
  // the sentence is dropped (the span kept) when it does not lie inside the span.
  function citedSpan(search, length) {
    var params = new URLSearchParams(search);
    var start = offset(params, "start");
    var end = offset(params, "end");
    if (start === null || end === null || start >= end || end > length) return null;
    var span = { start: start, end: end, sentence: null };
    var hs = offset(params, "hs");
    var he = offset(params, "he");
    if (hs !== null && he !== null && start <= hs && hs < he && he <= end) {
      span.sentence = { start: hs, end: he };
    }
    return span;
  }

  function blocks() {
    return Array.prototype.filter.call(body.querySelectorAll("[data-start]"), function (el) {
      return el.querySelector(".block-text") !== null;
    });
  }

  function documentLength() {
    var all = blocks();
    return all.length ? Number(all[all.length - 1].getAttribute("data-end")) : 0;
  }

  function clear() {
    body.querySelectorAll(".is-cited").forEach(function (el) {
      el.classList.remove("is-cited", "whole");
      el.removeAttribute("tabindex");
    });
    body.querySelectorAll(".block-text").forEach(function (text) {
      if (text.querySelector("mark")) text.textContent = text.textContent;
    });
    target = null;
  }

  function mark(className, text) {
    var el = document.createElement("mark");
    el.className = className;
    el.textContent = text;
    return el;
  }

  // Rebuild one block's text with the part inside [from, to) of the document marked as
  // "cited", and the sentence's part of it nested as "answer". Offsets count code points.
  function markBlock(block, span) {
    var text = block.querySelector(".block-text");
    var chars = Array.from(text.textContent);
    var base = Number(block.getAttribute("data-start"));
    function local(position) {
      return Math.max(0, Math.min(chars.length, position - base));
    }
    function piece(from, to) {
      return chars.slice(from, to).join("");
    }
    var start = local(span.start);
    var end = local(span.end);
    var cited = mark("cited", "");
    if (span.sentence && span.sentence.start < base + chars.length && span.sentence.end > base) {
      var hs = Math.max(start, local(span.sentence.start));
      var he = Math.min(end, local(span.sentence.end));
      cited.appendChild(document.createTextNode(piece(start, hs)));
      cited.appendChild(mark("answer", piece(hs, he)));
      cited.appendChild(document.createTextNode(piece(he, end)));
    } else {
      cited.textContent = piece(start, end);
    }
    text.textContent = "";
    text.appendChild(document.createTextNode(piece(0, start)));
    text.appendChild(cited);
    text.appendChild(document.createTextNode(piece(end)));
    block.classList.add("is-cited");
    return cited;
  }

  function markSpan(span) {
    var first = null;
    var numbers = [];
    blocks().forEach(function (block) {
      var blockStart = Number(block.getAttribute("data-start"));
      var blockEnd = Number(block.getAttribute("data-end"));
      if (blockEnd <= span.start || blockStart >= span.end) return;
      var cited = markBlock(block, span);
      first = first || cited;
      if (block.id) numbers.push(block.id.slice(1));
    });
    if (!first) return false;
    target = body.querySelector("mark.answer") || first;
    var where = numbers.length > 1
      ? "第 " + numbers[0] + "–" + numbers[numbers.length - 1] + " 段"
      : numbers.length ? "第 " + numbers[0] + " 段" : "";
    showNote("已标出引用" + (where ? "（" + where + "）" : ""));
    return true;
  }

  function markParagraph(hash) {
    var match = /^#p(\d{1,6})$/.exec(hash);
    var paragraph = match && document.getElementById("p" + match[1]);
    if (!paragraph) return false;
    paragraph.classList.add("is-cited", "whole");
    target = paragraph;
    showNote("已标出引用段落（第 " + match[1] + " 段）");
    return true;
  }

  function showNote(text) {
    noteText.textContent = text;
    note.hidden = false;
  }

  function bringIntoView() {
    if (!target) return;
    target.setAttribute("tabindex", "-1");
    target.scrollIntoView({ block: "center" });
    target.focus({ preventScroll: true });
  }

  function markFromLocation(useQuery) {
    clear();
    var span = useQuery ? citedSpan(window.location.search, documentLength()) : null;
    if (!(span && markSpan(span)) && !markParagraph(window.location.hash)) note.hidden = true;
    bringIntoView();
  }

  jump.addEventListener("click", bringIntoView);
  // A paragraph number clicked on this page marks that paragraph instead.
  window.addEventListener("hashchange", function () { markFromLocation(false); });
  markFromLocation(true);
  // The browser scrolls to the #p<n> fragment itself once the page has loaded; centre after that.
  window.addEventListener("load", function () {
    window.requestAnimationFrame(bringIntoView);
  });
})();

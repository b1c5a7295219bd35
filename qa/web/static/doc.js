// The article page: mark the cited paragraph (#p<n>) and bring it to the middle of the screen.
(function () {
  "use strict";

  function markCited() {
    document.querySelectorAll(".paragraph.is-cited").forEach(function (el) {
      el.classList.remove("is-cited");
    });
    var match = /^#p(\d+)$/.exec(window.location.hash);
    if (!match) return;
    var target = document.getElementById("p" + match[1]);
    if (!target) return;
    target.classList.add("is-cited");
    target.setAttribute("tabindex", "-1");
    target.scrollIntoView({ block: "center" });
    target.focus({ preventScroll: true });
  }

  window.addEventListener("hashchange", markCited);
  markCited();
  // The browser scrolls to the fragment itself once the page has loaded; centre it after that.
  window.addEventListener("load", function () {
    window.requestAnimationFrame(markCited);
  });
})();

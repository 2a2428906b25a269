// Trellis portal: the only script. Forms work without it; with it, a form
// marked data-confirm asks before it is sent, and a region marked
// data-live="SECONDS" (a live realization's state) follows the page: it is
// fetched again every so often and the region replaced, until the page
// says it is no longer live.
"use strict";
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
});
(function () {
  var live = document.querySelector("[data-live]");
  if (!live || !window.fetch || !window.DOMParser) return;
  var every = Math.max(2, parseInt(live.getAttribute("data-live"), 10) || 5) * 1000;
  function poll() {
    if (document.hidden) { setTimeout(poll, every); return; }
    fetch(location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById(live.id);
        if (!next) return;
        live.innerHTML = next.innerHTML;
        if (next.hasAttribute("data-live")) setTimeout(poll, every);
        else live.removeAttribute("data-live");
      })
      .catch(function () { /* the next visit shows the state */ });
  }
  setTimeout(poll, every);
})();

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

// Live notifications (Server-Sent Events from /events): the badge counts
// new unread ones, and the notifications page lists them at the top. The
// browser reconnects by itself, sending the last id it saw, so nothing is
// missed or shown twice.
(function () {
  var nav = document.getElementById("nav-notes");
  if (!nav || !window.EventSource) return;
  var url = nav.getAttribute("data-events");
  var after = nav.getAttribute("data-after");
  if (after) url += "?after=" + encodeURIComponent(after);
  var es = new EventSource(url);
  // data-stream says the stream is up (styles and tests may look).
  es.addEventListener("ready", function () { nav.setAttribute("data-stream", "on"); });
  es.addEventListener("error", function () { nav.removeAttribute("data-stream"); });
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text) e.textContent = text;
    return e;
  }
  function bump() {
    var b = document.getElementById("unread");
    if (!b) {
      b = el("span", "badge", "0");
      b.id = "unread";
      nav.appendChild(document.createTextNode(" "));
      nav.appendChild(b);
    }
    if (b.textContent.slice(-1) === "+") return;
    var n = (parseInt(b.textContent, 10) || 0) + 1;
    b.textContent = n > 99 ? "99+" : String(n);
    b.setAttribute("aria-label", b.textContent + " unread");
  }
  es.addEventListener("notification", function (e) {
    var n;
    try { n = JSON.parse(e.data); } catch (err) { return; }
    if (document.getElementById("n-" + n.id)) return;
    if (!n.read) bump();
    var list = document.getElementById("live-notes");
    if (!list) return;
    var li = el("li", "note" + (n.read ? "" : " unread") + (n.urgent ? " is-urgent" : ""));
    li.id = "n-" + n.id;
    var p = el("p", "text");
    if (n.urgent) { p.appendChild(el("span", "tag urgent", "urgent")); p.appendChild(document.createTextNode(" ")); }
    p.appendChild(el("span", "tag", "new"));
    p.appendChild(document.createTextNode(" " + n.text));
    li.appendChild(p);
    li.appendChild(el("p", "muted", (n.sender ? "from " + n.sender + " · " : "") + n.created));
    if (n.request) {
      var a = el("a", "", "Reload to answer this request");
      a.href = "/notifications";
      li.appendChild(a);
    }
    list.insertBefore(li, list.firstChild);
  });
})();

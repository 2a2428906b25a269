// Trellis portal: the only script. Forms work without it; with it, a form
// marked data-confirm asks before it is sent.
"use strict";
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) e.preventDefault();
});

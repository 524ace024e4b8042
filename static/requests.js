// Requests page, progressive enhancement: choosing a filter from a list
// applies it at once. Without this file the "Apply filters" button does.
(function () {
  "use strict";
  var form = document.querySelector("form[data-live-filters]");
  if (!form) return;
  form.addEventListener("change", function (ev) {
    if (ev.target.tagName === "SELECT") form.submit();
  });
})();

// The status chart: fetched once the list is drawn and put inline, so
// each bar's <title> (its period and counts) shows on hover, which an
// <img> never does. Without this script the page shows it as an image.
(function () {
  "use strict";
  var box = document.querySelector("[data-chart-src]");
  if (!box || !window.fetch || !window.DOMParser) return;
  fetch(box.getAttribute("data-chart-src"), { credentials: "same-origin" })
    .then(function (res) { return res.ok ? res.text() : Promise.reject(res.status); })
    .then(function (text) {
      var doc = new DOMParser().parseFromString(text, "image/svg+xml");
      var svg = doc.documentElement;
      if (!svg || svg.localName !== "svg") return;
      box.replaceChildren(document.importNode(svg, true));
      box.setAttribute("data-loaded", "");
    })
    .catch(function () {
      box.textContent = "The chart could not be loaded. Reload the page to try again.";
    });
})();

// How many requests match: counted after the list is drawn, so the list
// never waits for it.
(function () {
  "use strict";
  var el = document.querySelector("[data-count-src]");
  if (!el || !window.fetch) return;
  fetch(el.getAttribute("data-count-src"), { credentials: "same-origin" })
    .then(function (res) { return res.ok ? res.text() : Promise.reject(res.status); })
    .then(function (text) { el.textContent = text; })
    .catch(function () {});
})();

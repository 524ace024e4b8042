// Progressive enhancement only: every page works without this file.
(function () {
  "use strict";

  // Copy buttons: <button data-copy="value">.
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    var text = btn.getAttribute("data-copy");
    var done = function () {
      var old = btn.textContent;
      btn.textContent = "Copied";
      setTimeout(function () { btn.textContent = old; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
    } else {
      var ta = document.createElement("textarea");
      ta.value = text;
      document.body.appendChild(ta);
      ta.select();
      try { document.execCommand("copy"); done(); } catch (e) {}
      document.body.removeChild(ta);
    }
  });

  // Confirmation for dangerous forms: <form data-confirm="question">.
  document.addEventListener("submit", function (ev) {
    var q = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
    if (q && !window.confirm(q)) ev.preventDefault();
  });

  // Times: the server writes each <time data-relative> as an absolute time
  // with its zone, and its hover; the relative time goes beside it.
  function relative(d) {
    var s = Math.round((Date.now() - d.getTime()) / 1000);
    var future = s < 0;
    s = Math.abs(s);
    var out;
    if (s < 45) out = "just now";
    else if (s < 90 * 60) out = Math.round(s / 60) + " min";
    else if (s < 36 * 3600) out = Math.round(s / 3600) + " h";
    else out = Math.round(s / 86400) + " d";
    if (out === "just now") return out;
    return future ? "in " + out : out + " ago";
  }
  document.querySelectorAll("time[datetime][data-relative]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (isNaN(d)) return;
    var rel = document.createElement("span");
    rel.className = "rel";
    rel.textContent = relative(d);
    t.after(rel);
  });

  // The header's zone switch: its Local button carries the browser's own
  // time zone, which only a script can know.
  var local = document.querySelector("button[data-local-zone]");
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) {}
  if (local && zone && local.getAttribute("aria-pressed") !== "true") {
    local.value = zone;
    local.title = zone;
    local.hidden = false;
  }
})();

// A page that shows a new API key's secret swaps its history entry for the
// key's own page: reloading then neither shows the secret again nor
// submits the create form twice. <section data-replace-url="/keys/...">.
(function () {
  "use strict";
  var el = document.querySelector("[data-replace-url]");
  if (el && window.history && history.replaceState) {
    history.replaceState(null, "", el.getAttribute("data-replace-url"));
  }
})();

// A link to a form field (/keys/key_…#f-rpm, from a fix) puts the cursor in it.
(function () {
  "use strict";
  if (!location.hash) return;
  var el = document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if (el && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName)) {
    el.focus();
    el.scrollIntoView({ block: "center" });
  }
})();

// The status chart: fetched once the list is drawn and put inline, so
// each bar's <title> (its period and counts) shows on hover, which an
// <img> never does. Without this script the page shows it as an image.
// (The Requests page.)
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

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

  // Times: <time datetime="RFC 3339"> shows relative time, exact local time on hover.
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
    t.title = d.toLocaleString();
    t.textContent = relative(d);
  });
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

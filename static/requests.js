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

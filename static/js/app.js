// Small behaviours for every page, without inline handlers (the CSP forbids them).
(function () {
  "use strict";
  // <select data-autosubmit>: submit its form when the choice changes.
  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el && el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) {
      el.form.submit();
    }
  });
  // A form that came back with errors: its summary (at the top) takes the focus.
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
})();

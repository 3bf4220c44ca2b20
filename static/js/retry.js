// retrySubmit: a rating-page POST (submit, skip) that failed on the network or with 502, 503 or
// 504 (the database restarting, a web node being replaced) is sent again, the same request
// from the same form, after 0.5, 1, 2, 4 and 8 s; then the page's network-error banner stays.
// Safe because those endpoints are idempotent per assignment: a submit whose commit went through
// before its answer was lost returns the next panel the second time and records nothing twice.
// Kept apart from rate.js (one script tag in rate.html) so it stands alone.
(function () {
  "use strict";

  var DELAYS_MS = [500, 1000, 2000, 4000, 8000];
  var RETRYABLE_STATUS = { 502: true, 503: true, 504: true };
  var attempts = new WeakMap();

  function retrySubmit(event) {
    var detail = event.detail || {};
    var form = detail.elt;
    if (!form || form.tagName !== "FORM" || !form.hasAttribute("hx-post")) return;
    var status = detail.xhr ? detail.xhr.status : 0;
    if (event.type === "htmx:responseError" && !RETRYABLE_STATUS[status]) return;
    var n = attempts.get(form) || 0;
    if (n >= DELAYS_MS.length) { attempts.delete(form); return; }
    attempts.set(form, n + 1);
    window.setTimeout(function () {
      if (form.isConnected) window.htmx.trigger(form, "submit");
    }, DELAYS_MS[n]);
  }

  document.addEventListener("htmx:sendError", retrySubmit);
  document.addEventListener("htmx:responseError", retrySubmit);
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful && event.detail.elt) attempts.delete(event.detail.elt);
  });
})();

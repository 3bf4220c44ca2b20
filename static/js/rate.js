// The rating page: keyboard shortcuts, time spent, lease heartbeat, network-error banner.
// Everything here is an enhancement: without JavaScript the forms post and the page reloads.
(function () {
  "use strict";

  var CHOICE_KEYS = { "1": "1", "2": "2", "3": "tie", "4": "both_bad" };
  var CRITERION_KEYS = CHOICE_KEYS;
  var STRENGTH_KEYS = { q: "slightly", w: "clearly", e: "much" };
  var FLAG_KEYS = { u: "unsafe", x: "cannot_judge" };

  var shownAt = performance.now();
  var lastActivity = Date.now();
  var lastBeat = Date.now();
  var heartbeatTimer = null;
  var expiryTimer = null;
  var currentPanel = null;

  function panel() { return document.getElementById("panel"); }
  function judgmentForm() { return document.getElementById("judgment-form"); }
  function skipForm() { var p = panel(); return p && p.querySelector("form.skip"); }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  function submit(form) {
    if (!form) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  function check(input) {
    if (!input) return;
    input.checked = true;
    input.focus();
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }

  function setNetError(show) {
    var banner = document.getElementById("net-error");
    if (banner) banner.hidden = !show;
  }

  function showLeaseExpired() {
    var banner = document.getElementById("lease-expired");
    if (banner) banner.hidden = false;
  }

  // --- per-panel setup (first load and after every htmx swap) ---------------------------
  function initPanel(focus) {
    currentPanel = panel();
    shownAt = performance.now();
    lastActivity = Date.now();
    lastBeat = Date.now();
    updateCounter();
    scheduleHeartbeat();
    if (focus) {
      window.scrollTo(0, 0);
      var title = document.getElementById("panel-title");
      if (title) title.focus({ preventScroll: true });
    }
  }

  function updateCounter() {
    var p = panel();
    var out = p && p.querySelector(".rationale output.counter");
    var area = p && p.querySelector(".rationale textarea");
    if (!out || !area) return;
    var n = area.value.length;
    var min = parseInt(out.getAttribute("data-min") || "0", 10);
    var max = parseInt(out.getAttribute("data-max") || "0", 10);
    out.textContent = n + (max ? " / " + max : "") + (n === 1 && !max ? " character" : " characters") +
      (min && n < min ? " (at least " + min + ")" : "");
  }

  // --- heartbeat: renew the lease while the rater is active ----------------------------
  function scheduleHeartbeat() {
    clearInterval(heartbeatTimer);
    clearTimeout(expiryTimer);
    var p = panel();
    if (!p || !p.dataset.heartbeatUrl) return;
    var leaseMs = parseInt(p.dataset.leaseSeconds || "600", 10) * 1000;
    // Beat well inside the lease so one lost request does not cost the rater their comparison.
    var every = Math.max(10000, Math.min(60000, leaseMs / 3));
    heartbeatTimer = setInterval(beat, every);
    armExpiry(p.dataset.expiresAt);
  }

  function armExpiry(isoTime) {
    clearTimeout(expiryTimer);
    var at = Date.parse(isoTime || "");
    if (!isNaN(at)) expiryTimer = setTimeout(showLeaseExpired, Math.max(0, at - Date.now()));
  }

  function beat() {
    var p = panel();
    if (!p || !p.dataset.heartbeatUrl) return;
    if (lastActivity <= lastBeat) return; // idle raters let the lease run out
    lastBeat = Date.now();
    fetch(p.dataset.heartbeatUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
    }).then(function (resp) {
      if (resp.status === 409) { showLeaseExpired(); return null; }
      return resp.ok ? resp.json() : null;
    }).then(function (data) {
      if (data && data.expires_at) armExpiry(data.expires_at);
    }).catch(function () { /* the next beat retries */ });
  }

  ["keydown", "pointermove", "pointerdown", "scroll", "input", "wheel"].forEach(function (type) {
    document.addEventListener(type, function () { lastActivity = Date.now(); }, { passive: true, capture: true });
  });

  // --- time spent: written just before the form is serialised -------------------------
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.id === "judgment-form") {
      var field = form.querySelector("input[name=duration_ms]");
      if (field) field.value = String(Math.round(performance.now() - shownAt));
    }
  }, true);

  document.addEventListener("input", function (event) {
    if (event.target && event.target.matches && event.target.matches(".rationale textarea")) updateCounter();
  });

  // --- keyboard ---------------------------------------------------------------------------
  function inCriterion(el) { return el && el.closest ? el.closest("fieldset.criterion") : null; }

  function nextCriterion() {
    var groups = Array.prototype.slice.call(document.querySelectorAll("#panel fieldset.criterion"));
    if (!groups.length) return;
    var current = inCriterion(document.activeElement);
    var i = current ? (groups.indexOf(current) + 1) % groups.length : 0;
    var target = groups[i].querySelector("input:checked") || groups[i].querySelector("input");
    if (target) target.focus();
  }

  document.addEventListener("keydown", function (event) {
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) return; // the dialog closes itself on Esc
    var t = event.target;
    var tag = t && t.tagName ? t.tagName.toLowerCase() : "";
    var typing = tag === "textarea" || (tag === "input" && /^(text|search|email|number)$/.test(t.type)) || (t && t.isContentEditable);

    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (t && t.closest && t.closest("form.skip")) return; // Enter there submits the skip form natively
      event.preventDefault();
      submit(judgmentForm());
      return;
    }
    if (typing) {
      if (event.key === "Escape") t.blur();
      return; // plain Enter in the skip reason submits the skip form natively
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (!panel()) return;

    var key = event.key;
    var lower = key.length === 1 ? key.toLowerCase() : key;
    if (key === "?") { event.preventDefault(); showHelp(); return; }
    if (!judgmentForm()) return;

    var group = inCriterion(t);
    if (group && CRITERION_KEYS[key]) {
      event.preventDefault();
      check(group.querySelector("input[value='" + CRITERION_KEYS[key] + "']"));
      return;
    }
    if (CHOICE_KEYS[key]) {
      var choice = judgmentForm().querySelector("input[name=choice][value='" + CHOICE_KEYS[key] + "']");
      if (choice) { event.preventDefault(); check(choice); }
      return;
    }
    if (STRENGTH_KEYS[lower]) {
      var s = judgmentForm().querySelector("input[name=strength][value='" + STRENGTH_KEYS[lower] + "']");
      if (s) { event.preventDefault(); check(s); }
      return;
    }
    if (FLAG_KEYS[lower]) {
      var f = judgmentForm().querySelector("input[name=flags][value='" + FLAG_KEYS[lower] + "']");
      if (f) { event.preventDefault(); f.checked = !f.checked; f.focus(); }
      return;
    }
    if (lower === "c") { event.preventDefault(); nextCriterion(); return; }
    if (lower === "r") {
      var area = judgmentForm().querySelector("textarea");
      if (area) { event.preventDefault(); area.focus(); }
      return;
    }
    if (lower === "s") { event.preventDefault(); submit(skipForm()); return; }
    if (key === "Enter") {
      if (tag === "button" || tag === "a" || tag === "summary") return; // their own Enter
      event.preventDefault();
      submit(judgmentForm());
    }
  });

  function showHelp() {
    var dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) dialog.showModal();
  }

  // --- htmx lifecycle -----------------------------------------------------------------------
  // An outerHTML swap replaces #panel itself: set up whenever a new panel element has settled.
  document.addEventListener("htmx:afterSettle", function () {
    if (panel() && panel() !== currentPanel) initPanel(true);
  });
  document.addEventListener("htmx:sendError", function () { setNetError(true); });
  document.addEventListener("htmx:responseError", function () { setNetError(true); });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful) setNetError(false);
  });

  document.addEventListener("DOMContentLoaded", function () {
    var help = document.getElementById("show-help");
    if (help) help.addEventListener("click", showHelp);
    initPanel(false);
  });
})();

// The rating page: keyboard shortcuts, time spent, lease heartbeat, network-error banner,
// error focus, response scrolling and its "continues below" cue, the diff toggle, this
// session's count and the break reminder.
// Everything here is an enhancement: without JavaScript the forms post and the page reloads.
(function () {
  "use strict";

  var CHOICE_KEYS = { "1": "1", "2": "2", "3": "tie", "4": "both_bad" };
  var CRITERION_KEYS = { "0": "", "1": "1", "2": "2", "3": "tie", "4": "both_bad" };
  // Response scrolling: [response number, direction].
  var SCROLL_KEYS = { j: [1, 1], k: [1, -1], n: [2, 1], m: [2, -1] };
  // The first error in the form's reading order gets the focus.
  var ERROR_ORDER = ["fieldset.choice", "fieldset.strength", ".criteria", ".rationale", "fieldset.flags"];
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

  // --- per-panel setup (first load and after every htmx swap)
  function initPanel(focus) {
    currentPanel = panel();
    shownAt = performance.now();
    lastActivity = Date.now();
    lastBeat = Date.now();
    updateCounter();
    scheduleHeartbeat();
    measureBar();
    updateCues();
    showSession();
    if (focus && !focusFirstError()) {
      window.scrollTo(0, 0);
      var title = document.getElementById("panel-title");
      if (title) title.focus({ preventScroll: true });
    }
  }

  // --- errors: the first one gets the focus and is scrolled to; #form-errors announces
  function focusFirstError() {
    var form = judgmentForm();
    var summary = document.getElementById("form-errors");
    if (!form || !summary || !summary.textContent.trim()) return false;
    var target = null;
    for (var i = 0; i < ERROR_ORDER.length && !target; i++) {
      var box = form.querySelector(ERROR_ORDER[i] + ".invalid");
      if (box) target = box.querySelector("input:checked, input, textarea");
    }
    target = target || summary;
    target.focus({ preventScroll: true });
    // The decision bar is always on screen; anything else is brought into view.
    if (!target.closest("#decision-bar")) target.scrollIntoView({ block: "center" });
    else window.scrollTo(0, 0);
    return true;
  }

  // --- layout: the responses take the height the decision bar leaves
  // On the root element: htmx copies the style attribute of a swapped element onto its
  // successor with setAttribute, which the CSP forbids.
  // Side by side, both responses end just above the bar; stacked (phone), each is a screen tall.
  function measureBar() {
    var root = document.documentElement.style;
    var bar = document.getElementById("decision-bar");
    var first = document.querySelector("#panel .response .scroll");
    if (!bar) return;
    root.setProperty("--bar-h", bar.offsetHeight + "px");
    if (!first) return;
    var top = window.innerWidth > 800 ? first.getBoundingClientRect().top + window.scrollY : 48;
    root.setProperty("--resp-h", Math.max(160, window.innerHeight - bar.offsetHeight - top - 12) + "px");
  }

  function visibleScroller(response) {
    var boxes = response ? response.querySelectorAll(".scroll") : [];
    for (var i = 0; i < boxes.length; i++) if (!boxes[i].hidden) return boxes[i];
    return null;
  }

  // "continues below" while a response has more text under its visible part.
  function updateCues() {
    var p = panel();
    if (!p) return;
    p.querySelectorAll(".response").forEach(function (response) {
      var box = visibleScroller(response);
      var cue = response.querySelector(".more-cue");
      if (!box || !cue) return;
      cue.hidden = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    });
  }

  function scrollResponse(n, direction) {
    var box = visibleScroller(document.querySelector("#panel .response[data-response='" + n + "']"));
    if (!box) return;
    box.scrollBy({ top: direction * Math.max(40, box.clientHeight * 0.8), behavior: "instant" });
    updateCues();
  }

  // The diff view: computed by the server on demand ("?diff=1" answers the panel with it);
  // its two panes are taken into the responses on screen, then D shows or hides them.
  function showDiff(on) {
    var button = document.getElementById("toggle-diff");
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.firstChild.textContent = on ? "Hide differences " : "Show differences ";
    document.querySelectorAll("#panel .response").forEach(function (response) {
      var rendered = response.querySelector(".rendered");
      var diff = response.querySelector(".diff");
      if (!rendered || !diff) return;
      rendered.hidden = on;
      diff.hidden = !on;
    });
    updateCues();
  }

  function toggleDiff() {
    var button = document.getElementById("toggle-diff");
    if (!button) return;
    var on = button.getAttribute("aria-pressed") !== "true";
    var p = panel();
    if (!on || p.querySelector(".response .diff")) { showDiff(on); return; }
    fetch(button.getAttribute("data-diff-url"), {
      credentials: "same-origin", headers: { "HX-Request": "true" },
    }).then(function (resp) { return resp.ok ? resp.text() : Promise.reject(resp.status); }).then(function (html) {
      var got = new DOMParser().parseFromString(html, "text/html");
      var fresh = got.getElementById("panel");
      // Only for the comparison still on screen.
      if (!fresh || panel() !== p || fresh.getAttribute("data-assignment") !== p.getAttribute("data-assignment")) return;
      fresh.querySelectorAll(".response").forEach(function (response) {
        var diff = response.querySelector(".diff");
        var mine = p.querySelector(".response[data-response='" + response.getAttribute("data-response") + "']");
        if (diff && mine) mine.insertBefore(document.importNode(diff, true), mine.querySelector(".more-cue"));
      });
      showDiff(true);
    }).catch(function () { setNetError(true); });
  }

  // --- this session (the browser tab's): judgments, average time, break reminder
  function sessionKey() {
    var page = document.querySelector(".rate-page");
    return "raterhub:session:" + (page ? page.getAttribute("data-project") : "");
  }

  function loadSession() {
    var s = null;
    try { s = JSON.parse(window.sessionStorage.getItem(sessionKey()) || "null"); } catch (e) { s = null; }
    if (!s || typeof s.start !== "number") s = { start: Date.now(), n: 0, ms: 0, snoozed: 0 };
    return s;
  }

  function saveSession(s) {
    try { window.sessionStorage.setItem(sessionKey(), JSON.stringify(s)); } catch (e) { /* private mode */ }
  }

  function showSession() {
    var s = loadSession();
    saveSession(s);
    var out = document.getElementById("session-stats");
    if (!out) return;
    out.hidden = s.n === 0;
    out.textContent = "· this session " + s.n + ", avg " + Math.round(s.ms / Math.max(1, s.n) / 1000) + " s";
  }

  var submittedMs = 0;
  function countJudgment() {
    var s = loadSession();
    s.n += 1;
    s.ms += submittedMs;
    saveSession(s);
  }

  function checkBreak() {
    var page = document.querySelector(".rate-page");
    var minutes = page ? parseInt(page.getAttribute("data-break-minutes") || "0", 10) : 0;
    var banner = document.getElementById("break-reminder");
    if (!minutes || !banner) return;
    var s = loadSession();
    var since = Math.max(s.start, s.snoozed || 0);
    if (Date.now() - since >= minutes * 60000) {
      banner.querySelector(".minutes").textContent = String(Math.round((Date.now() - s.start) / 60000));
      if (banner.hidden) { banner.hidden = false; measureBar(); }
    }
  }
  setInterval(checkBreak, 15000);

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

  // --- heartbeat: renew the lease while the rater is active
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

  // --- time spent: written just before the form is serialised
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form && form.id === "judgment-form") {
      var field = form.querySelector("input[name=duration_ms]");
      submittedMs = Math.round(performance.now() - shownAt);
      if (field) field.value = String(submittedMs);
    }
  }, true);

  document.addEventListener("scroll", function (event) {
    if (event.target && event.target.classList && event.target.classList.contains("scroll")) updateCues();
  }, true);
  window.addEventListener("resize", function () { measureBar(); updateCues(); });
  document.addEventListener("click", function (event) {
    var t = event.target;
    if (t && t.closest && t.closest("#toggle-diff")) { event.preventDefault(); toggleDiff(); }
    if (t && t.id === "dismiss-break") {
      var s = loadSession();
      s.snoozed = Date.now();
      saveSession(s);
      document.getElementById("break-reminder").hidden = true;
      measureBar();
    }
  });

  document.addEventListener("input", function (event) {
    if (event.target && event.target.matches && event.target.matches(".rationale textarea")) updateCounter();
  });

  // --- keyboard
  function inCriterion(el) { return el && el.closest ? el.closest("fieldset.criterion") : null; }

  function focusCriterion(group) {
    var target = group && (group.querySelector("input:checked") || group.querySelector("input"));
    if (target) {
      target.focus({ preventScroll: true });
      group.scrollIntoView({ block: "nearest" });
    }
  }

  function nextCriterion() {
    var groups = Array.prototype.slice.call(document.querySelectorAll("#panel fieldset.criterion"));
    if (!groups.length) return;
    var current = inCriterion(document.activeElement);
    var i = current ? (groups.indexOf(current) + 1) % groups.length : 0;
    focusCriterion(groups[i]);
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
    if (lower === "z") {
      var undo = document.getElementById("undo");
      if (undo) { event.preventDefault(); undo.click(); }
      return;
    }
    if (!judgmentForm()) return;

    var group = inCriterion(t);
    if (group && CRITERION_KEYS[key] !== undefined) {
      event.preventDefault();
      check(group.querySelector("input[value='" + CRITERION_KEYS[key] + "']"));
      return;
    }
    if (group && key === "Escape") {
      event.preventDefault();
      var back = judgmentForm().querySelector("input[name=choice]:checked") || judgmentForm().querySelector("input[name=choice]");
      if (back) back.focus({ preventScroll: true });
      return;
    }
    var reach = key.length === 1 && /^[a-z]$/i.test(key) ?
      judgmentForm().querySelector("fieldset.criterion[data-key='" + key.toUpperCase() + "']") : null;
    if (reach) { event.preventDefault(); focusCriterion(reach); return; }
    if (SCROLL_KEYS[lower]) { event.preventDefault(); scrollResponse(SCROLL_KEYS[lower][0], SCROLL_KEYS[lower][1]); return; }
    if (lower === "d") { event.preventDefault(); toggleDiff(); return; }

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

  // --- htmx lifecycle
  // An outerHTML swap replaces #panel itself: set up whenever a new panel element has settled.
  document.addEventListener("htmx:afterSettle", function () {
    if (panel() && panel() !== currentPanel) initPanel(true);
  });
  document.addEventListener("htmx:sendError", function () { setNetError(true); });
  document.addEventListener("htmx:responseError", function () { setNetError(true); });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful) setNetError(false);
  });
  // A first judgment recorded (a revision replaces one, it adds none). Before the swap: the
  // form is still in the document, so its events still reach this listener.
  document.addEventListener("htmx:beforeOnLoad", function (event) {
    var form = event.target;
    var xhr = event.detail && event.detail.xhr;
    if (form && form.id === "judgment-form" && !form.hasAttribute("data-revising") &&
        xhr && xhr.status === 200) countJudgment();
  });

  document.addEventListener("DOMContentLoaded", function () {
    var help = document.getElementById("show-help");
    if (help) help.addEventListener("click", showHelp);
    initPanel(false);
    checkBreak();
  });
})();

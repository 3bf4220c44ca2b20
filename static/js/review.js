// The review page: keyboard shortcuts. Everything here is an enhancement: without JavaScript
// the forms post, the reveal link loads, and the page reloads.
(function () {
  "use strict";

  var VERDICT_KEYS = { "1": "1", "2": "2", "3": "tie", "4": "both_bad", c: "confirm", x: "exclude" };
  var currentPanel = null;

  function panel() { return document.getElementById("panel"); }
  function verdictForm() { return document.getElementById("verdict-form"); }
  function skipForm() { var p = panel(); return p && p.querySelector("form.skip"); }

  function submit(form) {
    if (!form) return;
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }

  function showHelp() {
    var dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) dialog.showModal();
  }

  document.addEventListener("keydown", function (event) {
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) return; // the dialog closes itself on Esc
    var t = event.target;
    var tag = t && t.tagName ? t.tagName.toLowerCase() : "";
    var typing = tag === "textarea" || (tag === "input" && /^(text|search|email|number)$/.test(t.type)) || (t && t.isContentEditable);

    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submit(verdictForm());
      return;
    }
    if (typing) {
      if (event.key === "Escape") t.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    var lower = key.length === 1 ? key.toLowerCase() : key;
    if (key === "?") { event.preventDefault(); showHelp(); return; }
    var form = verdictForm();
    if (!form) return;

    if (VERDICT_KEYS[lower]) {
      var input = form.querySelector("input[name=verdict][value='" + VERDICT_KEYS[lower] + "']");
      if (input) {
        event.preventDefault();
        input.checked = true;
        input.focus();
      }
      return;
    }
    if (lower === "n") {
      var area = form.querySelector("textarea");
      if (area) { event.preventDefault(); area.focus(); }
      return;
    }
    if (lower === "m") {
      var reveal = document.getElementById("reveal-models");
      if (reveal) { event.preventDefault(); reveal.click(); }
      return;
    }
    if (lower === "s") { event.preventDefault(); submit(skipForm()); return; }
    if (key === "Enter") {
      if (tag === "button" || tag === "a" || tag === "summary") return; // their own Enter
      event.preventDefault();
      submit(form);
    }
  });

  // An outerHTML swap replaces #panel itself: focus the new item's heading once it settles.
  document.addEventListener("htmx:afterSettle", function () {
    var p = panel();
    if (p && p !== currentPanel) {
      var fresh = currentPanel && p.dataset.lease !== currentPanel.dataset.lease;
      currentPanel = p;
      if (fresh) {
        window.scrollTo(0, 0);
        var title = document.getElementById("panel-title");
        if (title) title.focus({ preventScroll: true });
      }
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    currentPanel = panel();
    var help = document.getElementById("show-help");
    if (help) help.addEventListener("click", showHelp);
  });
})();

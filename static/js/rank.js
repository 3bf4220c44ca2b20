// The ranking page: the order built from the keyboard (numbers best first, "=" ties the next
// with the previous, Backspace takes the last back) or by dragging responses onto the order
// bar. The form's rank selects stay the one state that is posted: this script only fills them
// in, so the page works the same without it. rate.js (also loaded) keeps the lease alive,
// times the answer, and handles S, R, U, X, ? and the submitting Enter.
(function () {
  "use strict";

  var tiers = [];     // display numbers (1 = Response 1), best tier first
  var placed = [];    // the order in which they were placed, for Backspace
  var tieNext = false;
  var form = null;    // the form the state belongs to: a swapped-in panel starts afresh

  function panel() { return document.getElementById("panel"); }
  function orderBox() { return document.getElementById("rank-order"); }
  function selects() {
    return Array.prototype.slice.call(document.querySelectorAll("#judgment-form select.rank-select"));
  }
  function count() { return selects().length; }
  function allowTie() { var p = panel(); return !p || p.dataset.allowTie !== "false"; }

  function ordinal(n) {
    var s = n % 100 >= 11 && n % 100 <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" })[n % 10] || "th";
    return n + s;
  }

  function tierOf(n) {
    for (var i = 0; i < tiers.length; i++) if (tiers[i].indexOf(n) >= 0) return i;
    return -1;
  }
  function placedCount() { return tiers.reduce(function (sum, t) { return sum + t.length; }, 0); }
  function complete() { return count() > 0 && placedCount() === count(); }

  // --- state <-> the selects -------------------------------------------------------------
  function readSelects() {
    var byPlace = {};
    selects().forEach(function (s) {
      var place = parseInt(s.value, 10);
      if (place > 0) (byPlace[place] = byPlace[place] || []).push(parseInt(s.dataset.n, 10));
    });
    tiers = Object.keys(byPlace).map(Number).sort(function (a, b) { return a - b; })
      .map(function (p) { return byPlace[p]; });
    placed = [].concat.apply([], tiers);
    tieNext = false;
  }

  function writeSelects() {
    selects().forEach(function (s) {
      var i = tierOf(parseInt(s.dataset.n, 10));
      s.value = i >= 0 ? String(i + 1) : "";
    });
  }

  // --- changes ---------------------------------------------------------------------------
  function remove(n) {
    var i = tierOf(n);
    if (i < 0) return;
    tiers[i].splice(tiers[i].indexOf(n), 1);
    if (!tiers[i].length) tiers.splice(i, 1);
    placed.splice(placed.indexOf(n), 1);
  }

  // Put response n in tier `into` (an index), or in a new last tier when `into` is null.
  function put(n, into) {
    var from = tierOf(n);
    if (from >= 0 && from === into) return;
    if (from >= 0 && into !== null && tiers[from].length === 1 && from < into) into -= 1;
    remove(n);
    if (into === null || into >= tiers.length) tiers.push([n]);
    else tiers[into].push(n);
    placed.push(n);
    tieNext = false;
    changed();
  }

  function placeNext(n) {
    if (tierOf(n) >= 0) { say("Response " + n + " already has a place; Backspace takes the last one back."); return; }
    put(n, tieNext && tiers.length ? tiers.length - 1 : null);
    if (complete()) say("Every response has a place: Enter submits.");
  }

  function undo() {
    if (tieNext) { tieNext = false; render(); return; }
    var n = placed[placed.length - 1];
    if (n === undefined) return;
    remove(n);
    changed();
    say("Response " + n + " taken back.");
  }

  // A change of the order makes any earlier message stale: back to the count of what is left.
  function changed() { writeSelects(); clearMessage(); render(); }
  function clearMessage() {
    var status = document.getElementById("rank-status");
    if (status) status.dataset.message = "";
  }

  // --- drawing ---------------------------------------------------------------------------
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function render() {
    var box = orderBox();
    if (!box) return;
    box.textContent = "";
    if (!tiers.length) box.appendChild(el("span", "rank-empty muted", "Your order appears here, best first."));
    tiers.forEach(function (tier, i) {
      var t = el("span", "tier");
      t.dataset.tier = String(i);
      t.appendChild(el("span", "tier-place", ordinal(i + 1)));
      tier.forEach(function (n, j) {
        if (j) t.appendChild(el("span", "tie-sign", "="));
        var chip = el("span", "chip");
        chip.appendChild(el("span", "chip-word", "Response "));  // hidden on phones
        chip.appendChild(document.createTextNode(String(n)));
        chip.dataset.n = String(n);
        chip.draggable = true;
        t.appendChild(chip);
      });
      box.appendChild(t);
    });
    if (tieNext) box.appendChild(el("span", "tie-sign pending", "= …"));
    var left = count() - placedCount();
    var bar = document.getElementById("rank-bar");
    if (bar) bar.classList.toggle("complete", complete());
    document.querySelectorAll("#rank-grid .rank-card").forEach(function (card) {
      card.classList.toggle("ranked", tierOf(parseInt(card.dataset.n, 10)) >= 0);
    });
    var status = document.getElementById("rank-status");
    if (status && !status.dataset.message) {
      status.textContent = left ? left + " of " + count() + " still to place" : "";
    }
  }

  function say(message) {
    var status = document.getElementById("rank-status");
    if (!status) return;
    status.dataset.message = message ? "1" : "";
    status.textContent = message;
    if (!message) render();
  }

  // --- keyboard: before rate.js, which would otherwise take the digits and Enter ----------
  window.addEventListener("keydown", function (event) {
    if (!orderBox()) return;
    fresh();
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) return;
    var t = event.target;
    var tag = t && t.tagName ? t.tagName.toLowerCase() : "";
    if (tag === "textarea" || (tag === "input" && t.type !== "checkbox") || (t && t.isContentEditable)) return;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var key = event.key;
    var handled = true;
    if (/^[1-9]$/.test(key) && parseInt(key, 10) <= count()) {
      placeNext(parseInt(key, 10));
    } else if (key === "=" && allowTie()) {
      if (tiers.length && !complete()) { tieNext = true; render(); }
    } else if (key === "Backspace") {
      undo();
    } else if (key === "Enter" && !complete() && tag !== "button" && tag !== "a" && tag !== "summary") {
      var left = count() - placedCount();
      say("Place every response first (" + left + " left).");
    } else {
      handled = false;
    }
    if (handled) { event.preventDefault(); event.stopImmediatePropagation(); }
  }, true);

  // --- the selects (mouse, or no keyboard shortcuts) ---------------------------------------
  document.addEventListener("change", function (event) {
    if (event.target && event.target.matches && event.target.matches("select.rank-select")) {
      // The menus keep the places as picked (4th before anything else is placed stays 4th);
      // the bar shows the order they make.
      readSelects();
      clearMessage();
      render();
    }
  });

  // --- drag and drop ------------------------------------------------------------------------
  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var source = event.target.closest && event.target.closest(".chip, .rank-card header");
    if (!source) return;
    var holder = source.classList.contains("chip") ? source : source.closest(".rank-card");
    dragged = parseInt(holder.dataset.n, 10);
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", String(dragged));
  });
  document.addEventListener("dragend", function () {
    dragged = null;
    document.querySelectorAll(".drop-target").forEach(function (e) { e.classList.remove("drop-target"); });
  });
  function dropZone(target) {
    if (!target.closest) return null;
    return target.closest(".tier") || target.closest("#rank-bar") || target.closest("#rank-grid");
  }
  document.addEventListener("dragover", function (event) {
    if (dragged === null) return;
    var zone = dropZone(event.target);
    if (!zone) return;
    event.preventDefault();
    document.querySelectorAll(".drop-target").forEach(function (e) { if (e !== zone) e.classList.remove("drop-target"); });
    zone.classList.add("drop-target");
  });
  document.addEventListener("drop", function (event) {
    if (dragged === null) return;
    var zone = dropZone(event.target);
    if (!zone) return;
    event.preventDefault();
    if (zone.classList.contains("tier") && allowTie()) put(dragged, parseInt(zone.dataset.tier, 10));
    else if (zone.id === "rank-grid") { remove(dragged); changed(); }
    else put(dragged, null);
    dragged = null;
  });

  // --- per panel ------------------------------------------------------------------------------
  // Keys can arrive between an htmx swap and its settle event: check the form is still ours.
  function fresh() { if (document.getElementById("judgment-form") !== form) init(); }

  function init() {
    if (!orderBox()) return;
    form = document.getElementById("judgment-form");
    document.querySelectorAll(".rank-hint-keys").forEach(function (e) { e.hidden = false; });
    document.querySelectorAll(".rank-hint-nojs").forEach(function (e) { e.hidden = true; });
    document.querySelectorAll("#rank-grid .rank-card header").forEach(function (h) { h.draggable = true; });
    readSelects();
    render();
  }
  document.addEventListener("DOMContentLoaded", init);
  document.addEventListener("htmx:afterSettle", init);
})();

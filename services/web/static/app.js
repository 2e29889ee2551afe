// Threadline: keyboard shortcuts and small helpers; everything else is HTMX.
(function () {
  "use strict";
  // Pages register shortcuts with data-shortcut="key" on a link or button; typing in a field never triggers them.
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      if (event.key === "Escape") target.blur();
      return;
    }
    var element = document.querySelector('[data-shortcut="' + CSS.escape(event.key) + '"]');
    if (!element) return;
    event.preventDefault();
    if (element.matches("input, textarea, select")) element.focus(); else element.click();
  });
})();

// The Content-Security-Policy allows no inline handlers and no eval (so no hx-on attributes
// and no hx-trigger filters): the behaviour those carried is declared with data attributes.
(function () {
  "use strict";
  function ancestors(element) {
    var found = [];
    for (var node = element; node && node.nodeType === 1; node = node.parentElement) found.push(node);
    return found;
  }
  // data-swap-errors="409 422": swap those 4xx answers in (they carry the form and its message).
  // data-keep-while=".attr-editor": do not replace this element while it holds a match (an open editor).
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr ? event.detail.xhr.status : 0;
    ancestors(event.target).forEach(function (holder) {
      var statuses = holder.getAttribute("data-swap-errors");
      if (statuses && statuses.split(/\s+/).indexOf(String(status)) >= 0) {
        event.detail.shouldSwap = true;
        event.detail.isError = false;
      }
      var keep = holder.getAttribute("data-keep-while");
      if (keep && event.detail.target === holder && holder.querySelector(keep)) {
        event.detail.shouldSwap = false;
      }
    });
  });
  // data-skip-while="selector" / data-skip-while-focused="selector": a reload set off by the
  // event stream waits while the user is editing there or a request is under way.
  document.addEventListener("htmx:confirm", function (event) {
    var element = event.detail.elt;
    var trigger = event.detail.triggeringEvent;
    if (!element || !element.getAttribute || !trigger) return;
    if (trigger.type !== "sse:changed" && trigger.type !== "live") return;
    var busy = element.getAttribute("data-skip-while");
    var focused = element.getAttribute("data-skip-while-focused");
    var active = document.activeElement;
    if ((busy && document.querySelector(busy)) || (focused && active && active.matches(focused))) {
      event.preventDefault();
    }
  });
  // data-autosubmit on a select: choosing sends its form (the language and time zone pickers).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.matches && target.matches("[data-autosubmit]") && target.form) target.form.submit();
  });
  // data-select-on-click on a read-only field: one click selects it for copying.
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target && target.matches && target.matches("[data-select-on-click]")) target.select();
  });
})();

// Live updates (routes_events.py): the stream says which keys changed, e.g.
// {"position": 812, "keys": ["inbox", "conversation:<id>", "contact:<id>"]}; "*" means anything.
// A fragment marked data-live="key key" (with hx-trigger="live") reloads when one of its keys came.
// It never has two reloads in flight: a change that comes during one reloads it once more after.
// After a reconnect whose hello shows the views moved meanwhile, every live fragment reloads.
(function () {
  "use strict";
  var wired = [];
  var position = null;
  // The log position the page has been told about, on <html data-live-position>: a test (or
  // an operator in the developer tools) can see that the page has caught up with the server.
  function shown(at) {
    if (at !== null) document.documentElement.setAttribute("data-live-position", String(at));
  }
  function wanted(element, keys) {
    if (keys.indexOf("*") >= 0) return true;
    var own = (element.getAttribute("data-live") || "").split(/\s+/);
    for (var i = 0; i < own.length; i++) {
      if (own[i] && (own[i] === "*" || keys.indexOf(own[i]) >= 0)) return true;
    }
    return false;
  }
  function reload(element) {
    if (!document.body.contains(element)) return;
    if (element.classList.contains("htmx-request")) {
      element.setAttribute("data-live-pending", "");
      return;
    }
    htmx.trigger(element, "live");
  }
  function changed(keys) {
    document.querySelectorAll("[data-live]").forEach(function (element) {
      if (wanted(element, keys)) reload(element);
    });
  }
  document.addEventListener("htmx:afterRequest", function (event) {
    var element = event.detail.elt;
    if (!element || !element.hasAttribute || !element.hasAttribute("data-live-pending")) return;
    element.removeAttribute("data-live-pending");
    // after htmx has finished with this request (it clears htmx-request once the handlers ran);
    // a fragment swapped with outerHTML is a new element by then: find it by its id
    window.setTimeout(function () {
      var current = document.body.contains(element) ? element : element.id && document.getElementById(element.id);
      if (current) reload(current);
    }, 0);
  });
  document.addEventListener("htmx:sseOpen", function (event) {
    var source = event.detail && event.detail.source;
    if (!source || wired.indexOf(source) >= 0) return;
    wired = wired.filter(function (old) { return old.readyState !== 2; }).concat([source]);
    source.addEventListener("hello", function (message) {
      var now = parseInt(message.data, 10);
      if (position !== null && now !== position) changed(["*"]);
      position = now;
      shown(position);
    });
    source.addEventListener("changed", function (message) {
      var keys = ["*"];
      try {
        var data = JSON.parse(message.data);
        if (data && Array.isArray(data.keys)) keys = data.keys;
        if (data && typeof data.position === "number") position = data.position;
      } catch (error) { /* an older server: reload everything */ }
      shown(position);
      changed(keys);
    });
  });
})();

// The deals board (routes_deals.py): native HTML5 drag and drop, no library. A card
// (data-deal-card, draggable) dropped on a column (data-drop-stage) fills the page's move form
// (#deal-move) and HTMX posts it; the answer is the board as the views show it after the move.
// A column of a lost stage (data-stage-meaning="lost") opens the form's dialog first, for the
// reason. Without JavaScript each card has its own "move to" form.
(function () {
  "use strict";
  var dragged = null;
  function columnOf(event) {
    var target = event.target;
    return target && target.closest ? target.closest("[data-drop-stage]") : null;
  }
  function clearMarks() {
    document.querySelectorAll(".drop-over").forEach(function (column) { column.classList.remove("drop-over"); });
  }
  document.addEventListener("dragstart", function (event) {
    var card = event.target && event.target.closest ? event.target.closest("[data-deal-card]") : null;
    if (!card || !document.getElementById("deal-move")) return;
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-deal-id"));
  });
  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
    clearMarks();
  });
  document.addEventListener("dragover", function (event) {
    var column = columnOf(event);
    if (!column || !dragged) return;
    event.preventDefault(); // this column accepts the drop
    event.dataTransfer.dropEffect = "move";
    if (!column.classList.contains("drop-over")) {
      clearMarks();
      column.classList.add("drop-over");
    }
  });
  document.addEventListener("drop", function (event) {
    var column = columnOf(event);
    var card = dragged;
    if (!column || !card) return;
    event.preventDefault();
    card.classList.remove("dragging");
    dragged = null;
    clearMarks();
    var stage = column.getAttribute("data-drop-stage");
    if (stage === card.getAttribute("data-stage-id")) return;
    var form = document.getElementById("deal-move");
    form.elements["deal_id"].value = card.getAttribute("data-deal-id");
    form.elements["stage_id"].value = stage;
    form.elements["reason"].value = "";
    var dialog = document.getElementById("deal-lost-dialog");
    if (column.getAttribute("data-stage-meaning") === "lost" && dialog && dialog.showModal) {
      dialog.showModal();
      form.elements["reason"].focus();
      return;
    }
    card.classList.add("moving"); // the answer redraws the board as the views show it after the move
    htmx.trigger(form, "submit");
  });
  // The lost-reason dialog closes once its form is sent, or with its Cancel button.
  document.addEventListener("submit", function (event) {
    var dialog = event.target && event.target.closest ? event.target.closest("dialog") : null;
    if (dialog && dialog.open && event.target.hasAttribute("data-move-form")) dialog.close();
  }, true);
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("[data-close-dialog]") : null;
    var dialog = button ? button.closest("dialog") : null;
    if (dialog) dialog.close();
  });
})();

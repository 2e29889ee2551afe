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
    if (!element || !element.getAttribute || !trigger || trigger.type !== "sse:changed") return;
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

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

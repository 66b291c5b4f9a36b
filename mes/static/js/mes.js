/*
 * MES-lite progressive enhancement. Every page works without this file; it only adds:
 *   data-confirm="message"  on a form (or its submit button): ask before submitting
 *   data-autofocus          focus this field when the page loads (scanner input)
 *   data-autosubmit         on a select/checkbox: submit its form when the value changes
 *   details.user-menu       the header's user menu closes on a click outside or Escape
 * No inline handlers: the Content-Security-Policy forbids them.
 */
(function () {
  "use strict";

  // Capture phase, so the question comes before any other submit listener.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var button = event.submitter;
    var message = (button && button.getAttribute("data-confirm")) ||
      form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("change", function (event) {
    var field = event.target;
    if (!field.hasAttribute || !field.hasAttribute("data-autosubmit") || !field.form) {
      return;
    }
    // requestSubmit fires the submit event (so data-confirm still applies); submit() not.
    if (typeof field.form.requestSubmit === "function") {
      field.form.requestSubmit();
    } else {
      field.form.submit();
    }
  });

  function autofocus() {
    var field = document.querySelector("[data-autofocus]");
    // Do not steal focus from a field the user already chose (e.g. after a fast tap).
    // The browser may have focused it already (autofocus): select its text all the same.
    if (field && (document.activeElement === null || document.activeElement === document.body ||
                  document.activeElement === field)) {
      field.focus();
      if (typeof field.select === "function" && field.value) {
        field.select();  // a scanner then replaces the old code instead of appending
      }
    }
  }

  // The header's user menu (a <details>) closes on a click elsewhere and on Escape.
  document.addEventListener("click", function (event) {
    var menu = document.querySelector("details.user-menu[open]");
    if (menu && !menu.contains(event.target)) { menu.removeAttribute("open"); }
  });
  document.addEventListener("keydown", function (event) {
    var menu = document.querySelector("details.user-menu[open]");
    if (menu && event.key === "Escape") {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    }
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", autofocus);
  } else {
    autofocus();
  }
}());

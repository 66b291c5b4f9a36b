/*
 * Shop-floor pages, progressive enhancement only: every form works without this file.
 *   [data-add-row]        in a [data-reject-form]: add an empty reject row here instead of
 *                         reloading the page (the button's plain submit does the same)
 *   [data-balance]        shows whether good + rejects add up to data-qty-in, live
 *   [data-print]          prints the page (the traveler)
 * No inline handlers: the Content-Security-Policy forbids them.
 */
(function () {
  "use strict";

  function rowsOf(form) {
    return form.querySelectorAll(".reject-row");
  }

  function addRow(form) {
    var box = form.querySelector(".reject-rows");
    var rows = rowsOf(form);
    var max = parseInt(box.getAttribute("data-max-rows"), 10) || 50;
    if (!rows.length || rows.length >= max) {
      return null;
    }
    var n = rows.length + 1;
    var row = rows[rows.length - 1].cloneNode(true);
    row.querySelectorAll("select, input").forEach(function (field) {
      field.id = field.id.replace(/-\d+$/, "-" + n);
      field.removeAttribute("autofocus");
      field.removeAttribute("data-autofocus");
      field.value = "";
    });
    row.querySelectorAll("label").forEach(function (label) {
      label.htmlFor = label.htmlFor.replace(/-\d+$/, "-" + n);
      label.textContent = label.textContent.replace(/\d+\s*$/, String(n));
    });
    box.appendChild(row);
    return row;
  }

  function updateBalance(form) {
    var out = form.querySelector("[data-balance]");
    if (!out) {
      return;
    }
    var expected = parseInt(out.getAttribute("data-qty-in"), 10);
    var sum = 0;
    var typed = false;
    form.querySelectorAll("[data-qty-part]").forEach(function (field) {
      var value = field.value.trim();
      if (/^\d+$/.test(value)) {
        sum += parseInt(value, 10);
        typed = true;
      }
    });
    out.classList.remove("ok", "off");
    if (!typed) {
      out.textContent = "";
    } else if (sum === expected) {
      out.textContent = out.getAttribute("data-text-ok");
      out.classList.add("ok");
    } else {
      out.textContent = out.getAttribute("data-text-off").replace("{sum}", String(sum));
      out.classList.add("off");
    }
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) {
      return;
    }
    var adder = target.closest("[data-add-row]");
    if (adder && adder.form && adder.form.hasAttribute("data-reject-form")) {
      var row = addRow(adder.form);
      if (row) {
        event.preventDefault();
        row.querySelector("select").focus();
      }
      return;
    }
    if (target.closest("[data-print]")) {
      window.print();
    }
  });

  document.addEventListener("input", function (event) {
    var field = event.target;
    if (field instanceof Element && field.hasAttribute("data-qty-part") && field.form) {
      updateBalance(field.form);
    }
  });

  function start() {
    document.querySelectorAll("[data-reject-form]").forEach(updateBalance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());

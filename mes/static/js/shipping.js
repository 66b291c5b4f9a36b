/*
 * Shipping and portal pages, progressive enhancement only:
 *   [data-print]   prints the page (labels, certificate of conformance)
 * No inline handlers: the Content-Security-Policy forbids them.
 */
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target instanceof Element && target.closest("[data-print]")) {
      window.print();
    }
  });
})();

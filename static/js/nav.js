// Top bar on narrow screens: the menu folds behind a "Menu" button. A static
// file because the Content-Security-Policy forbids inline scripts. Without
// JavaScript the button stays hidden and the menu simply wraps (mobile.css).
(function () {
  "use strict";

  var bar = document.getElementById("topbar");
  var toggle = document.getElementById("nav-toggle");
  var menu = document.getElementById("site-menu");
  if (!bar || !toggle || !menu) {
    return;
  }

  function setOpen(open) {
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    bar.classList.toggle("nav-open", open);
  }

  bar.classList.add("nav-js");
  toggle.hidden = false;
  setOpen(false);

  toggle.addEventListener("click", function () {
    setOpen(toggle.getAttribute("aria-expanded") !== "true");
  });

  // Escape closes an open menu and puts focus back on its button.
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && bar.classList.contains("nav-open")) {
      setOpen(false);
      toggle.focus();
    }
  });
})();

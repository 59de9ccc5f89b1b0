// Module form: live image preview and a body character count.
// A static file because the Content-Security-Policy forbids inline scripts.
(function () {
  "use strict";

  var input = document.getElementById("id_image");
  var figure = document.getElementById("image-preview-figure");
  var preview = document.getElementById("image-preview");
  var caption = document.getElementById("image-preview-caption");
  var objectUrl = null;

  function showPreview() {
    if (objectUrl) {
      URL.revokeObjectURL(objectUrl);
      objectUrl = null;
    }
    var file = input.files && input.files[0];
    if (!file || !/^image\/(jpeg|png|webp)$/.test(file.type)) {
      figure.hidden = true;
      preview.removeAttribute("src");
      if (file) {
        caption.textContent = "";
      }
      return;
    }
    objectUrl = URL.createObjectURL(file);
    preview.src = objectUrl;
    caption.textContent = "New image: " + file.name + " (" + Math.ceil(file.size / 1024) + " KB). It is checked and cleaned when you save.";
    figure.hidden = false;
  }

  if (input && figure && preview) {
    input.addEventListener("change", showPreview);
    showPreview();
  }

  var body = document.getElementById("id_body");
  var count = document.getElementById("body-count");
  if (body && count) {
    var max = parseInt(body.getAttribute("data-max-chars"), 10);
    var update = function () {
      var n = body.value.length;
      count.textContent = n.toLocaleString() + " of " + max.toLocaleString() + " characters";
      count.classList.toggle("over", n > max);
    };
    body.addEventListener("input", update);
    update();
    count.hidden = false;
  }
})();

// After a failed submit, move focus to the error summary so keyboard and
// screen-reader users start from the list of problems.
(function () {
  "use strict";
  var summary = document.getElementById("error-summary");
  if (summary) {
    summary.focus();
  }
})();

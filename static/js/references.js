// Module form: find a reference in the checkbox list by typing part of its citation.
// A static file because the Content-Security-Policy forbids inline scripts.
(function () {
  "use strict";
  var filter = document.getElementById("reference-filter");
  var field = document.getElementById("field-references");
  if (!filter || !field) { return; }
  var count = document.getElementById("reference-filter-count");
  filter.addEventListener("input", function () {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    var shown = 0;
    field.querySelectorAll("input[type=checkbox]").forEach(function (box) {
      var item = box.closest("div") || box.parentElement;
      var label = (box.parentElement.textContent || "").toLowerCase();
      var match = box.checked || words.every(function (w) { return label.indexOf(w) !== -1; });
      item.hidden = !match;
      if (match) { shown += 1; }
    });
    if (count) { count.textContent = words.length ? shown + " shown (ticked ones always stay)" : ""; }
  });
}());

// Review page: anchor a comment on text selected in a preview, and keep the
// signature statement in step with the chosen decision. A static file because
// the Content-Security-Policy forbids inline scripts. Without JavaScript the
// annotation form still works with the field / start / end inputs.
(function () {
  "use strict";

  var form = document.getElementById("annotation-form");
  var note = document.getElementById("selection-note");

  // Characters from the start of `root` to (node, offset): the same measure as
  // the stored text, because the preview elements hold the raw text only.
  function offsetWithin(root, node, offset) {
    var range = document.createRange();
    range.selectNodeContents(root);
    range.setEnd(node, offset);
    return range.toString().length;
  }

  function fieldOf(node) {
    var el = node && (node.nodeType === 1 ? node : node.parentElement);
    return el ? el.closest("[data-field]") : null;
  }

  function setValue(id, value) {
    var input = document.getElementById(id);
    if (input) { input.value = value; }
  }

  function onSelection() {
    if (!form) { return; }
    var selection = window.getSelection();
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) { return; }
    var range = selection.getRangeAt(0);
    var root = fieldOf(range.startContainer);
    if (!root || root !== fieldOf(range.endContainer)) {
      if (root || fieldOf(range.endContainer)) {
        note.textContent = "Select text within one field (headline, body, key message, call to action or title).";
        note.classList.add("warn");
      }
      return;
    }
    var start = offsetWithin(root, range.startContainer, range.startOffset);
    var end = offsetWithin(root, range.endContainer, range.endOffset);
    if (end <= start) { return; }
    var quote = range.toString();
    setValue("id_field", root.getAttribute("data-field"));
    setValue("id_start", String(start));
    setValue("id_end", String(end));
    setValue("id_quote", quote);
    var label = root.getAttribute("data-field").replace(/_/g, " ");
    var shown = quote.length > 140 ? quote.slice(0, 140) + "…" : quote;
    note.textContent = "Commenting on “" + shown + "” in the " + label + " (characters " + start + "–" + end + ").";
    note.classList.remove("warn");
    note.classList.add("selected");
    form.classList.add("has-selection");
  }

  var previews = document.getElementById("previews");
  if (previews && form) {
    previews.addEventListener("mouseup", function () { window.setTimeout(onSelection, 0); });
    previews.addEventListener("keyup", function () { window.setTimeout(onSelection, 0); });
    // A drag released outside the previews still ends in a selection inside them.
    var pending = null;
    document.addEventListener("selectionchange", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(onSelection, 200);
    });
    // Typing a position by hand replaces a selection, so the quote check must not apply.
    ["id_field", "id_start", "id_end"].forEach(function (id) {
      var input = document.getElementById(id);
      if (input) { input.addEventListener("input", function () { setValue("id_quote", ""); }); }
    });
  }

  // Clicking a highlighted span shows its comment thread.
  document.addEventListener("click", function (event) {
    var mark = event.target.closest && event.target.closest("mark.anno");
    if (!mark || !window.getSelection().isCollapsed) { return; }
    var first = (mark.getAttribute("data-annotations") || "").split(" ")[0];
    var thread = document.getElementById("annotation-" + first);
    if (thread) {
      thread.scrollIntoView({ behavior: "smooth", block: "center" });
      thread.classList.add("flash");
      window.setTimeout(function () { thread.classList.remove("flash"); }, 1500);
    }
  });

  var statement = document.getElementById("signature-statement");
  var decision = document.getElementById("decision-form");
  if (statement && decision) {
    decision.addEventListener("change", function (event) {
      if (event.target.name !== "decision") { return; }
      var text = statement.getAttribute("data-" + event.target.value);
      if (text) { statement.textContent = text; }
      var button = document.getElementById("sign-button");
      button.classList.toggle("danger", event.target.value !== "approve");
      button.classList.toggle("primary", event.target.value === "approve");
    });
  }
}());

// Claims panel (edit and review pages): select a claim in the text and fill the link
// form's field / start / end / quote. A static file because the Content-Security-Policy
// forbids inline scripts; without JavaScript the "Position in the text" inputs work.
(function () {
  "use strict";

  var form = document.getElementById("claim-link-form");
  var texts = document.getElementById("claim-texts");
  var note = document.getElementById("claim-selection");
  if (!form || !texts || !note) { return; }

  // Characters from the start of `root` to (node, offset): the panel holds the raw text
  // only, so this is the same measure as the stored field.
  function offsetWithin(root, node, offset) {
    var range = document.createRange();
    range.selectNodeContents(root);
    range.setEnd(node, offset);
    return range.toString().length;
  }

  function fieldOf(node) {
    var el = node && (node.nodeType === 1 ? node : node.parentElement);
    return el ? el.closest("[data-claim-field]") : null;
  }

  function set(id, value) {
    var input = document.getElementById(id);
    if (input) { input.value = value; }
  }

  function onSelection() {
    var selection = window.getSelection();
    if (!selection || selection.rangeCount === 0 || selection.isCollapsed) { return; }
    var range = selection.getRangeAt(0);
    var root = fieldOf(range.startContainer);
    if (!root || root !== fieldOf(range.endContainer)) {
      if (root || fieldOf(range.endContainer)) {
        note.textContent = "Select a claim within one field (headline, body or key message).";
        note.classList.add("warn");
      }
      return;
    }
    var start = offsetWithin(root, range.startContainer, range.startOffset);
    var end = offsetWithin(root, range.endContainer, range.endOffset);
    var text = root.textContent;
    // Leave out white space at either end of the selection.
    while (start < end && /\s/.test(text.charAt(start))) { start += 1; }
    while (end > start && /\s/.test(text.charAt(end - 1))) { end -= 1; }
    if (end <= start) { return; }
    var quote = text.slice(start, end);
    set("claim-field", root.getAttribute("data-claim-field"));
    set("claim-start", String(start));
    set("claim-end", String(end));
    set("claim-quote", quote);
    var shown = quote.length > 140 ? quote.slice(0, 140) + "…" : quote;
    note.textContent = "Claim: “" + shown + "” (" + root.getAttribute("data-claim-field").replace(/_/g, " ") + ", characters " + start + "–" + end + ").";
    note.classList.remove("warn");
    note.classList.add("selected");
  }

  texts.addEventListener("mouseup", function () { window.setTimeout(onSelection, 0); });
  texts.addEventListener("keyup", function () { window.setTimeout(onSelection, 0); });
  var pending = null;
  document.addEventListener("selectionchange", function () {
    window.clearTimeout(pending);
    pending = window.setTimeout(onSelection, 200);
  });
  // A position typed by hand replaces the selection, so the quote check must not apply.
  ["claim-field", "claim-start", "claim-end"].forEach(function (id) {
    var input = document.getElementById(id);
    if (input) { input.addEventListener("input", function () { set("claim-quote", ""); }); }
  });
}());

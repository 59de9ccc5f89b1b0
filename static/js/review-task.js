// Review page: anchor a comment on text selected in a preview (snapped to whole
// words, the comment box opened beside the selection), align the open comments
// in a margin beside the text they anchor, and keep the signature statement in
// step with the chosen decision. A static file because
// the Content-Security-Policy forbids inline scripts. Without JavaScript the
// annotation form still works with the field / start / end inputs.
(function () {
  "use strict";

  var form = document.getElementById("annotation-form");
  var note = document.getElementById("selection-note");
  var wrapper = document.getElementById("preview-with-margin");
  var margin = document.getElementById("comment-margin");
  // Where the form sits without a selection, so closing the composer puts it back.
  var home = form ? document.createComment("annotation-form") : null;
  if (form) { form.parentNode.insertBefore(home, form); }

  // Characters from the start of `root` to (node, offset): the same measure as
  // the stored text, because the preview elements hold the raw text only.
  function offsetWithin(root, node, offset) {
    var range = document.createRange();
    range.selectNodeContents(root);
    range.setEnd(node, offset);
    return range.toString().length;
  }

  // The (text node, offset) at character `offset` of `root`: offsetWithin's inverse.
  function pointAt(root, offset) {
    var walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    var node, last = null, left = offset;
    while ((node = walker.nextNode())) {
      if (left <= node.data.length) { return { node: node, offset: left }; }
      left -= node.data.length;
      last = node;
    }
    return last ? { node: last, offset: last.data.length } : { node: root, offset: 0 };
  }

  // Letters, digits, marks and in-word apostrophes: pages.snap_to_words uses the same class.
  var WORD = /[\p{L}\p{N}\p{M}_'\u2019]/u;

  // Widen [start, end) to whole words and drop the whitespace around it.
  function snap(text, start, end) {
    while (start < end && /\s/.test(text[start])) { start++; }
    while (end > start && /\s/.test(text[end - 1])) { end--; }
    if (start === end) { return [start, end]; }
    while (start > 0 && WORD.test(text[start - 1]) && WORD.test(text[start])) { start--; }
    while (end < text.length && WORD.test(text[end]) && WORD.test(text[end - 1])) { end++; }
    return [start, end];
  }

  function fieldOf(node) {
    var el = node && (node.nodeType === 1 ? node : node.parentElement);
    return el ? el.closest("[data-field]") : null;
  }

  function setValue(id, value) {
    var input = document.getElementById(id);
    if (input) { input.value = value; }
  }

  // Margin beside the preview (wide screens) or stacked below it (narrow ones).
  function marginBeside() {
    return !!(margin && wrapper) && margin.getBoundingClientRect().left >
      document.getElementById("previews").getBoundingClientRect().right - 1;
  }

  // Open the comment box next to the selection: in the margin level with it, or
  // just below it when the margin is stacked under the preview.
  function openComposer(rect) {
    if (!wrapper) { return; }
    if (form.parentNode !== wrapper) { wrapper.appendChild(form); }
    form.classList.add("floating");
    var box = wrapper.getBoundingClientRect();
    var beside = marginBeside();
    form.classList.toggle("beside", beside);
    var top = beside ? rect.top - box.top : rect.bottom - box.top + 6;
    form.style.top = Math.max(0, Math.round(top)) + "px";
    var cancel = document.getElementById("annotation-cancel");
    if (cancel) { cancel.hidden = false; }
  }

  function closeComposer() {
    if (!form || !home) { return; }
    form.classList.remove("floating", "beside", "has-selection");
    form.style.top = "";
    home.parentNode.insertBefore(form, home);
    var cancel = document.getElementById("annotation-cancel");
    if (cancel) { cancel.hidden = true; }
    note.textContent = "Select text in a preview above, or give the position by hand.";
    note.classList.remove("selected", "warn");
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
    var text = root.textContent;
    var span = snap(text,
      offsetWithin(root, range.startContainer, range.startOffset),
      offsetWithin(root, range.endContainer, range.endOffset));
    var start = span[0], end = span[1];
    if (end <= start) { return; }
    // Show the reviewer the words the comment will anchor on.
    var a = pointAt(root, start), b = pointAt(root, end);
    if (range.startContainer !== a.node || range.startOffset !== a.offset ||
        range.endContainer !== b.node || range.endOffset !== b.offset) {
      range = document.createRange();
      range.setStart(a.node, a.offset);
      range.setEnd(b.node, b.offset);
      selection.removeAllRanges();
      selection.addRange(range);
    }
    var quote = text.slice(start, end);
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
    openComposer(range.getBoundingClientRect());
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
    var cancel = document.getElementById("annotation-cancel");
    if (cancel) { cancel.addEventListener("click", closeComposer); }
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { closeComposer(); }
    });
  }

  // Each margin card level with the first highlight of its comment; cards never
  // overlap, so a crowded paragraph pushes later cards down.
  function layoutMargin() {
    if (!margin) { return; }
    var cards = Array.prototype.slice.call(margin.querySelectorAll(".margin-card"));
    var beside = marginBeside();
    margin.classList.toggle("aligned", beside);
    if (!beside) {
      cards.forEach(function (card) { card.style.top = ""; });
      margin.style.minHeight = "";
      return;
    }
    var origin = margin.getBoundingClientRect().top;
    var placed = cards.map(function (card) {
      var mark = document.querySelector("#previews mark.anno[data-annotations~='" + card.getAttribute("data-annotation") + "']");
      return { card: card, want: mark ? mark.getBoundingClientRect().top - origin : Infinity };
    });
    placed.sort(function (x, y) { return x.want - y.want; });
    var bottom = 0;
    placed.forEach(function (p) {
      var top = Math.max(p.want === Infinity ? bottom : p.want, bottom);
      p.card.style.top = Math.round(top) + "px";
      bottom = top + p.card.offsetHeight + 8;
    });
    margin.style.minHeight = Math.round(bottom) + "px";
  }

  function highlight(id, on) {
    document.querySelectorAll("mark.anno[data-annotations~='" + id + "']").forEach(function (m) {
      m.classList.toggle("active", on);
    });
    var card = document.getElementById("margin-" + id);
    if (card) { card.classList.toggle("active", on); }
  }

  if (margin) {
    layoutMargin();
    window.addEventListener("load", layoutMargin);
    var resizing = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(resizing);
      resizing = window.setTimeout(layoutMargin, 100);
    });
    margin.addEventListener("mouseover", function (event) {
      var card = event.target.closest(".margin-card");
      if (card) { highlight(card.getAttribute("data-annotation"), true); }
    });
    margin.addEventListener("mouseout", function (event) {
      var card = event.target.closest(".margin-card");
      if (card) { highlight(card.getAttribute("data-annotation"), false); }
    });
  }

  // Clicking a highlighted span points at its comment: the margin card beside it,
  // or the thread in the list when the margin is stacked below.
  document.addEventListener("click", function (event) {
    var mark = event.target.closest && event.target.closest("mark.anno");
    if (!mark || !window.getSelection().isCollapsed) { return; }
    var first = (mark.getAttribute("data-annotations") || "").split(" ")[0];
    var target = (marginBeside() && document.getElementById("margin-" + first)) ||
      document.getElementById("annotation-" + first);
    if (target) {
      if (!marginBeside()) { target.scrollIntoView({ behavior: "smooth", block: "center" }); }
      target.classList.add("flash");
      window.setTimeout(function () { target.classList.remove("flash"); }, 1500);
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

// Reuse finder on the module form: as the author types the headline, body, key
// message or call to action, ask POST /api/v1/modules/similar (debounced) and
// redraw the "Reuse approved content" panel with the approved modules closest
// to the text and the verdict (known claim, new claim, or figures that differ).
// A static file because the Content-Security-Policy forbids inline scripts; all
// text goes in through textContent, never as HTML.
(function () {
  "use strict";

  var panel = document.getElementById("reuse-panel");
  var results = document.getElementById("reuse-results");
  if (!panel || !results || !window.fetch) {
    return;
  }
  var form = panel.closest("form");
  var url = panel.getAttribute("data-reuse-url");
  var moduleId = panel.getAttribute("data-module");
  var moduleUrl = panel.getAttribute("data-module-url");
  var names = ["headline", "body", "key_message", "call_to_action"];
  var fields = names.map(function (name) { return document.getElementById("id_" + name); });
  var DELAY_MS = 400;
  var timer = null;
  var sequence = 0;
  var controller = null;
  var lastSent = null;

  function csrfToken() {
    var input = form && form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function link(moduleIdValue, text) {
    var a = el("a", "", text);
    a.href = moduleUrl.replace(/\/0\/$/, "/" + encodeURIComponent(moduleIdValue) + "/");
    return a;
  }

  function truncate(text, n) {
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  function describe(differences) {
    return differences.map(function (d) {
      return d.approved === null ? d.draft + " (not in the approved text)" : d.draft + " vs approved " + d.approved;
    }).join("; ");
  }

  function verdict(novelty) {
    var p;
    if (novelty.verdict === "known") {
      p = el("p", "message");
      p.appendChild(el("strong", "", "Close to an approved claim"));
      p.appendChild(document.createTextNode(" (" + novelty.percent + "% similar): "));
      p.appendChild(link(novelty.module, truncate(novelty.key_message, 160)));
    } else if (novelty.verdict === "numbers_differ") {
      p = el("p", "notice warn");
      p.appendChild(el("strong", "", "New claim:"));
      p.appendChild(document.createTextNode(" "));
      p.appendChild(el("span", "figure-diff", describe(novelty.differences)));
      p.appendChild(document.createTextNode(". The text is like the approved "));
      p.appendChild(link(novelty.module, truncate(novelty.key_message, 120)));
      p.appendChild(document.createTextNode(", but the figures differ: it needs its own substantiation in review."));
    } else {
      p = el("p", "notice");
      p.appendChild(el("strong", "", "New claim:"));
      p.appendChild(document.createTextNode(" this text is close to no approved claim"));
      if (novelty.module !== null) {
        p.appendChild(document.createTextNode(" (closest: " + novelty.percent + "% similar to "));
        p.appendChild(link(novelty.module, truncate(novelty.key_message, 120)));
        p.appendChild(document.createTextNode(")"));
      }
      p.appendChild(document.createTextNode(". It will need full substantiation in review; reusing an approved claim shortens review."));
    }
    p.setAttribute("role", "status");
    p.setAttribute("data-novelty", novelty.verdict);
    return p;
  }

  function item(data) {
    var li = el("li");
    li.setAttribute("data-module", data.module);
    if (data.new_claim) { li.setAttribute("data-new-claim", "true"); }
    li.appendChild(link(data.module, data.title));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "muted small", "v" + data.number + " · " + data.brand + " · " + data.market));
    li.appendChild(el("br"));
    li.appendChild(el("span", "small", truncate(data.key_message, 160)));
    li.appendChild(el("br"));
    var meter = el("meter", "", data.percent + "%");
    meter.min = 0;
    meter.max = 100;
    meter.value = data.percent;
    meter.title = data.percent + "% similar";
    li.appendChild(meter);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "muted small", data.percent + "% similar"));
    if (data.new_claim) {
      li.appendChild(document.createTextNode(" "));
      li.appendChild(el("span", "tag new-claim", "new claim: " + describe(data.differences)));
    }
    return li;
  }

  function show(nodes) {
    results.replaceChildren.apply(results, nodes);
    results.setAttribute("data-state", "shown");
  }

  function render(body) {
    var nodes = [verdict(body.novelty)];
    if (body.items.length) {
      var list = el("ol", "similar-list");
      list.setAttribute("aria-labelledby", "similar-title");
      body.items.forEach(function (data) { list.appendChild(item(data)); });
      nodes.push(list);
    } else {
      nodes.push(el("p", "muted empty", "No similar approved modules yet."));
    }
    show(nodes);
  }

  function payload() {
    var data = {};
    var any = false;
    names.forEach(function (name, i) {
      data[name] = fields[i] ? fields[i].value : "";
      if (data[name].trim()) { any = true; }
    });
    if (!any) { return null; }
    if (moduleId) { data.module = parseInt(moduleId, 10); }
    return data;
  }

  function check() {
    var data = payload();
    var key = JSON.stringify(data);
    if (key === lastSent) { return; }
    lastSent = key;
    if (controller) { controller.abort(); }
    if (data === null) {
      show([el("p", "muted empty", "Write the key message or body: the approved modules closest to it show here as you type.")]);
      return;
    }
    var mine = ++sequence;
    controller = window.AbortController ? new AbortController() : null;
    results.setAttribute("aria-busy", "true");
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken() },
      body: key,
      signal: controller ? controller.signal : undefined,
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (answer) {
      if (mine !== sequence) { return; }
      results.removeAttribute("aria-busy");
      if (answer.ok) {
        render(answer.body);
      } else {
        var message = (answer.body && answer.body.detail) || "the request was refused";
        show([el("p", "muted empty", "Similar approved content could not be checked: " + message)]);
      }
    }).catch(function (error) {
      if (error && error.name === "AbortError") { return; }
      if (mine !== sequence) { return; }
      results.removeAttribute("aria-busy");
      lastSent = null;
      show([el("p", "muted empty", "Similar approved content could not be checked just now.")]);
    });
  }

  function schedule() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(check, DELAY_MS);
  }

  fields.forEach(function (field) {
    if (field) { field.addEventListener("input", schedule); }
  });
  // What the server rendered stands for the text as loaded; only a change asks again.
  lastSent = JSON.stringify(payload());
})();

/* Progressive enhancement for the Permissions page: the same forms, sent with fetch.
 * Without this script every form still works (post, then redirect with a confirmation). */
(function () {
  "use strict";
  // Times are written by the server in the customer's stored time zone. With none stored
  // (UTC), they are shown here in the browser's own, and that zone is stored once (below).
  var storedZone = document.documentElement.getAttribute("data-time-zone");
  var browserZone = null;
  try {
    browserZone = new Intl.DateTimeFormat().resolvedOptions().timeZone || null;
    if (!storedZone) {
      var format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, {
        year: "numeric", month: "long", day: "numeric", hour: "2-digit", minute: "2-digit",
        timeZoneName: "short"
      });
      var times = document.querySelectorAll("time[datetime]");
      for (var t = 0; t < times.length; t++) {
        var moment = new Date(times[t].getAttribute("datetime"));
        if (!isNaN(moment.getTime())) times[t].textContent = format.format(moment);
      }
    }
  } catch (e) { /* an old browser keeps the server's UTC times */ }
  // "Print or save as PDF": shown only where a script can open the browser's print dialog.
  var printers = document.querySelectorAll("[data-print]");
  for (var p = 0; p < printers.length; p++) {
    printers[p].hidden = false;
    printers[p].addEventListener("click", function () { window.print(); });
  }
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (!meta || !window.fetch || !window.URLSearchParams) return;
  var csrf = meta.getAttribute("content");

  // A form's fields posted in the background, with the page's CSRF token; JSON comes back.
  function postForm(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
        "X-CSRF-Token": csrf
      },
      body: body.toString()
    });
  }

  if (!storedZone && browserZone) {
    postForm(
      "/permissions/time-zone", new URLSearchParams({ time_zone: browserZone, first: "1" })
    ).catch(function () { /* the page keeps showing the browser's zone */ });
  }

  function bySlot(name) {
    var slots = document.querySelectorAll("[data-slot]");
    for (var i = 0; i < slots.length; i++) {
      if (slots[i].getAttribute("data-slot") === name) return slots[i];
    }
    return null;
  }

  function applyState(data) {
    (data.permissions || []).forEach(function (p) {
      var button = document.getElementById("sw-" + p.id);
      if (button) {
        button.setAttribute("aria-checked", p.checked ? "true" : "false");
        button.value = p.next_state;
      }
      var state = document.getElementById("st-" + p.id);
      if (state) state.textContent = p.state_text;
      var card = document.getElementById("p-" + p.id);
      if (card) updateNote(card, p);
    });
    if (Array.isArray(data.reconsent)) updatePrompt(data.reconsent);
    var summary = document.getElementById("summary");
    if (summary && typeof data.summary_html === "string") summary.innerHTML = data.summary_html;
    Object.keys(data.sections || {}).forEach(function (id) {
      var line = document.getElementById("state-" + id);
      if (line) line.textContent = data.sections[id];
    });
    var count = document.getElementById("consent-count");
    if (count && data.count) count.textContent = data.count;
  }

  function remove(node) {
    if (node && node.parentNode) node.parentNode.removeChild(node);
  }

  // Why a switch is off (expired, reset, changed notice) no longer holds once it changed.
  function updateNote(card, p) {
    var note = card.querySelector(".perm-note");
    if (p.note) {
      if (!note) {
        note = document.createElement("p");
        note.className = "perm-note";
        card.insertBefore(note, card.querySelector("[data-slot]"));
      }
      note.textContent = p.note;
    } else {
      remove(note);
    }
    if (!p.status) remove(card.querySelector(".badge-status"));
  }

  // The re-consent prompt keeps only the permissions still to ask about.
  function updatePrompt(pending) {
    var items = document.querySelectorAll(".reconsent-item");
    for (var i = 0; i < items.length; i++) {
      if (pending.indexOf(items[i].id.slice(3)) < 0) remove(items[i]);
    }
    if (!document.querySelector(".reconsent-item")) remove(document.getElementById("reconsent"));
  }

  function hidden(name, value) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    return input;
  }

  function showMessage(slotName, data, isError) {
    var all = document.querySelectorAll("[data-slot]");
    for (var i = 0; i < all.length; i++) all[i].textContent = "";
    var slot = bySlot(slotName) || bySlot("all");
    if (!slot) return;
    var box = document.createElement("div");
    box.className = isError ? "confirm confirm-error" : "confirm";
    var text = document.createElement("p");
    text.textContent = data.message;
    box.appendChild(text);
    if (data.undo) {
      var form = document.createElement("form");
      form.method = "post";
      form.action = data.undo.action;
      form.setAttribute("data-enhance", "");
      form.appendChild(hidden("csrf", csrf));
      form.appendChild(hidden("lang", document.documentElement.lang));
      data.undo.fields.forEach(function (f) { form.appendChild(hidden(f[0], f[1])); });
      var button = document.createElement("button");
      button.type = "submit";
      button.className = "undo-button";
      button.textContent = data.undo.label;
      form.appendChild(button);
      box.appendChild(form);
    }
    slot.appendChild(box);
  }

  function refocus(slotName) {
    // After an undo its button is gone: put focus back where the change was made.
    var target = document.getElementById("sw-" + slotName) ||
      document.querySelector("#choices .choice-button");
    if (target) target.focus();
  }

  // A link to a switch inside a closed section opens that section first.
  function reveal(id) {
    var target = id && document.getElementById(id);
    if (!target) return;
    for (var node = target; node; node = node.parentNode) {
      if (node.tagName === "DETAILS") node.open = true;
    }
    target.scrollIntoView({ block: "start" });
  }
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element ? event.target.closest('a[href^="#"]') : null;
    if (!link) return;
    var id = decodeURIComponent(link.getAttribute("href").slice(1));
    if (!document.getElementById(id)) return;
    event.preventDefault();
    reveal(id);
    if (history.replaceState) history.replaceState(null, "", "#" + id);
  });
  if (location.hash) reveal(decodeURIComponent(location.hash.slice(1)));

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var submitter = event.submitter || form.querySelector("[type=submit]");
    var enhanced = form.hasAttribute("data-enhance") ||
      (submitter && submitter.hasAttribute("data-enhance-submit"));
    if (!enhanced) return;
    event.preventDefault();
    if (form.getAttribute("aria-busy") === "true") return;
    var body = new URLSearchParams();
    var fields = form.querySelectorAll("input[name]");
    for (var i = 0; i < fields.length; i++) body.append(fields[i].name, fields[i].value);
    if (submitter && submitter.name) body.append(submitter.name, submitter.value);
    var slotField = form.querySelector('input[name="slot"]');
    var isUndo = !!slotField;
    var card = form.closest("article.perm");
    var slotName = slotField ? slotField.value : (card ? card.id.slice(2) : "all");
    var focusWasInSlot = isUndo;
    form.setAttribute("aria-busy", "true");
    if (submitter) submitter.setAttribute("aria-busy", "true");
    postForm(form.action, body).then(function (response) {
      return response.json().then(function (data) { return { ok: response.ok, data: data }; });
    }).then(function (result) {
      var data = result.data;
      if (data.permissions) applyState(data);
      var message = data.message || document.body.getAttribute("data-error");
      showMessage(data.slot || slotName, { message: message, undo: data.undo }, !result.ok);
      if (focusWasInSlot) refocus(data.slot || slotName);
    }).catch(function () {
      showMessage(slotName, { message: document.body.getAttribute("data-error") }, true);
    }).then(function () {
      form.removeAttribute("aria-busy");
      if (submitter) submitter.removeAttribute("aria-busy");
    });
  });
})();

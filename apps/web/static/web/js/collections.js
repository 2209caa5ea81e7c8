/* Favourites, ratings, playlists and smart playlists in the web player.
 *
 * Every change goes to the API (/api/v1/…, the same endpoints as any client) with the session cookie and
 * the CSRF token; the pages are server-rendered and only carry ids in data-* attributes. Listeners are on
 * the document, since page swaps (nav.js) replace <main>. Page changes after an edit go through a link
 * click, so nav.js swaps the page and the player keeps playing.
 */
(() => {
  "use strict";

  const API = "/api/v1/";
  const PREVIEW_DELAY_MS = 300;

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(method, path, body, headers = {}) {
    const sent = { Accept: "application/json", ...headers };
    if (body !== undefined) sent["Content-Type"] = "application/json";
    if (method !== "GET") sent["X-CSRFToken"] = csrfToken();
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers: sent,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (error) {
      return { status: 0, ok: false, data: null };
    }
    let data = null;
    if (response.status !== 204) {
      try {
        data = await response.json();
      } catch {
        data = null;
      }
    }
    return { status: response.status, ok: response.ok, data };
  }

  function errorText(result) {
    const error = result.data && result.data.error;
    if (!error) return result.status ? `Failed (${result.status}).` : "The server cannot be reached.";
    const fields = error.fields ? Object.entries(error.fields).map(([key, value]) => `${key}: ${[].concat(value).join(" ")}`) : [];
    return fields.length ? fields.join("; ") : error.message;
  }

  // A page change that keeps the player: a link click that nav.js takes over.
  function go(url) {
    const link = document.createElement("a");
    link.href = url;
    link.hidden = true;
    document.body.append(link);
    link.click();
    link.remove();
  }

  function reload() {
    go(window.location.pathname + window.location.search);
  }

  // --- stars and ratings, on any row ---------------------------------------------------------------------

  async function toggleFavourite(button) {
    const starred = button.getAttribute("aria-pressed") === "true";
    const path = `${button.dataset.kind}/${encodeURIComponent(button.dataset.favourite)}/favourite`;
    button.disabled = true;
    const result = await api(starred ? "DELETE" : "PUT", path);
    button.disabled = false;
    if (!result.ok) return;
    const now = Boolean(result.data && result.data.favourite_at);
    // The same item may be listed twice on a page (a playlist with a repeat): every copy follows.
    for (const twin of document.querySelectorAll(`[data-favourite="${CSS.escape(button.dataset.favourite)}"][data-kind="${button.dataset.kind}"]`)) {
      twin.setAttribute("aria-pressed", String(now));
      twin.textContent = now ? "★" : "☆";
    }
  }

  async function rate(select) {
    const value = select.value === "" ? null : Number(select.value);
    const path = `${select.dataset.kind}/${encodeURIComponent(select.dataset.rating)}/rating`;
    const result = await api("PUT", path, { rating: value });
    if (result.ok) select.dataset.saved = select.value;
    else select.value = select.dataset.saved || "";
  }

  // --- add to a playlist: a small dialog listing the user's playlists ------------------------------------

  let picker = null;

  function who() {
    const element = document.querySelector(".sign-out .who");
    return element ? element.textContent.trim() : "";
  }

  function buildPicker() {
    const dialog = document.createElement("dialog");
    dialog.className = "playlist-picker";
    dialog.setAttribute("aria-labelledby", "playlist-picker-title");
    const title = document.createElement("h2");
    title.id = "playlist-picker-title";
    title.textContent = "Add to playlist";
    const list = document.createElement("ul");
    list.className = "plain-list";
    list.dataset.pickerList = "";
    const form = document.createElement("form");
    form.dataset.pickerNew = "";
    form.method = "dialog";
    const input = document.createElement("input");
    input.name = "name";
    input.required = true;
    input.maxLength = 200;
    input.placeholder = "New playlist";
    input.setAttribute("aria-label", "New playlist name");
    const create = document.createElement("button");
    create.type = "submit";
    create.className = "button";
    create.textContent = "Create and add";
    form.append(input, create);
    const status = document.createElement("p");
    status.className = "muted";
    status.setAttribute("role", "status");
    status.dataset.pickerStatus = "";
    const close = document.createElement("button");
    close.type = "button";
    close.className = "button";
    close.textContent = "Close";
    close.addEventListener("click", () => dialog.close());
    dialog.append(title, list, form, status, close);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const ids = dialog.trackIds || [];
      const result = await api("POST", "playlists", { name: input.value.trim(), track_ids: ids.slice(0, 500) });
      if (!result.ok) {
        status.textContent = errorText(result);
        return;
      }
      if (ids.length > 500) await addTo(result.data.id, ids.slice(500), status, result.data.name);
      status.textContent = `Added ${ids.length} to “${result.data.name}”.`;
      input.value = "";
      fillPicker(dialog);
    });
    document.body.append(dialog);
    return dialog;
  }

  async function addTo(playlistId, ids, status, name) {
    // At most 500 per call (the API's bound): a long album goes in several calls.
    for (let start = 0; start < ids.length; start += 500) {
      const result = await api("POST", `playlists/${playlistId}/entries`, { track_ids: ids.slice(start, start + 500) });
      if (!result.ok) {
        status.textContent = errorText(result);
        return false;
      }
    }
    status.textContent = `Added ${ids.length} to “${name}”.`;
    return true;
  }

  async function fillPicker(dialog) {
    const list = dialog.querySelector("[data-picker-list]");
    const result = await api("GET", "playlists?page_size=500");
    list.replaceChildren();
    const me = who();
    for (const playlist of (result.data && result.data.results) || []) {
      if (playlist.owner !== me) continue;
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link-button";
      button.dataset.pickPlaylist = String(playlist.id);
      button.textContent = `${playlist.name} (${playlist.track_count})`;
      button.addEventListener("click", async () => {
        const status = dialog.querySelector("[data-picker-status]");
        if (await addTo(playlist.id, dialog.trackIds || [], status, playlist.name)) fillPicker(dialog);
      });
      item.append(button);
      list.append(item);
    }
  }

  function openPicker(ids) {
    picker = picker && picker.isConnected ? picker : buildPicker();
    picker.trackIds = ids;
    picker.querySelector("[data-picker-status]").textContent = "";
    fillPicker(picker);
    if (!picker.open) picker.showModal();
  }

  // --- a playlist's page: create, reorder (drag or buttons), remove, delete ------------------------------

  function playlistOf(element) {
    return element.closest("[data-playlist]");
  }

  function setStatus(container, text) {
    const status = container.querySelector("[data-playlist-status]");
    if (status) status.textContent = text;
  }

  async function editPlaylist(container, path, body) {
    const result = await api("POST", `playlists/${container.dataset.playlist}/${path}`, body, {
      "If-Match": `"${container.dataset.version}"`,
    });
    if (result.status === 409) {
      setStatus(container, "This playlist was changed elsewhere: showing it as it is now.");
      reload();
      return;
    }
    if (!result.ok) {
      setStatus(container, errorText(result));
      return;
    }
    reload();
  }

  function move(container, from, to) {
    if (from === to) return;
    editPlaylist(container, "entries/move", { from_position: from, to_position: to });
  }

  let dragged = null;

  document.addEventListener("dragstart", (event) => {
    const row = event.target.closest && event.target.closest("[data-entry-position][draggable='true']");
    if (!row) return;
    dragged = row;
    row.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", row.dataset.entryPosition);
  });

  document.addEventListener("dragover", (event) => {
    const row = dragged && event.target.closest && event.target.closest("[data-entry-position]");
    if (!row || playlistOf(row) !== playlistOf(dragged)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "move";
  });

  document.addEventListener("drop", (event) => {
    const row = dragged && event.target.closest && event.target.closest("[data-entry-position]");
    if (!row) return;
    event.preventDefault();
    const from = Number(dragged.dataset.entryPosition);
    const to = Number(row.dataset.entryPosition);
    const container = playlistOf(row);
    dragged.classList.remove("dragging");
    dragged = null;
    if (container) move(container, from, to);
  });

  document.addEventListener("dragend", () => {
    if (dragged) dragged.classList.remove("dragging");
    dragged = null;
  });

  // --- the smart playlist editor ------------------------------------------------------------------------

  const OP_LABELS = {
    is: "is",
    contains: "contains",
    starts_with: "starts with",
    in_the_last: "in the last (days)",
    gt: "greater than",
    lt: "less than",
    between: "between",
  };

  function option(value, label, selected) {
    const element = document.createElement("option");
    element.value = value;
    element.textContent = label;
    element.selected = Boolean(selected);
    return element;
  }

  function valueInput(kind, op, schema, value) {
    const make = (current) => {
      if (kind === "boolean") {
        const select = document.createElement("select");
        select.append(option("true", "yes", current !== false), option("false", "no", current === false));
        return select;
      }
      if (kind === "choice") {
        const select = document.createElement("select");
        for (const choice of schema.kinds) select.append(option(choice, choice, current === choice));
        return select;
      }
      const input = document.createElement("input");
      const numeric = op === "in_the_last" || ["integer", "seconds", "rating"].includes(kind);
      input.type = numeric ? "number" : kind === "date" ? "date" : "text";
      if (current !== undefined && current !== null) input.value = String(current);
      return input;
    };
    const span = document.createElement("span");
    span.className = "smart-value";
    if (op === "between") {
      const pair = Array.isArray(value) ? value : [];
      span.append(make(pair[0]), document.createTextNode(" and "), make(pair[1]));
    } else {
      span.append(make(value));
    }
    for (const input of span.querySelectorAll("input, select")) input.setAttribute("aria-label", "Value");
    return span;
  }

  function conditionRow(editor, schema, condition = {}) {
    const row = document.createElement("li");
    row.dataset.smartCondition = "";
    const field = document.createElement("select");
    field.setAttribute("aria-label", "Field");
    for (const name of Object.keys(schema.fields)) field.append(option(name, name.replace("_", " "), name === condition.field));
    const op = document.createElement("select");
    op.setAttribute("aria-label", "Operator");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "icon-button";
    remove.textContent = "✕";
    remove.setAttribute("aria-label", "Remove this condition");
    remove.addEventListener("click", () => {
      row.remove();
      schedulePreview(editor);
    });
    let value = valueInput("text", "is", schema, condition.value);
    const refreshOps = (keepOp, keepValue) => {
      const spec = schema.fields[field.value];
      op.replaceChildren(...spec.ops.map((name) => option(name, OP_LABELS[name] || name, name === keepOp)));
      const fresh = valueInput(spec.kind, op.value, schema, keepValue);
      value.replaceWith(fresh);
      value = fresh;
    };
    field.addEventListener("change", () => refreshOps(null, undefined));
    op.addEventListener("change", () => {
      const fresh = valueInput(schema.fields[field.value].kind, op.value, schema, undefined);
      value.replaceWith(fresh);
      value = fresh;
    });
    row.append(field, op, value, remove);
    refreshOps(condition.op, condition.value);
    return row;
  }

  function readValue(kind, op, span) {
    const parse = (input) => {
      if (kind === "boolean") return input.value === "true";
      if (op === "in_the_last" || ["integer", "rating"].includes(kind)) return input.value === "" ? null : Math.trunc(Number(input.value));
      if (kind === "seconds") return input.value === "" ? null : Number(input.value);
      return input.value;
    };
    const inputs = [...span.querySelectorAll("input, select")];
    return op === "between" ? inputs.map(parse) : parse(inputs[0]);
  }

  function readRules(editor) {
    const schema = editor.schema;
    const conditions = [...editor.querySelectorAll("[data-smart-condition]")].map((row) => {
      const [field, op] = row.querySelectorAll(":scope > select");
      const kind = schema.fields[field.value].kind;
      return { field: field.value, op: op.value, value: readValue(kind, op.value, row.querySelector(".smart-value")) };
    });
    const rules = { [editor.elements.match.value]: conditions };
    if (editor.elements.order.value) rules.order = editor.elements.order.value;
    if (editor.elements.limit.value) rules.limit = Math.trunc(Number(editor.elements.limit.value));
    return rules;
  }

  async function preview(editor) {
    const count = editor.querySelector("[data-smart-count]");
    const asked = ++editor.previewNumber;
    const result = await api("POST", "smart-playlists/preview", { rules: readRules(editor) });
    if (asked !== editor.previewNumber) return; // a newer preview is on its way
    count.classList.toggle("error", !result.ok);
    count.textContent = result.ok ? `${result.data.count} track${result.data.count === 1 ? "" : "s"} match now.` : errorText(result);
  }

  function schedulePreview(editor) {
    clearTimeout(editor.previewTimer);
    editor.previewTimer = setTimeout(() => preview(editor), PREVIEW_DELAY_MS);
  }

  function setUpEditor(editor) {
    if (editor.schema) return;
    editor.schema = JSON.parse(editor.dataset.schema);
    editor.previewNumber = 0;
    const rules = editor.dataset.rules ? JSON.parse(editor.dataset.rules) : { all: [] };
    const list = editor.querySelector("[data-smart-conditions]");
    const match = "any" in rules ? "any" : "all";
    editor.elements.match.value = match;
    const order = editor.querySelector("[data-smart-order]");
    order.append(option("", "title", !rules.order));
    for (const name of editor.schema.orders) {
      order.append(option(name, name.replace("_", " "), rules.order === name));
      if (name !== "random") order.append(option(`-${name}`, `${name.replace("_", " ")}, descending`, rules.order === `-${name}`));
    }
    if (rules.limit) editor.elements.limit.value = String(rules.limit);
    const nodes = rules[match] || [];
    if (nodes.some((node) => !("field" in node))) {
      editor.querySelector("[data-smart-count]").textContent = "These rules nest groups: edit them through the API.";
      editor.querySelector("[type=submit]").disabled = true;
      return;
    }
    for (const node of nodes) list.append(conditionRow(editor, editor.schema, node));
    if (!nodes.length) list.append(conditionRow(editor, editor.schema));
    schedulePreview(editor);
  }

  document.addEventListener("input", (event) => {
    const editor = event.target.closest && event.target.closest("[data-smart-editor]");
    if (editor && editor.schema) schedulePreview(editor);
  });

  document.addEventListener("change", (event) => {
    const select = event.target.closest("select[data-rating]");
    if (select) {
      rate(select);
      return;
    }
    const editor = event.target.closest("[data-smart-editor]");
    if (editor && editor.schema) schedulePreview(editor);
  });

  function setUpPage() {
    for (const editor of document.querySelectorAll("[data-smart-editor]")) setUpEditor(editor);
    for (const select of document.querySelectorAll("select[data-rating]")) select.dataset.saved = select.value;
  }

  // --- clicks and submits ---------------------------------------------------------------------------------

  document.addEventListener("click", async (event) => {
    const target = event.target.closest("button");
    if (!target) return;
    if (target.matches("[data-favourite]")) {
      event.preventDefault();
      toggleFavourite(target);
    } else if (target.matches("[data-add-to-playlist]")) {
      event.preventDefault();
      openPicker(target.dataset.addToPlaylist.split(",").filter(Boolean).map(Number));
    } else if (target.matches("[data-smart-add]")) {
      const editor = target.closest("[data-smart-editor]");
      editor.querySelector("[data-smart-conditions]").append(conditionRow(editor, editor.schema));
      schedulePreview(editor);
    } else if (target.matches("[data-move]") || target.matches("[data-remove-entry]")) {
      const row = target.closest("[data-entry-position]");
      const container = playlistOf(target);
      const from = Number(row.dataset.entryPosition);
      if (target.matches("[data-remove-entry]")) {
        editPlaylist(container, "entries/remove", { positions: [from] });
        return;
      }
      // The neighbour's real position (entries of tracks this user may not see are not shown).
      const rows = [...container.querySelectorAll("[data-entry-position]")];
      const neighbour = rows[rows.indexOf(row) + Number(target.dataset.move)];
      if (neighbour) move(container, from, Number(neighbour.dataset.entryPosition));
    } else if (target.matches("[data-playlist-delete]")) {
      const container = playlistOf(target);
      if (!window.confirm("Delete this playlist?")) return;
      const result = await api("DELETE", `playlists/${container.dataset.playlist}`, undefined, {
        "If-Match": `"${container.dataset.version}"`,
      });
      if (result.ok) go("/playlists/");
      else setStatus(container, errorText(result));
    }
  });

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.matches("[data-playlist-create]")) {
      event.preventDefault();
      const body = { name: form.elements.name.value.trim(), public: form.elements.public.checked };
      const result = await api("POST", "playlists", body);
      if (result.ok) go(`/playlists/${result.data.id}/`);
      else form.querySelector("[data-playlist-status]").textContent = errorText(result);
    } else if (form.matches("[data-smart-editor]")) {
      event.preventDefault();
      const body = { name: form.elements.name.value.trim(), rules: readRules(form) };
      const id = form.dataset.smartId;
      const result = id ? await api("PATCH", `smart-playlists/${id}`, body) : await api("POST", "smart-playlists", body);
      if (result.ok) go(`/smart-playlists/${result.data.id}/`);
      else form.querySelector("[data-smart-count]").textContent = errorText(result);
    }
  });

  document.addEventListener("revenge:navigated", setUpPage);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setUpPage);
  else setUpPage();
})();

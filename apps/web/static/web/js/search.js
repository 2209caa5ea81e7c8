/* The header's search box: the first matches while typing, from GET /api/v1/search (the same selector as
 * the results page /search/, which Enter opens). Debounced: a request leaves DEBOUNCE_MS after the last
 * keystroke, and an answer that is no longer for the box's text is dropped (the request is aborted). The
 * links are ordinary same-origin links, so nav.js changes the page without stopping the player.
 */
(() => {
  "use strict";

  const DEBOUNCE_MS = 200;
  const MIN_CHARS = 2;
  const PER_KIND = 5;
  const form = document.querySelector("[data-search-box]");
  if (!form || !window.fetch) return;
  const input = form.querySelector("input[type=search]");
  const list = form.querySelector("[role=listbox]");
  let timer = null;
  let inflight = null;
  let shownFor = "";

  const SECTIONS = [
    ["artists", "Artists", (row) => [`/artists/${encodeURIComponent(row.name)}/`, row.name, `${row.album_count} album${row.album_count === 1 ? "" : "s"}`]],
    ["albums", "Albums", (row) => [`/albums/${row.id}/`, row.title, row.album_artist]],
    ["tracks", "Tracks", (row) => [`/tracks/${row.id}/`, row.title, row.artists.join(", ")]],
    ["books", "Books", (row) => [`/tracks/${row.id}/`, row.title, row.artists.join(", ")]],
    ["shows", "Shows", (row) => [`/albums/${row.id}/`, row.title, row.author]],
    ["episodes", "Episodes", (row) => [`/tracks/${row.id}/`, row.title, row.album ? row.album.title : ""]],
  ];

  function hide() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
  }

  function option(href, text, sub, kind) {
    const link = document.createElement("a");
    link.href = href;
    link.setAttribute("role", "option");
    link.dataset.suggestion = kind;
    link.append(text);
    if (sub) {
      const small = document.createElement("span");
      small.className = "sub";
      small.textContent = ` ${sub}`;
      link.append(small);
    }
    return link;
  }

  function render(query, results) {
    list.replaceChildren();
    let count = 0;
    for (const [kind, label, describe] of SECTIONS) {
      const rows = results[kind] || [];
      if (!rows.length) continue;
      const heading = document.createElement("h3");
      heading.textContent = label;
      list.append(heading);
      for (const row of rows) {
        const [href, text, sub] = describe(row);
        list.append(option(href, text, sub, kind));
        count += 1;
      }
    }
    const all = option(`/search/?q=${encodeURIComponent(query)}`, count ? "All results" : `Nothing matches “${query}”`, "", "all");
    all.classList.add("all");
    list.append(all);
    shownFor = query;
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }

  async function lookup(query) {
    if (inflight) inflight.abort();
    const controller = new AbortController();
    inflight = controller;
    try {
      const url = `/api/v1/search?q=${encodeURIComponent(query)}&limit=${PER_KIND}`;
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, signal: controller.signal });
      if (!response.ok) return; // a 400 (too long, a NUL) shows nothing; the results page says why
      const results = await response.json();
      if (inflight === controller && input.value.trim() === query) render(query, results);
    } catch (error) {
      if (error.name !== "AbortError") hide();
    } finally {
      if (inflight === controller) inflight = null;
    }
  }

  input.addEventListener("input", () => {
    window.clearTimeout(timer);
    const query = input.value.trim();
    if (query.length < MIN_CHARS) {
      if (inflight) inflight.abort();
      hide();
      return;
    }
    timer = window.setTimeout(() => lookup(query), DEBOUNCE_MS);
  });

  input.addEventListener("focus", () => {
    if (shownFor && shownFor === input.value.trim() && list.childElementCount) {
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }
  });

  function move(step) {
    const options = [...list.querySelectorAll("[role=option]")];
    if (!options.length) return;
    const current = options.findIndex((item) => item.getAttribute("aria-selected") === "true");
    options.forEach((item) => item.removeAttribute("aria-selected"));
    const next = options[(current + step + options.length) % options.length];
    next.setAttribute("aria-selected", "true");
    next.scrollIntoView({ block: "nearest" });
  }

  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      hide();
    } else if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (list.hidden) return;
      event.preventDefault();
      move(event.key === "ArrowDown" ? 1 : -1);
    } else if (event.key === "Enter") {
      const selected = list.hidden ? null : list.querySelector("[aria-selected=true]");
      if (selected) {
        event.preventDefault();
        hide();
        selected.click();
      }
    }
  });

  // A choice, a click elsewhere or a page change closes the list.
  list.addEventListener("click", (event) => {
    if (event.target.closest("a")) hide();
  });
  document.addEventListener("click", (event) => {
    if (!form.contains(event.target)) hide();
  });
  form.addEventListener("submit", hide);
})();

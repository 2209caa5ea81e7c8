/* Page changes without reloading the page, so the player bar keeps playing.
 *
 * Same-origin links and GET forms are fetched and only the regions marked data-swap (<main> and the
 * main navigation) are replaced, with the URL pushed to the history. The server renders whole pages as
 * usual: with this script off, or for anything it does not handle (POST forms, other layouts such as the
 * sign-in page, the admin, the API), the browser simply navigates.
 */
(() => {
  "use strict";

  if (!window.fetch || !window.history.pushState || !window.DOMParser) return;

  // Paths that are not pages of the player: the browser handles them itself.
  const FOREIGN = /^\/(admin|api|static|hls|login|logout|metrics|healthz|readyz)(\/|$)/;
  let inflight = null;

  function swappable(url) {
    return url.origin === window.location.origin && !FOREIGN.test(url.pathname);
  }

  function mainElement() {
    return document.querySelector('[data-swap="main"]');
  }

  async function navigate(url, { push, scroll = 0 }) {
    if (inflight) inflight.abort();
    const controller = new AbortController();
    inflight = controller;
    const main = mainElement();
    if (push) window.history.replaceState({ ...(window.history.state || {}), scroll: main.scrollTop }, "");
    main.setAttribute("aria-busy", "true");
    let response;
    let html;
    try {
      response = await fetch(url, {
        headers: { Accept: "text/html" },
        credentials: "same-origin",
        signal: controller.signal,
      });
      html = await response.text();
    } catch (error) {
      if (error.name === "AbortError") return;
      window.location.assign(url);
      return;
    } finally {
      main.removeAttribute("aria-busy");
    }
    if (inflight !== controller) return;
    inflight = null;
    const type = response.headers.get("Content-Type") || "";
    const doc = type.includes("text/html") ? new DOMParser().parseFromString(html, "text/html") : null;
    // Signed out meanwhile (the sign-in page has no player), or not one of our pages: a real navigation.
    if (!doc || !doc.getElementById("player") || !doc.querySelector('[data-swap="main"]')) {
      window.location.assign(response.url || url);
      return;
    }
    const landed = new URL(response.url || url);
    landed.hash = url.hash;
    if (push) window.history.pushState({ scroll: 0 }, "", landed);
    else window.history.replaceState({ ...(window.history.state || {}), scroll }, "", landed);
    for (const region of document.querySelectorAll("[data-swap]")) {
      const fresh = doc.querySelector(`[data-swap="${region.dataset.swap}"]`);
      if (fresh) region.replaceWith(document.importNode(fresh, true));
    }
    document.title = doc.title;
    const fresh = mainElement();
    fresh.scrollTop = scroll;
    // Screen readers hear the new page's heading; keyboard users continue from there.
    const heading = fresh.querySelector("h1") || fresh;
    if (!heading.hasAttribute("tabindex")) heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
    if (url.hash) {
      const anchor = document.getElementById(decodeURIComponent(url.hash.slice(1)));
      if (anchor) anchor.scrollIntoView();
    }
    document.dispatchEvent(new CustomEvent("revenge:navigated"));
  }

  document.addEventListener("click", (event) => {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    const link = event.target.closest("a[href]");
    if (!link || (link.target && link.target !== "_self") || link.hasAttribute("download")) return;
    if (link.hasAttribute("data-no-swap")) return;
    const url = new URL(link.href, window.location.href);
    if (!swappable(url)) return;
    const here = new URL(window.location.href);
    if (url.hash && url.pathname === here.pathname && url.search === here.search) return; // an anchor on this page
    event.preventDefault();
    navigate(url, { push: true });
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (event.defaultPrevented || form.method.toLowerCase() !== "get" || form.hasAttribute("data-no-swap")) return;
    const url = new URL(form.action, window.location.href);
    if (!swappable(url)) return;
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (typeof value === "string" && value !== "") params.append(name, value);
    }
    url.search = params.toString();
    navigate(url, { push: true });
  });

  window.addEventListener("popstate", (event) => {
    navigate(new URL(window.location.href), { push: false, scroll: (event.state && event.state.scroll) || 0 });
  });
})();

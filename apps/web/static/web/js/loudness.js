/* Loudness, silences and lyrics for the player bar (issue 21), beside player.js and reading only what it exposes
 * (window.revengePlayer: the track id and the queue) and the shared <audio> element.
 *
 * - Gain: a Web Audio GainNode between the <audio> element and the speakers, set to the track's gain, or the
 *   album's when an album is played in order (mode "auto"), or as chosen (track, album, off). The gains come
 *   from GET /api/v1/tracks/<id>/loudness (measured in the transcode, else ReplayGain/R128 tags).
 * - Skip silence: the stored silences of spoken word are jumped over; the time saved is shown. Progress stays
 *   the true position: the jump is a seek of the one <audio> element the player reports from.
 * - Lyrics: synced lines follow playback line by line; a click on a line seeks there.
 */
(() => {
  "use strict";
  const root = document.getElementById("player");
  if (!root) return;
  const audio = root.querySelector("[data-audio]");
  const API = root.dataset.api;
  const el = {
    mode: root.querySelector("[data-gain-mode]"),
    skip: root.querySelector("[data-skip-silence]"),
    saved: root.querySelector("[data-silence-saved]"),
    lyrics: root.querySelector("[data-lyrics-list]"),
    lyricsEmpty: root.querySelector("[data-lyrics-empty]"),
  };
  const EDGE_S = 0.25; // a little of each silence is kept: speech is never clipped
  const state = {
    trackId: null,
    loudness: null,
    albumInOrder: false,
    lines: [],
    current: -1,
    savedS: 0,
    context: null,
    gain: null,
  };

  function stored(key, fallback) {
    try {
      return localStorage.getItem(`revenge.${key}`) ?? fallback;
    } catch {
      return fallback;
    }
  }

  function store(key, value) {
    try {
      localStorage.setItem(`revenge.${key}`, value);
    } catch {
      /* private mode: the choice lasts this page */
    }
  }

  async function get(path) {
    try {
      const response = await fetch(API + path, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      return response.ok ? await response.json() : null;
    } catch {
      return null;
    }
  }

  function gainDb() {
    const loudness = state.loudness;
    if (!loudness) return 0;
    const mode = el.mode.value;
    if (mode === "off") return 0;
    const album = mode === "album" || (mode === "auto" && state.albumInOrder);
    const db = album && loudness.album_gain_db !== null ? loudness.album_gain_db : loudness.track_gain_db;
    return db === null ? 0 : db;
  }

  function applyGain() {
    if (state.gain) state.gain.gain.value = Math.pow(10, gainDb() / 20);
  }

  function graph() {
    // Made on the first play (a user gesture): an AudioContext made earlier would start suspended.
    if (state.context || !window.AudioContext) return;
    state.context = new AudioContext();
    state.gain = state.context.createGain();
    state.context.createMediaElementSource(audio).connect(state.gain).connect(state.context.destination);
    applyGain();
  }

  async function albumInOrder(trackId) {
    const queue = window.revengePlayer ? window.revengePlayer.queue : [];
    if (queue.length < 2) return false;
    const track = await get(`tracks/${trackId}`);
    if (!track || !track.album) return false;
    const album = await get(`albums/${track.album.id}`);
    if (!album || !album.tracks) return false;
    const order = album.tracks.map((t) => t.id);
    const start = order.indexOf(queue[0]);
    return start >= 0 && queue.every((id, index) => order[start + index] === id);
  }

  function renderLyrics(lyrics) {
    el.lyrics.replaceChildren();
    state.lines = lyrics ? lyrics.synced : [];
    state.current = -1;
    const plain = lyrics && !lyrics.synced.length && lyrics.plain ? lyrics.plain.split("\n") : [];
    for (const [index, line] of state.lines.entries()) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "lyrics-line";
      button.dataset.lineIndex = String(index);
      button.textContent = line.text || "♪";
      item.append(button);
      el.lyrics.append(item);
    }
    for (const text of plain) {
      const item = document.createElement("li");
      item.textContent = text;
      el.lyrics.append(item);
    }
    el.lyricsEmpty.hidden = state.lines.length > 0 || plain.length > 0;
  }

  function followLyrics() {
    if (!state.lines.length) return;
    const ms = audio.currentTime * 1000;
    let index = -1;
    while (index + 1 < state.lines.length && state.lines[index + 1].start_ms <= ms) index += 1;
    if (index === state.current) return;
    const previous = el.lyrics.querySelector('[aria-current="true"]');
    if (previous) previous.removeAttribute("aria-current");
    state.current = index;
    const button = index >= 0 ? el.lyrics.querySelector(`[data-line-index="${index}"]`) : null;
    if (button) {
      button.setAttribute("aria-current", "true");
      if (!el.lyrics.closest("[hidden]")) button.scrollIntoView({ block: "nearest" });
    }
  }

  function skipSilence() {
    if (!el.skip.checked || !state.loudness || audio.paused) return;
    const now = audio.currentTime;
    for (const [startMs, endMs] of state.loudness.silences) {
      const start = startMs / 1000 + EDGE_S;
      const end = endMs / 1000 - EDGE_S;
      if (now >= start && now < end) {
        state.savedS += end - now;
        audio.currentTime = end;
        el.saved.textContent = `${state.savedS.toFixed(1)} s saved`;
        return;
      }
    }
  }

  async function trackChanged() {
    const trackId = window.revengePlayer ? window.revengePlayer.trackId : null;
    if (trackId === state.trackId) return;
    state.trackId = trackId;
    state.loudness = null;
    state.albumInOrder = false;
    applyGain();
    renderLyrics(null);
    if (trackId === null) return;
    const [loudness, lyrics, inOrder] = await Promise.all([
      get(`tracks/${trackId}/loudness`),
      get(`tracks/${trackId}/lyrics`),
      albumInOrder(trackId),
    ]);
    if (trackId !== state.trackId) return; // another track was loaded meanwhile
    state.loudness = loudness;
    state.albumInOrder = inOrder;
    applyGain();
    renderLyrics(lyrics);
  }

  el.mode.value = stored("gainMode", "auto");
  el.skip.checked = stored("skipSilence", "0") === "1";
  el.mode.addEventListener("change", () => {
    store("gainMode", el.mode.value);
    applyGain();
  });
  el.skip.addEventListener("change", () => store("skipSilence", el.skip.checked ? "1" : "0"));
  el.lyrics.addEventListener("click", (event) => {
    const button = event.target.closest("[data-line-index]");
    if (!button) return;
    audio.currentTime = state.lines[Number(button.dataset.lineIndex)].start_ms / 1000;
    followLyrics();
  });
  audio.addEventListener("play", () => {
    graph();
    if (state.context && state.context.state === "suspended") state.context.resume().catch(() => {});
  });
  for (const name of ["loadstart", "loadedmetadata", "play"]) audio.addEventListener(name, trackChanged);
  audio.addEventListener("timeupdate", () => {
    trackChanged();
    skipSilence();
    followLyrics();
  });
  // timeupdate comes every ~250 ms; a silence is at least a second: checked 10 times a second while playing.
  setInterval(skipSilence, 100);

  window.revengeLoudness = {
    get trackId() { return state.trackId; },
    get gainDb() { return gainDb(); },
    get gainValue() { return state.gain ? state.gain.gain.value : null; },
    get albumInOrder() { return state.albumInOrder; },
    get savedS() { return state.savedS; },
    get loudness() { return state.loudness; },
  };
})();

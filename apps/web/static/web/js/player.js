/* Revenge web player: the player bar at the bottom of every page.
 *
 * Everything goes through the REST API with the session cookie and the CSRF header:
 *   POST /sessions           opens a playback session and returns the stream decision (HLS or direct play)
 *   PATCH /sessions/<id>     heartbeat: stores the position like a progress PUT (409 when another device is newer)
 *   PUT /progress/<track>    the position when no session is open (paused, leaving the page)
 *   /queue, /tracks/<id>/bookmarks, /sessions (the other devices)
 * HLS plays through hls.js where Media Source Extensions exist (Hls.isSupported()), natively only where they
 * do not (iOS Safari); direct play hands the signed /file URL to <audio>, which seeks with Range requests.
 *
 * Conflicts between devices: every update says when its position was true (`client_updated_at`). While
 * playing that is now; while paused it is the moment playback stopped. So a device that was paused while
 * another one moved on sends, when it resumes, an update older than the stored one: the server answers 409
 * with the newer state, and the bar offers to jump there instead of silently overwriting it.
 */
(() => {
  "use strict";

  const root = document.getElementById("player");
  if (!root) return;

  const API = root.dataset.api;
  const PROGRESS_EVERY_MS = 10000;
  const SESSIONS_EVERY_MS = 20000;
  const BACK_S = 15;
  const FORWARD_S = 30;
  // The server offers no resume point in the last 5 % of a track (apps/playback/rules.py).
  const RESUME_LIMIT = 0.95;
  // A 409 whose stored position is this close to ours is not worth asking about.
  const OFFER_MIN_DISTANCE_MS = 2000;
  const PREVIOUS_RESTARTS_AFTER_S = 5;
  const CODEC_TYPES = {
    mp3: "audio/mpeg",
    aac: 'audio/mp4; codecs="mp4a.40.2"',
    alac: 'audio/mp4; codecs="alac"',
    flac: "audio/flac",
    opus: 'audio/ogg; codecs="opus"',
    vorbis: 'audio/ogg; codecs="vorbis"',
    pcm: 'audio/wav; codecs="1"',
  };

  const audio = root.querySelector("[data-audio]");
  const el = {
    title: root.querySelector("[data-now-title]"),
    sub: root.querySelector("[data-now-sub]"),
    tile: root.querySelector("[data-now-tile]"),
    toggle: root.querySelector('[data-action="toggle"]'),
    toggleIcon: root.querySelector("[data-toggle-icon]"),
    seek: root.querySelector("#player-seek"),
    elapsed: root.querySelector("[data-elapsed]"),
    total: root.querySelector("[data-total]"),
    speed: root.querySelector("[data-speed]"),
    sleep: root.querySelector("[data-sleep]"),
    sleepChapter: root.querySelector("[data-sleep-chapter]"),
    sleepLeft: root.querySelector("[data-sleep-left]"),
    volume: root.querySelector("[data-volume]"),
    mute: root.querySelector('[data-action="mute"]'),
    volumeIcon: root.querySelector("[data-volume-icon]"),
    quality: root.querySelector("[data-quality]"),
    status: root.querySelector("[data-status]"),
    offer: root.querySelector("[data-offer]"),
    offerText: root.querySelector("[data-offer-text]"),
    offerTime: root.querySelector("[data-offer-time]"),
    elsewhere: root.querySelector("[data-elsewhere]"),
    elsewhereText: root.querySelector("[data-elsewhere-text]"),
    chapterList: root.querySelector("[data-chapter-list]"),
    bookmarkForm: root.querySelector("[data-bookmark-form]"),
    bookmarkTime: root.querySelector("[data-bookmark-time]"),
    bookmarkList: root.querySelector("[data-bookmark-list]"),
    bookmarkEmpty: root.querySelector("[data-bookmark-empty]"),
    queueList: root.querySelector("[data-queue-list]"),
    queueEmpty: root.querySelector("[data-queue-empty]"),
    more: root.querySelector('[data-action="more"]'),
  };
  const action = (name) => root.querySelector(`[data-action="${name}"]`);

  const state = {
    device: deviceId(),
    queue: [],
    index: -1,
    titles: new Map(),
    track: null,
    sessionId: null,
    sessionTrackId: null,
    attached: false,
    hls: null,
    mode: null,
    // Where playback starts once a source is attached (seconds); what position() reports until then.
    startAt: 0,
    settled: true,
    // When the current position was last true while not playing (epoch ms); null while playing.
    basisMs: Date.now(),
    resumePending: false,
    // The newest client_updated_at this page has sent (epoch ms): every update is stamped later than it.
    lastStampMs: 0,
    offer: null,
    sending: false,
    pending: [],
    // The update being sent now (a normal request, which the browser cancels when the page goes away).
    inFlight: null,
    // Where the position the player starts from was true: this device, another one, or nowhere yet.
    resumedFrom: null,
    // The page is going away: no more banners, only keepalive requests.
    leaving: false,
    loadToken: 0,
    switching: false,
    retries: 0,
    sleep: null,
    elsewhere: null,
    dragging: false,
  };
  let progressTimer = null;
  let sleepTimer = null;

  // --- small helpers ---------------------------------------------------------------------------------

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function api(method, path, body, { keepalive = false } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    let response;
    try {
      response = await fetch(API + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        keepalive,
      });
    } catch (error) {
      return { status: 0, ok: false, data: null, error };
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

  function clock(seconds) {
    const total = Math.max(0, Math.floor(Number.isFinite(seconds) ? seconds : 0));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = String(total % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
  }

  function store(key, value) {
    try {
      localStorage.setItem(`revenge.${key}`, value);
    } catch {
      /* private mode: settings last for this page only */
    }
  }

  function stored(key) {
    try {
      return localStorage.getItem(`revenge.${key}`);
    } catch {
      return null;
    }
  }

  // One id per browser, made once and kept in localStorage; readable, since other devices show it.
  function deviceId() {
    const known = stored("device");
    if (known) return known;
    const agent = navigator.userAgent;
    const browser = /Edg\//.test(agent) ? "Edge" : /Firefox\//.test(agent) ? "Firefox"
      : /Chrom(e|ium)\//.test(agent) ? "Chrome" : /Safari\//.test(agent) ? "Safari" : "Browser";
    const system = /Android/.test(agent) ? "Android" : /iPhone|iPad/.test(agent) ? "iOS"
      : /Mac OS X/.test(agent) ? "macOS" : /Windows/.test(agent) ? "Windows" : /Linux/.test(agent) ? "Linux" : "the web";
    const bytes = new Uint8Array(3);
    crypto.getRandomValues(bytes);
    const suffix = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    const id = `${browser} on ${system} · ${suffix}`;
    store("device", id);
    return id;
  }

  function setStatus(text, { error = false } = {}) {
    el.status.textContent = text || "";
    el.status.classList.toggle("is-error", Boolean(error && text));
  }

  function durationS() {
    if (Number.isFinite(audio.duration) && audio.duration > 0 && state.attached) return audio.duration;
    return state.track ? state.track.duration_ms / 1000 : 0;
  }

  function position() {
    if (!state.attached || !state.settled) return state.startAt;
    return audio.currentTime;
  }

  function playing() {
    return state.attached && !audio.paused && !audio.ended;
  }

  function trackPageUrl(trackId) {
    return root.dataset.trackUrl.replace("/0/", `/${trackId}/`);
  }

  function playableCodecs() {
    return Object.keys(CODEC_TYPES).filter((codec) => audio.canPlayType(CODEC_TYPES[codec]) !== "");
  }

  function maxBitrate() {
    const kbps = Number(el.quality.value);
    return kbps > 0 ? kbps : null;
  }

  // --- chapters --------------------------------------------------------------------------------------

  function chapters() {
    return state.track ? state.track.chapters : [];
  }

  function chapterIndexAt(seconds) {
    const list = chapters();
    let found = -1;
    for (let i = 0; i < list.length; i += 1) {
      if (list[i].start_ms / 1000 <= seconds + 0.05) found = i;
    }
    return found;
  }

  function chapterPrevious() {
    const list = chapters();
    const now = position();
    const index = chapterIndexAt(now);
    if (index < 0) return;
    const start = list[index].start_ms / 1000;
    // Like a CD player: back to the start of this chapter, or to the previous one when just past it.
    seekTo(now - start > 3 || index === 0 ? start : list[index - 1].start_ms / 1000);
  }

  function chapterNext() {
    const list = chapters();
    const index = chapterIndexAt(position());
    if (index + 1 < list.length) seekTo(list[index + 1].start_ms / 1000);
  }

  // --- loading and playing ---------------------------------------------------------------------------

  async function load(trackId, { autoplay = false, startMs = null } = {}) {
    const token = ++state.loadToken;
    finishCurrent();
    state.track = null;
    state.offer = null;
    hideOffer();
    setStatus("Loading…");
    const [detail, progress] = await Promise.all([api("GET", `tracks/${trackId}`), api("GET", `progress/${trackId}`)]);
    if (token !== state.loadToken) return;
    if (!detail.ok) {
      setStatus("This track is not available.", { error: true });
      render();
      return;
    }
    state.track = detail.data;
    state.titles.set(trackId, detail.data.title);
    renderQueue();
    state.retries = 0;
    let resumeMs = 0;
    let stored = progress.ok ? progress.data : null;
    const own = ownLastSave(trackId);
    if (own && (!stored || !stored.client_updated_at || Date.parse(own.client_updated_at) > Date.parse(stored.client_updated_at))) {
      // This device's last save is newer than the server's: the keepalive request that carried it, sent as
      // the previous page went away, has not landed yet (or was lost). It is the freshest position there
      // is; sent again, it is stored (or, if it landed meanwhile, answered as a replay).
      stored = { ...own, duration_ms: detail.data.duration_ms, completed: own.state === "stopped", device_id: state.device };
      queueUpdate(own);
    }
    if (startMs !== null) {
      resumeMs = startMs;
      state.resumedFrom = state.device;
    } else if (stored && !stored.completed && stored.position_ms > 0 && stored.position_ms < stored.duration_ms * RESUME_LIMIT) {
      resumeMs = stored.position_ms;
      state.resumedFrom = stored.device_id;
    } else {
      state.resumedFrom = null;
    }
    state.startAt = resumeMs / 1000;
    state.settled = true;
    // The position was learnt from the server now: an update made elsewhere after this is newer than ours.
    state.basisMs = Date.now();
    state.resumePending = startMs === null;
    setStatus("");
    render();
    renderChapters();
    refreshBookmarks();
    // A chapter or bookmark chosen by hand is a new position, stored as of now.
    if (startMs !== null) sync(autoplay ? "playing" : "paused", { positionS: startMs / 1000 });
    if (autoplay) await start();
  }

  // Leaving a track (another one is loaded): its last position, and the media detached.
  function finishCurrent() {
    if (state.track && state.attached && !state.offer) {
      sync(audio.ended ? "stopped" : "paused");
    }
    stopProgressTimer();
    detach();
  }

  function detach() {
    state.switching = true;
    if (state.hls) {
      state.hls.destroy();
      state.hls = null;
    }
    audio.pause();
    audio.removeAttribute("src");
    audio.load();
    state.attached = false;
    state.mode = null;
    state.switching = false;
  }

  async function start() {
    if (!state.track) return;
    const token = state.loadToken;
    if (!state.attached) {
      setStatus("Loading…");
      const opened = await openSession();
      if (token !== state.loadToken || !opened) return;
      let decision = opened.stream;
      if (decision.mode === "hls" && !decision.ready && !decision.growing) {
        decision = await waitUntilReady(token);
        if (!decision) return;
      }
      if (!(await attach(decision, state.startAt))) return;
      setStatus("");
    }
    try {
      await audio.play();
    } catch (error) {
      if (error.name === "NotAllowedError") setStatus("Press play to start.");
      else if (error.name !== "AbortError") setStatus(`Playback failed: ${error.message}`, { error: true });
    }
  }

  async function openSession() {
    const response = await api("POST", "sessions", {
      track: state.track.id,
      device_id: state.device,
      codecs: playableCodecs(),
      max_bitrate: maxBitrate(),
    });
    if (!response.ok) {
      setStatus(response.status === 404 ? "This track is not available." : "Could not start playback.", { error: true });
      return null;
    }
    state.sessionId = response.data.id;
    state.sessionTrackId = state.track.id;
    return response.data;
  }

  function decisionQuery() {
    const query = new URLSearchParams({ codecs: playableCodecs().join(",") });
    const kbps = maxBitrate();
    if (kbps) query.set("max_bitrate", String(kbps));
    return query.toString();
  }

  // HLS wanted but not built yet (the server has queued it ahead of bulk work): ask again until it is
  // ready or growing (its first segments made: it plays while the rest is made), every second.
  async function waitUntilReady(token) {
    setStatus("Preparing this track for streaming…");
    for (let attempt = 0; attempt < 600; attempt += 1) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (token !== state.loadToken) return null;
      const response = await api("GET", `tracks/${state.track.id}/stream?${decisionQuery()}`);
      const decision = response.data;
      if (response.ok && (decision.mode === "direct" || decision.ready || decision.growing)) return decision;
    }
    setStatus("This track could not be prepared for streaming.", { error: true });
    return null;
  }

  let hlsScript = null;
  function loadHlsJs() {
    if (window.Hls) return Promise.resolve(window.Hls);
    if (!hlsScript) {
      hlsScript = new Promise((resolve) => {
        const script = document.createElement("script");
        script.src = root.dataset.hlsjs;
        script.onload = () => resolve(window.Hls || null);
        script.onerror = () => {
          hlsScript = null;
          resolve(null);
        };
        document.head.appendChild(script);
      });
    }
    return hlsScript;
  }

  async function attach(decision, startS) {
    state.mode = decision.mode;
    root.dataset.mode = decision.mode;
    state.settled = startS <= 0;
    if (decision.mode === "hls") {
      const Hls = await loadHlsJs();
      if (Hls && Hls.isSupported()) {
        const hls = new Hls({ startPosition: startS > 0 ? startS : -1 });
        hls.on(Hls.Events.ERROR, (_event, data) => {
          if (data.fatal) onHlsFatal(hls, data);
        });
        hls.loadSource(decision.url);
        hls.attachMedia(audio);
        state.hls = hls;
      } else if (audio.canPlayType("application/vnd.apple.mpegurl")) {
        audio.src = decision.url; // Safari on iOS: no Media Source Extensions, native HLS
        seekOnMetadata(startS);
      } else {
        setStatus("This browser cannot play this stream.", { error: true });
        return false;
      }
    } else {
      audio.src = decision.url;
      seekOnMetadata(startS);
    }
    audio.defaultPlaybackRate = Number(el.speed.value);
    audio.playbackRate = Number(el.speed.value);
    state.attached = true;
    return true;
  }

  function seekOnMetadata(startS) {
    if (startS > 0) {
      audio.addEventListener("loadedmetadata", () => {
        audio.currentTime = state.startAt;
      }, { once: true });
    }
  }

  function onHlsFatal(hls, data) {
    const Hls = window.Hls;
    if (data.type === Hls.ErrorTypes.MEDIA_ERROR && state.retries < 2) {
      state.retries += 1;
      hls.recoverMediaError();
      return;
    }
    reattach();
  }

  // A signed URL expired (a tab paused for hours) or the network dropped: a fresh decision, same position.
  async function reattach() {
    if (!state.track || state.retries >= 3) {
      setStatus("Playback failed. Press play to try again.", { error: true });
      const at = position();
      detach();
      state.startAt = at;
      render();
      return;
    }
    state.retries += 1;
    const at = position();
    const resume = !audio.paused;
    const token = state.loadToken;
    const response = await api("GET", `tracks/${state.track.id}/stream?${decisionQuery()}`);
    if (token !== state.loadToken) return;
    detach();
    state.startAt = at;
    if (!response.ok || !(await attach(response.data, at))) {
      setStatus("Playback failed. Press play to try again.", { error: true });
      return;
    }
    if (resume) audio.play().catch(() => {});
  }

  function toggle() {
    if (!state.track) return;
    if (playing()) audio.pause();
    else start();
  }

  function seekTo(seconds, { user = true } = {}) {
    if (!state.track) return;
    const target = Math.max(0, Math.min(seconds, Math.max(0, durationS() - 0.25)));
    if (!state.attached || !state.settled) state.startAt = target;
    if (state.attached) audio.currentTime = target;
    if (user) {
      if (!playing()) state.basisMs = Date.now();
      sync(playing() ? "playing" : "paused", { positionS: target });
      if (state.sleep && state.sleep.kind === "chapter") armChapterSleep();
    }
    renderTime(target);
  }

  function skip(deltaS) {
    seekTo(position() + deltaS);
  }

  // --- progress, sessions, conflicts ------------------------------------------------------------------

  function sync(playState, { positionS = null, keepalive = false } = {}) {
    if (!state.track || state.offer) return;
    const durationMs = state.track.duration_ms;
    const atS = positionS === null ? position() : positionS;
    const resuming = state.resumePending && playState === "playing";
    // A resume is stamped with when its position was last true (an update made elsewhere meanwhile is
    // newer); but never at or before our own previous update: the server refuses a different update at
    // the same time as stale (a seek while paused, then play, share one basis).
    let stampMs = playState === "playing" && !resuming ? Date.now() : state.basisMs ?? Date.now();
    if (stampMs <= state.lastStampMs) stampMs = state.lastStampMs + 1;
    state.lastStampMs = stampMs;
    const update = {
      trackId: state.track.id,
      position_ms: Math.max(0, Math.min(Math.round(atS * 1000), durationMs)),
      state: playState,
      client_updated_at: new Date(stampMs).toISOString(),
    };
    if (resuming) state.resumePending = false;
    rememberSave(update);
    if (keepalive) {
      send(update, { keepalive: true });
      return;
    }
    queueUpdate(update);
  }

  // One request at a time, newest last: two in flight could land in the wrong order and the older
  // one would be refused as stale against our own newer one. A newer update of a track replaces the
  // one still waiting; the last update of the track we just left is kept.
  function queueUpdate(update) {
    state.pending = state.pending.filter((waiting) => waiting.trackId !== update.trackId);
    state.pending.push(update);
    if (!state.sending) drain();
  }

  async function drain() {
    state.sending = true;
    while (state.pending.length) {
      state.inFlight = state.pending.shift();
      await send(state.inFlight);
      state.inFlight = null;
    }
    state.sending = false;
  }

  // This device's last save, kept in the browser too: a page loaded while the previous one's last save is
  // still on its way (a reload: the new page is rendered before the old one's pagehide) reads it back.
  function rememberSave(update) {
    store("last-save", JSON.stringify({ ...update, device: state.device }));
  }

  function ownLastSave(trackId) {
    try {
      const saved = JSON.parse(stored("last-save"));
      if (!saved || saved.trackId !== trackId || saved.device !== state.device) return null;
      if (!Number.isInteger(saved.position_ms) || Number.isNaN(Date.parse(saved.client_updated_at))) return null;
      return { trackId, position_ms: saved.position_ms, state: saved.state, client_updated_at: saved.client_updated_at };
    } catch {
      return null;
    }
  }

  async function send(update, { keepalive = false } = {}) {
    const body = { position_ms: update.position_ms, state: update.state, client_updated_at: update.client_updated_at };
    let response;
    const sessionId = state.sessionId;
    if (sessionId && state.sessionTrackId === update.trackId && !keepalive) {
      response = await api("PATCH", `sessions/${sessionId}`, body);
      if (response.status === 409 && response.data && response.data.error.code === "session_ended") {
        // Closed after being idle, or replaced by the next track's: the position goes in as a plain update.
        if (state.sessionId === sessionId) state.sessionId = null;
        response = await api("PUT", `progress/${update.trackId}`, { ...body, device_id: state.device });
      }
    } else {
      response = await api("PUT", `progress/${update.trackId}`, { ...body, device_id: state.device }, { keepalive });
    }
    if (response.status === 409 && response.data && response.data.current) conflict(update, response.data.current);
  }

  function conflict(update, current) {
    if (!state.track || current.track_id !== state.track.id || state.leaving) return;
    // Our own device (an older request of ours landing late) or the same place: nothing to ask.
    if (current.device_id === state.device) return;
    if (Math.abs(current.position_ms - update.position_ms) < OFFER_MIN_DISTANCE_MS) return;
    state.offer = current;
    const where = current.device_id ? `on ${current.device_id}` : "elsewhere";
    el.offerText.textContent = `Newer position ${where}: ${clock(current.position_ms / 1000)} (here: ${clock(update.position_ms / 1000)}).`;
    el.offerTime.textContent = clock(current.position_ms / 1000);
    el.offer.hidden = false;
    refreshSessions();
  }

  function hideOffer() {
    el.offer.hidden = true;
  }

  function offerJump() {
    const offer = state.offer;
    state.offer = null;
    hideOffer();
    if (offer) seekTo(offer.position_ms / 1000);
  }

  function offerDismiss() {
    state.offer = null;
    hideOffer();
    if (!playing()) state.basisMs = Date.now();
    sync(playing() ? "playing" : "paused");
  }

  function startProgressTimer() {
    stopProgressTimer();
    progressTimer = setInterval(() => {
      if (playing()) sync("playing");
    }, PROGRESS_EVERY_MS);
  }

  function stopProgressTimer() {
    if (progressTimer) clearInterval(progressTimer);
    progressTimer = null;
  }

  // The updates already queued go out first (as heartbeats of the session they belong to): a DELETE sent
  // beside them could end the session before the last heartbeat lands, which the server refuses with a
  // 409 (the player then stores the position with a plain PUT, but the browser logs the 409). A page
  // going away (keepalive) cannot wait.
  async function closeSession({ keepalive = false } = {}) {
    if (!keepalive) await sendsSettled();
    const id = state.sessionId;
    if (!id) return;
    state.sessionId = null;
    await api("DELETE", `sessions/${id}`, undefined, { keepalive });
  }

  async function sendsSettled() {
    for (let i = 0; i < 100 && (state.sending || state.pending.length); i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  async function refreshSessions() {
    if (document.hidden) return;
    const response = await api("GET", "sessions");
    if (!response.ok) return;
    const others = response.data.results.filter((session) => session.device_id !== state.device);
    state.elsewhere = others[0] || null;
    if (!state.elsewhere) {
      el.elsewhere.hidden = true;
      return;
    }
    const session = state.elsewhere;
    const verb = session.state === "playing" ? "Now playing" : "Paused";
    el.elsewhereText.textContent = `${verb} on ${session.device_id}: ${session.track.title} · ${clock(session.position_ms / 1000)}`;
    el.elsewhere.hidden = false;
  }

  // --- queue -----------------------------------------------------------------------------------------

  async function playFrom(ids, index, { startMs = null } = {}) {
    state.queue = ids;
    state.index = index;
    renderQueue();
    api("PUT", `queue?device_id=${encodeURIComponent(state.device)}`, { track_ids: ids, current_index: index, position_ms: 0 });
    await load(ids[index], { autoplay: true, startMs });
  }

  function saveQueueIndex() {
    api("PUT", `queue?device_id=${encodeURIComponent(state.device)}`, {
      track_ids: state.queue,
      current_index: state.index,
      position_ms: 0,
    });
  }

  function next({ autoplay = true } = {}) {
    if (state.index + 1 >= state.queue.length) return false;
    state.index += 1;
    saveQueueIndex();
    renderQueue();
    load(state.queue[state.index], { autoplay });
    return true;
  }

  function previous() {
    if (position() > PREVIOUS_RESTARTS_AFTER_S || state.index <= 0) {
      seekTo(0);
      return;
    }
    state.index -= 1;
    saveQueueIndex();
    renderQueue();
    load(state.queue[state.index], { autoplay: true });
  }

  async function restore() {
    const token = state.loadToken;
    const response = await api("GET", `queue?device_id=${encodeURIComponent(state.device)}`);
    // The listener pressed play while the stored queue was on its way: what they chose wins (restoring after
    // it replaced their album by the stored queue and left the player paused, a race a slow server lost).
    if (token !== state.loadToken) return;
    if (!response.ok || !response.data.track_ids.length) {
      render();
      return;
    }
    state.queue = response.data.track_ids;
    state.index = Math.min(response.data.current_index, state.queue.length - 1);
    renderQueue();
    await load(state.queue[state.index], { autoplay: false });
    fillQueueTitles();
  }

  async function fillQueueTitles() {
    const around = state.queue.slice(Math.max(0, state.index - 10), state.index + 40);
    const missing = around.filter((id) => !state.titles.has(id));
    await Promise.all(missing.map(async (id) => {
      const response = await api("GET", `tracks/${id}`);
      if (response.ok) state.titles.set(id, response.data.title);
    }));
    if (missing.length) renderQueue();
  }

  // --- sleep timer -----------------------------------------------------------------------------------

  function setSleep(value) {
    if (sleepTimer) clearInterval(sleepTimer);
    sleepTimer = null;
    state.sleep = null;
    el.sleepLeft.textContent = "";
    if (!value) return;
    if (value === "chapter") {
      state.sleep = { kind: "chapter", endS: 0 };
      armChapterSleep();
    } else {
      state.sleep = { kind: "minutes", deadline: Date.now() + Number(value) * 60000 };
      sleepTimer = setInterval(sleepTick, 1000);
      sleepTick();
    }
  }

  function armChapterSleep() {
    const list = chapters();
    const index = chapterIndexAt(position());
    state.sleep.endS = index >= 0 ? list[index].end_ms / 1000 : durationS();
    el.sleepLeft.textContent = `at ${clock(state.sleep.endS)}`;
  }

  function sleepTick() {
    if (!state.sleep || state.sleep.kind !== "minutes") return;
    const leftMs = state.sleep.deadline - Date.now();
    if (leftMs <= 0) {
      sleepNow();
      return;
    }
    el.sleepLeft.textContent = clock(leftMs / 1000);
  }

  function sleepNow() {
    setSleep("");
    el.sleep.value = "";
    if (playing()) audio.pause();
    setStatus("Sleep timer: paused.");
  }

  // --- bookmarks -------------------------------------------------------------------------------------

  async function refreshBookmarks() {
    el.bookmarkList.replaceChildren();
    el.bookmarkEmpty.hidden = false;
    if (!state.track) return;
    const trackId = state.track.id;
    const response = await api("GET", `tracks/${trackId}/bookmarks?page_size=500`);
    if (!response.ok || !state.track || state.track.id !== trackId) return;
    const items = response.data.results.map((bookmark) => {
      const li = document.createElement("li");
      const jump = document.createElement("button");
      jump.type = "button";
      jump.className = "panel-item";
      jump.dataset.seekMs = String(bookmark.position_ms);
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = bookmark.note || "Bookmark";
      const at = document.createElement("span");
      at.className = "at";
      at.textContent = clock(bookmark.position_ms / 1000);
      jump.append(label, at);
      jump.setAttribute("aria-label", `Jump to bookmark ${clock(bookmark.position_ms / 1000)}${bookmark.note ? `: ${bookmark.note}` : ""}`);
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "icon-button";
      remove.dataset.deleteBookmark = String(bookmark.id);
      remove.setAttribute("aria-label", `Delete bookmark at ${clock(bookmark.position_ms / 1000)}`);
      remove.append(icon("i-trash"));
      li.append(jump, remove);
      return li;
    });
    el.bookmarkList.replaceChildren(...items);
    el.bookmarkEmpty.hidden = items.length > 0;
  }

  async function addBookmark(note) {
    if (!state.track) return;
    const response = await api("POST", `tracks/${state.track.id}/bookmarks`, {
      position_ms: Math.round(position() * 1000),
      note,
    });
    if (response.ok) {
      setStatus(`Bookmark added at ${clock(response.data.position_ms / 1000)}.`);
      refreshBookmarks();
    } else {
      setStatus("Could not add the bookmark.", { error: true });
    }
  }

  // --- rendering -------------------------------------------------------------------------------------

  function icon(name) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("class", "icon");
    svg.setAttribute("aria-hidden", "true");
    const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
    use.setAttribute("href", `#${name}`);
    svg.append(use);
    return svg;
  }

  function render() {
    const track = state.track;
    root.classList.toggle("is-idle", !track);
    const hasTrack = Boolean(track);
    for (const name of ["toggle", "back", "forward"]) action(name).disabled = !hasTrack;
    el.seek.disabled = !hasTrack;
    action("previous").disabled = !hasTrack;
    action("next").disabled = state.index + 1 >= state.queue.length;
    root.querySelector('[data-panel="panel-bookmarks"]').disabled = !hasTrack;
    const hasChapters = hasTrack && track.chapters.length > 1;
    for (const button of root.querySelectorAll(".chapter-only")) button.hidden = !hasChapters;
    root.querySelector('[data-panel="panel-chapters"]').hidden = !hasChapters;
    el.sleepChapter.textContent = hasChapters ? "End of chapter" : "End of track";
    if (track) {
      el.title.textContent = track.title;
      el.title.href = trackPageUrl(track.id);
      showCover(track);
    } else {
      el.title.textContent = "Nothing playing";
      el.sub.textContent = "Pick an album or a track";
    }
    renderPlayState();
    renderTime();
    highlightRows();
    mediaSessionMetadata();
  }

  function initials(title) {
    const words = (title || "").split(/\s+/).filter((word) => /^[\p{L}\p{N}]/u.test(word));
    return words.slice(0, 2).map((word) => word[0]).join("").toUpperCase() || "♪";
  }

  function renderSub(atS) {
    const track = state.track;
    if (!track) return;
    const list = track.chapters;
    const index = chapterIndexAt(atS);
    if (list.length > 1 && index >= 0) {
      el.sub.textContent = `Chapter ${index + 1} of ${list.length} · ${list[index].title}`;
    } else {
      el.sub.textContent = [track.artists.join(", "), track.album ? track.album.title : ""].filter(Boolean).join(" · ");
    }
  }

  let lastChapter = -2;
  function renderTime(forcedS = null) {
    const total = durationS();
    const at = forcedS === null ? position() : forcedS;
    if (!state.dragging) {
      el.seek.max = String(Math.max(1, Math.floor(total)));
      el.seek.value = String(Math.floor(at));
      el.elapsed.textContent = clock(at);
    }
    el.total.textContent = clock(total);
    el.seek.setAttribute("aria-valuetext", `${clock(at)} of ${clock(total)}`);
    el.bookmarkTime.textContent = clock(at);
    renderPageProgress(at);
    const chapter = chapterIndexAt(at);
    if (chapter !== lastChapter) {
      lastChapter = chapter;
      renderSub(at);
      for (const item of el.chapterList.querySelectorAll(".panel-item")) {
        item.setAttribute("aria-current", String(Number(item.dataset.index) === chapter));
      }
    }
  }

  function renderPlayState() {
    const isPlaying = playing();
    el.toggle.setAttribute("aria-label", isPlaying ? "Pause" : "Play");
    el.toggleIcon.setAttribute("href", isPlaying ? "#i-pause" : "#i-play");
    root.classList.toggle("is-playing", isPlaying);
    if ("mediaSession" in navigator) navigator.mediaSession.playbackState = isPlaying ? "playing" : "paused";
    renderPageProgress(position());
  }

  // The page's progress of the track the player has ([data-progress-of]) was rendered by the server from
  // the last save it had, which is up to PROGRESS_EVERY_MS behind while playing, and older still after a
  // reload (the page is rendered before the old one's last save is sent). The player's own position is
  // the freshest one there is: it replaces what the page says, and says where it is true.
  function renderPageProgress(atS) {
    const track = state.track;
    if (!track || !(state.attached || state.startAt > 0)) return;
    const holders = document.querySelectorAll(`[data-progress-of="${track.id}"]`);
    if (!holders.length) return;
    const total = durationS();
    const percent = total > 0 ? Math.min(100, Math.round((atS / total) * 100)) : 0;
    const here = state.attached || state.resumedFrom === state.device;
    const where = here ? "this device" : state.resumedFrom;
    for (const holder of holders) {
      holder.hidden = false;
      const bar = holder.querySelector("[data-progress-bar]");
      if (bar) {
        bar.value = percent;
        bar.textContent = `${percent} %`;
        bar.setAttribute("aria-label", `${percent} % listened`);
        bar.hidden = false;
      }
      const text = holder.querySelector("[data-progress-text]");
      if (!text) continue;
      if (text.hasAttribute("data-progress-note")) {
        text.textContent = `${playing() ? "Playing" : "Stopped"} at ${clock(atS)}${where ? ` on ${where}` : ""}`;
      } else {
        text.textContent = `${clock(atS)} of ${clock(total)}`;
      }
    }
  }

  function renderChapters() {
    lastChapter = -2;
    const items = chapters().map((chapter, index) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "panel-item";
      button.dataset.seekMs = String(chapter.start_ms);
      button.dataset.index = String(index);
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = `${index + 1}. ${chapter.title}`;
      const at = document.createElement("span");
      at.className = "at";
      at.textContent = clock(chapter.start_ms / 1000);
      button.append(label, at);
      li.append(button);
      return li;
    });
    el.chapterList.replaceChildren(...items);
    renderTime();
  }

  function renderQueue() {
    const items = state.queue.map((id, index) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "panel-item";
      button.dataset.queueIndex = String(index);
      button.setAttribute("aria-current", String(index === state.index));
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = `${index + 1}. ${state.titles.get(id) || `Track ${id}`}`;
      button.append(label);
      li.append(button);
      return li;
    });
    el.queueList.replaceChildren(...items);
    el.queueEmpty.hidden = items.length > 0;
    action("next").disabled = state.index + 1 >= state.queue.length;
  }

  // The rows of the page that show the current track.
  function highlightRows() {
    const id = state.track ? String(state.track.id) : null;
    for (const row of document.querySelectorAll("[data-track-row]")) {
      row.classList.toggle("is-current", row.dataset.trackRow === id);
    }
  }

  // The track's cover (its own, else its album's) in the player bar, over its dominant colour while it loads;
  // the coloured initials when it has none. Set through the DOM and CSSOM: the CSP forbids style="".
  function showCover(track) {
    const cover = track.cover;
    if (!cover) {
      el.tile.className = `tile tile-${(track.album ? track.album.id : track.id) % 8}`;
      el.tile.style.backgroundColor = "";
      el.tile.textContent = initials(track.title);
      return;
    }
    const image = document.createElement("img");
    image.className = "cover-image";
    image.alt = "";
    image.src = cover.webp["128"];
    image.srcset = `${cover.webp["64"]} 64w, ${cover.webp["128"]} 128w, ${cover.webp["300"]} 300w`;
    image.sizes = "52px";
    el.tile.className = "tile cover";
    el.tile.style.backgroundColor = cover.color;
    el.tile.replaceChildren(image);
  }

  function mediaSessionMetadata() {
    if (!("mediaSession" in navigator) || !window.MediaMetadata) return;
    const track = state.track;
    // Lock screens and media keys show the cover: every stored size, the platform picks.
    const artwork = track && track.cover
      ? ["128", "300", "600"].map((size) => ({ src: track.cover.webp[size], sizes: `${size}x${size}`, type: "image/webp" }))
      : [];
    navigator.mediaSession.metadata = track
      ? new MediaMetadata({ title: track.title, artist: track.artists.join(", "), album: track.album ? track.album.title : "", artwork })
      : null;
  }

  function setPanel(id) {
    for (const button of root.querySelectorAll("[data-panel]")) {
      const open = button.dataset.panel === id && button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", String(open));
      document.getElementById(button.dataset.panel).hidden = !open;
      if (open && id === "panel-bookmarks") refreshBookmarks();
      if (open && id === "panel-queue") fillQueueTitles();
    }
  }

  function closePanels() {
    for (const button of root.querySelectorAll('[data-panel][aria-expanded="true"]')) {
      button.setAttribute("aria-expanded", "false");
      document.getElementById(button.dataset.panel).hidden = true;
    }
  }

  // --- wiring ----------------------------------------------------------------------------------------

  audio.addEventListener("playing", () => {
    state.settled = true;
    setStatus("");
    if (state.resumePending) sync("playing");
    state.resumePending = false;
    state.basisMs = null;
    startProgressTimer();
    renderPlayState();
  });
  audio.addEventListener("play", renderPlayState);
  audio.addEventListener("pause", () => {
    renderPlayState();
    if (state.switching || audio.ended || !state.track) return;
    stopProgressTimer();
    state.basisMs = Date.now();
    state.resumePending = true;
    sync("paused");
  });
  audio.addEventListener("seeked", () => {
    if (state.attached) state.settled = true;
    renderTime();
  });
  audio.addEventListener("waiting", () => setStatus("Buffering…"));
  audio.addEventListener("timeupdate", () => {
    renderTime();
    if (state.sleep && state.sleep.kind === "chapter" && playing() && audio.currentTime >= state.sleep.endS - 0.25) sleepNow();
  });
  audio.addEventListener("durationchange", () => renderTime());
  audio.addEventListener("ended", () => {
    stopProgressTimer();
    if (state.sleep && state.sleep.kind === "chapter") {
      setSleep("");
      el.sleep.value = "";
    }
    sync("stopped", { positionS: durationS() });
    if (!next()) {
      closeSession();
      renderPlayState();
    }
  });
  audio.addEventListener("error", () => {
    if (state.attached && !state.hls && audio.error) reattach();
  });
  audio.addEventListener("volumechange", () => {
    el.volume.value = String(audio.volume);
    el.mute.setAttribute("aria-pressed", String(audio.muted));
    el.mute.setAttribute("aria-label", audio.muted ? "Unmute" : "Mute");
    el.volumeIcon.setAttribute("href", audio.muted || audio.volume === 0 ? "#i-muted" : "#i-volume");
    store("volume", String(audio.volume));
    store("muted", audio.muted ? "1" : "0");
  });

  root.addEventListener("click", (event) => {
    const target = event.target.closest("button");
    if (!target || !root.contains(target)) return;
    const name = target.dataset.action;
    if (target.dataset.panel) setPanel(target.dataset.panel);
    else if (target.dataset.seekMs) seekTo(Number(target.dataset.seekMs) / 1000);
    else if (target.dataset.queueIndex) {
      state.index = Number(target.dataset.queueIndex);
      saveQueueIndex();
      renderQueue();
      load(state.queue[state.index], { autoplay: true });
    } else if (target.dataset.deleteBookmark) {
      api("DELETE", `bookmarks/${target.dataset.deleteBookmark}`).then(refreshBookmarks);
    } else if (name === "toggle") toggle();
    else if (name === "back") skip(-BACK_S);
    else if (name === "forward") skip(FORWARD_S);
    else if (name === "previous") previous();
    else if (name === "next") next();
    else if (name === "chapter-previous") chapterPrevious();
    else if (name === "chapter-next") chapterNext();
    else if (name === "mute") audio.muted = !audio.muted;
    else if (name === "offer-jump") offerJump();
    else if (name === "offer-dismiss") offerDismiss();
    else if (name === "panel-close") closePanels();
    else if (name === "elsewhere-take" && state.elsewhere) {
      const trackId = state.elsewhere.track.id;
      playFrom([trackId], 0);
    } else if (name === "more") {
      const open = !root.classList.contains("show-extras");
      root.classList.toggle("show-extras", open);
      target.setAttribute("aria-expanded", String(open));
    }
  });

  el.seek.addEventListener("input", () => {
    state.dragging = true;
    el.elapsed.textContent = clock(Number(el.seek.value));
  });
  el.seek.addEventListener("change", () => {
    state.dragging = false;
    seekTo(Number(el.seek.value));
  });
  el.speed.addEventListener("change", () => {
    audio.defaultPlaybackRate = Number(el.speed.value);
    audio.playbackRate = Number(el.speed.value);
    store("speed", el.speed.value);
  });
  el.volume.addEventListener("input", () => {
    audio.volume = Number(el.volume.value);
    if (audio.volume > 0) audio.muted = false;
  });
  el.sleep.addEventListener("change", () => setSleep(el.sleep.value));
  el.quality.addEventListener("change", () => {
    store("quality", el.quality.value);
    // The next decision uses it; a source already playing keeps going.
  });
  el.bookmarkForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = el.bookmarkForm.elements.note;
    addBookmark(input.value.trim());
    input.value = "";
  });

  // Play buttons anywhere on the page (they come and go with page swaps, so listen on the document).
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-play]");
    if (!button || root.contains(button)) return;
    event.preventDefault();
    const id = Number(button.dataset.play);
    const startMs = button.dataset.startMs !== undefined ? Number(button.dataset.startMs) : null;
    const container = button.closest("[data-queue]");
    let ids = container ? container.dataset.queue.split(",").filter(Boolean).map(Number) : [id];
    if (!ids.includes(id)) ids = [id];
    // The current track again: resume it where it is, unless the button plays a list (an album, a playlist)
    // other than the queue it plays in. "Play album" on an album whose first track was restored from this
    // device's queue alone must queue the album, not just resume that track (which of the two it did
    // depended on whether the click came before the restore finished).
    const sameQueue = !container || (ids.length === state.queue.length && ids.every((each, at) => each === state.queue[at]));
    if (state.track && state.track.id === id && sameQueue) {
      if (startMs !== null) seekTo(startMs / 1000);
      if (!playing()) start();
      return;
    }
    for (const row of document.querySelectorAll("[data-track-row]")) {
      const title = row.querySelector(".track-title");
      if (title) state.titles.set(Number(row.dataset.trackRow), title.textContent.trim());
    }
    playFrom(ids, ids.indexOf(id), { startMs });
  });

  // Space plays and pauses, arrows skip: unless the keys belong to what has the focus.
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    if (event.key === "Escape") {
      closePanels();
      return;
    }
    const tag = target.tagName;
    if (target.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT") return;
    if (event.key === " ") {
      if (tag === "BUTTON" || tag === "A" || tag === "SUMMARY") return;
      event.preventDefault();
      toggle();
    } else if (event.key === "ArrowLeft" && state.track) {
      event.preventDefault();
      skip(-BACK_S);
    } else if (event.key === "ArrowRight" && state.track) {
      event.preventDefault();
      skip(FORWARD_S);
    }
  });

  // Stop here: the last position stored and the session ended, before returning.
  async function release() {
    if (state.track && playing()) audio.pause();
    await closeSession();
  }

  // Before signing out, while the session cookie still works.
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!form.matches("[data-sign-out]")) return;
    event.preventDefault();
    await release();
    form.submit();
  });

  // Leaving: the page may be gone before a normal request finishes, so keepalive requests.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") {
      if (playing()) sync("playing", { keepalive: true });
    } else {
      refreshSessions();
    }
  });
  // The last save goes out with keepalive: the position now if playing, and whatever normal request was
  // still waiting or on its way (the browser cancels those with the page; a copy that lands twice is
  // answered as a replay).
  window.addEventListener("pagehide", () => {
    state.leaving = true;
    const unsent = [state.inFlight, ...state.pending].filter(Boolean);
    state.pending = [];
    if (state.track && state.attached && playing() && !state.offer) {
      state.basisMs = Date.now();
      sync("paused", { keepalive: true });
      for (const update of unsent) if (update.trackId !== state.track.id) send(update, { keepalive: true });
    } else {
      for (const update of unsent) send(update, { keepalive: true });
    }
    closeSession({ keepalive: true });
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) state.leaving = false; // back from the back-forward cache
  });

  if ("mediaSession" in navigator) {
    const handlers = {
      play: () => start(),
      pause: () => audio.pause(),
      seekbackward: () => skip(-BACK_S),
      seekforward: () => skip(FORWARD_S),
      previoustrack: () => previous(),
      nexttrack: () => next(),
      seekto: (details) => seekTo(details.seekTime),
    };
    for (const [name, handler] of Object.entries(handlers)) {
      try {
        navigator.mediaSession.setActionHandler(name, handler);
      } catch {
        /* an action this browser does not know */
      }
    }
  }

  document.addEventListener("revenge:navigated", () => {
    highlightRows();
    renderPageProgress(position());
  });

  // Settings kept per browser.
  const speed = stored("speed");
  if (speed && el.speed.querySelector(`option[value="${speed}"]`)) el.speed.value = speed;
  const quality = stored("quality");
  if (quality && el.quality.querySelector(`option[value="${quality}"]`)) el.quality.value = quality;
  const volume = Number(stored("volume"));
  if (stored("volume") !== null && volume >= 0 && volume <= 1) audio.volume = volume;
  audio.muted = stored("muted") === "1";
  el.volume.value = String(audio.volume);

  setInterval(refreshSessions, SESSIONS_EVERY_MS);
  refreshSessions();
  restore();

  // For tests and the curious: the state of the player, read-only, and release() (what signing out does).
  window.revengePlayer = {
    release,
    get deviceId() { return state.device; },
    get trackId() { return state.track ? state.track.id : null; },
    get mode() { return state.mode; },
    get sessionId() { return state.sessionId; },
    get queue() { return state.queue.slice(); },
    get offer() { return state.offer; },
    get settled() { return state.attached && state.settled; },
  };
})();

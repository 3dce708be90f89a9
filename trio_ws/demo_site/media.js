// trio_ws demo: a video from ROOT, seeks mapped to byte ranges, a range prober
// (see the ids documented at the top of media.html).
"use strict";

(() => {
  const { loadConfig, ready, logLine, hex } = window.TrioDemo;
  const $ = (id) => document.getElementById(id);
  const video = $("media-video");
  const events = $("media-events");
  const rangeLog = $("range-log");
  /** Body bytes a probe reads before it stops (an open range on a big file would fetch it all). */
  const MAX_PROBE_READ = 1048576;
  /** Bytes probed at the offset a seek maps to. */
  const SEEK_PROBE = 1024;
  let totalSize = null;

  /** A same-origin URL for `path`, or null (the page only talks to this server). */
  function sameOrigin(path) {
    try {
      const url = new URL(path, location.href);
      return url.origin === location.origin ? url : null;
    } catch (error) {
      return null;
    }
  }

  function rangeHeader(start, end) {
    return "bytes=" + start + "-" + (end === "" || end === null ? "" : end);
  }

  function updateFetchLabel() {
    $("range-fetch").textContent = "Fetch " + rangeHeader($("range-start").value, $("range-end").value);
  }

  /** fetch() with a Range header; shows status, Content-Range and the first bytes. */
  async function probe(path, start, end, source) {
    const url = sameOrigin(path);
    const range = rangeHeader(start, end);
    if (!url) {
      logLine(rangeLog, "err", range + " " + path + ": not a URL on this server", { status: "", range, source });
      return null;
    }
    let response;
    try {
      response = await fetch(url, { headers: { Range: range }, cache: "no-store" });
    } catch (error) {
      logLine(rangeLog, "err", range + " " + url.pathname + ": " + error.message, { status: "", range, source });
      return null;
    }
    const contentRange = response.headers.get("content-range") || "";
    const contentLength = response.headers.get("content-length") || "";
    const head = new Uint8Array(32);
    let headUsed = 0, received = 0;
    const reader = response.body ? response.body.getReader() : null;
    while (reader && received < MAX_PROBE_READ) {
      const { done, value } = await reader.read();
      if (done) break;
      const take = Math.min(value.length, head.length - headUsed);
      head.set(value.subarray(0, take), headUsed);
      headUsed += take;
      received += value.length;
    }
    if (reader && received >= MAX_PROBE_READ) await reader.cancel();
    const status = response.status + " " + response.statusText;
    $("range-status").textContent = status;
    $("range-status").dataset.status = String(response.status);
    $("range-content-range").textContent = contentRange;
    $("range-content-length").textContent = contentLength;
    $("range-received").textContent = String(received) + (received >= MAX_PROBE_READ ? " (stopped reading)" : "");
    $("range-bytes").textContent = hex(head.subarray(0, headUsed), 32);
    const cls = response.status === 206 ? "in" : response.status >= 400 ? "err" : "out";
    logLine(rangeLog, cls, "Range: " + range + " " + url.pathname + " → " + status +
      (contentRange ? ", Content-Range: " + contentRange : "") + ", " + received + " bytes",
      { status: response.status, range, contentRange, source });
    const total = /\/(\d+)$/.exec(contentRange);
    if (total && url.pathname === (sameOrigin(video.getAttribute("src") || "") || {}).pathname) {
      totalSize = Number(total[1]);
      $("media-size").textContent = totalSize + " bytes";
      $("media-size").dataset.bytes = String(totalSize);
    }
    return response.status;
  }

  function loadVideo(path) {
    const url = sameOrigin(path);
    if (!url) {
      logLine(events, "err", path + ": not a URL on this server", { event: "error" });
      return;
    }
    totalSize = null;
    $("media-src").value = url.pathname + url.search;
    $("range-url").value = url.pathname + url.search;
    history.replaceState(null, "", "?src=" + encodeURIComponent(url.pathname + url.search));
    video.src = url.href;
    probe(url.href, 0, 0, "size");  // bytes=0-0 tells the total size in Content-Range
  }

  function note(config, src) {
    const el = $("media-note");
    el.dataset.root = String(Boolean(config.root));
    if (src) {
      el.textContent = "Playing " + src + ". Seek and watch the probes below.";
    } else if (config.root) {
      el.textContent = "Give a video in ROOT: type its path below, or open media.html?src=/your-video.mp4.";
    } else {
      el.textContent = "No ROOT directory is served, so there is no video to play: start the server with " +
        "`trio-ws serve ROOT --demo` and open /_demo/media.html?src=/your-video.mp4. " +
        "The range prober works on any file of this server, such as this demo's app.css.";
    }
  }

  for (const name of ["loadedmetadata", "seeking", "seeked", "error"]) {
    video.addEventListener(name, () => {
      const time = video.currentTime;
      const data = { event: name, time: time.toFixed(2) };
      let text = name + " at " + time.toFixed(2) + " s";
      if (name === "loadedmetadata") text += ", duration " + video.duration.toFixed(2) + " s";
      if (name === "error") text = "error: " + (video.error ? video.error.message || "code " + video.error.code : "?");
      if (name === "seeking" && totalSize && video.duration > 0) {
        // A rough map from time to bytes (exact only for constant bitrate); the
        // browser's own request starts near here, after reading the file's index.
        const offset = Math.min(totalSize - 1, Math.floor(totalSize * (time / video.duration)));
        data.offset = offset;
        text += " ≈ byte " + offset;
        probe(video.src, offset, Math.min(totalSize - 1, offset + SEEK_PROBE - 1), "seek");
      }
      logLine(events, name === "error" ? "err" : "info", text, data);
    });
  }

  for (const fraction of ["0", "25", "50", "75"]) {
    $("media-seek-" + fraction).addEventListener("click", (event) => {
      if (video.duration > 0) video.currentTime = video.duration * Number(event.target.dataset.fraction);
    });
  }

  if ("PerformanceObserver" in window) {
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if (!video.src || entry.name !== video.src || entry.initiatorType === "fetch") continue;
        logLine($("media-resources"), "info", entry.initiatorType + " " + entry.name + ": " +
          entry.transferSize + " bytes transferred in " + entry.duration.toFixed(1) + " ms",
          { bytes: entry.transferSize });
      }
    }).observe({ type: "resource", buffered: true });
  }

  $("range-start").addEventListener("input", updateFetchLabel);
  $("range-end").addEventListener("input", updateFetchLabel);
  $("range-form").addEventListener("submit", (event) => {
    event.preventDefault();
    probe($("range-url").value, $("range-start").value || "0", $("range-end").value, "form");
  });
  $("media-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if ($("media-src").value) loadVideo($("media-src").value);
  });

  const src = new URLSearchParams(location.search).get("src");
  $("range-url").value = "app.css";
  updateFetchLabel();
  loadConfig().then((config) => {
    note(config, src);
    if (src) loadVideo(src);
  }).catch((error) => { $("media-note").textContent = "could not load config.json: " + error.message; })
    .finally(ready);
})();

// trio_ws demo: helpers shared by every page (loaded before the page's own script).
"use strict";

window.TrioDemo = (() => {
  /** Lines kept in a log box; older ones are removed (the page must not grow forever). */
  const MAX_LOG_LINES = 500;

  /** The server's config.json: {echo, chat, root, max_message_size}. */
  async function loadConfig() {
    const response = await fetch("config.json", { cache: "no-store" });
    if (!response.ok) throw new Error("config.json: HTTP " + response.status);
    return response.json();
  }

  /** ws:// or wss:// URL of an absolute path on this server. */
  function wsUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  /** Append one line to a log box; `data` becomes data-* attributes (for tests and styling). */
  function logLine(box, cls, text, data = {}) {
    const line = document.createElement("div");
    line.className = "line " + cls;
    line.textContent = text;
    for (const [key, value] of Object.entries(data)) line.dataset[key] = String(value);
    box.appendChild(line);
    while (box.childElementCount > MAX_LOG_LINES) box.firstElementChild.remove();
    box.scrollTop = box.scrollHeight;
    return line;
  }

  /** Show a connection state: the text for people, data-state for styles and tests. */
  function setState(el, state, text) {
    el.dataset.state = state;
    el.textContent = text || state;
  }

  /** "00 ff 10 …" for the first `count` bytes. */
  function hex(bytes, count = 16) {
    const shown = Array.from(bytes.slice(0, count), (b) => b.toString(16).padStart(2, "0")).join(" ");
    return bytes.length > count ? shown + " …" : shown;
  }

  /** A human size: 512 B, 64 KiB, 1 MiB. */
  function size(n) {
    if (n >= 1048576 && n % 1048576 === 0) return n / 1048576 + " MiB";
    if (n >= 1024 && n % 1024 === 0) return n / 1024 + " KiB";
    return n + " B";
  }

  /** Text shortened for display, with its full length. */
  function preview(text, count = 80) {
    return text.length > count ? text.slice(0, count) + "… (" + text.length + " chars)" : text;
  }

  /** Mark the page ready (body[data-ready="true"]): config.json is loaded and applied, or failed. */
  function ready() {
    document.body.dataset.ready = "true";
  }

  /** "closed 1000" / "closed 1013 too slow: …" */
  function closedText(event) {
    return "closed " + event.code + (event.reason ? " " + event.reason : "");
  }

  return { MAX_LOG_LINES, loadConfig, ready, wsUrl, logLine, setState, hex, size, preview, closedText };
})();

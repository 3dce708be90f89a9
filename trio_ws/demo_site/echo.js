// trio_ws demo: the echo console (see the ids documented at the top of echo.html).
"use strict";

(() => {
  const { loadConfig, ready, wsUrl, logLine, setState, hex, size, preview, closedText } = window.TrioDemo;
  const $ = (id) => document.getElementById(id);
  const log = $("echo-log");
  const state = $("echo-state");

  let ws = null;
  let url = "";
  // Echoes come back in order, so the pending sends form a FIFO queue.
  const pending = [];
  let sent = 0, received = 0, rttTotal = 0;

  /** The payload for the chosen type and size: {data, kind, bytes}. */
  function makePayload(serial) {
    const kind = $("echo-kind").value;
    const sizeChoice = $("echo-size").value;
    if (sizeChoice === "typed") {
      const text = $("echo-text").value;
      if (kind === "text") return { data: text, kind, bytes: new TextEncoder().encode(text).length };
      const data = new TextEncoder().encode(text);
      return { data, kind, bytes: data.length };
    }
    const n = Number(sizeChoice);
    if (kind === "text") {
      // ASCII, so n characters are n bytes; the serial makes each message distinct.
      const unit = "#" + serial + " abcdefghijklmnopqrstuvwxyz0123456789 ";
      const text = unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
      return { data: text, kind, bytes: n };
    }
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = (i + serial) & 0xff;
    return { data, kind, bytes: n };
  }

  function same(a, b) {
    if (typeof a === "string" || typeof b === "string") return a === b;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  function describe(data) {
    return typeof data === "string" ? "text " + preview(data) : "binary (" + data.length + " bytes): " + hex(data);
  }

  function setOpen(open) {
    $("echo-send").disabled = !open;
    $("echo-close").disabled = !open;
    $("echo-connect").disabled = open || !url;
  }

  function connect() {
    setState(state, "connecting", "connecting");
    pending.length = 0;
    ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      setState(state, "open", "open");
      setOpen(true);
      logLine(log, "info", "connected to " + url, { dir: "info" });
    };
    ws.onmessage = (event) => {
      const now = performance.now();
      const data = typeof event.data === "string" ? event.data : new Uint8Array(event.data);
      const kind = typeof data === "string" ? "text" : "binary";
      const bytes = typeof data === "string" ? new TextEncoder().encode(data).length : data.length;
      const sentItem = pending.shift();
      const rtt = sentItem ? now - sentItem.at : NaN;
      const ok = Boolean(sentItem) && sentItem.kind === kind && same(sentItem.data, data);
      received += 1;
      $("echo-received").textContent = String(received);
      if (sentItem) {
        rttTotal += rtt;
        $("echo-rtt").textContent = rtt.toFixed(1);
        $("echo-rtt-mean").textContent = (rttTotal / received).toFixed(1);
      }
      logLine(log, "in", "← " + describe(data) + "  " + rtt.toFixed(1) + " ms" + (ok ? "" : "  MISMATCH"), {
        dir: "in", kind, bytes, rtt: rtt.toFixed(1), ok,
      });
    };
    ws.onerror = () => logLine(log, "err", "WebSocket error", { dir: "err" });
    ws.onclose = (event) => {
      setState(state, "closed", closedText(event));
      setOpen(false);
      logLine(log, "info", closedText(event), { dir: "info", code: event.code });
    };
  }

  function send(event) {
    event.preventDefault();
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const repeat = Number($("echo-repeat").value);
    for (let i = 0; i < repeat; i++) {
      const payload = makePayload(sent);
      pending.push({ at: performance.now(), data: payload.data, kind: payload.kind });
      ws.send(payload.data);
      sent += 1;
      logLine(log, "out", "→ " + describe(payload.data), { dir: "out", kind: payload.kind, bytes: payload.bytes });
    }
    $("echo-sent").textContent = String(sent);
  }

  $("echo-form").addEventListener("submit", send);
  $("echo-close").addEventListener("click", () => ws && ws.close(1000, "bye"));
  $("echo-connect").addEventListener("click", connect);
  $("echo-clear").addEventListener("click", () => log.replaceChildren());

  loadConfig().then((config) => {
    if (!config.echo) {
      setState(state, "unavailable", "unavailable: start the server with --echo /ws");
      $("echo-url").textContent = "(not mounted)";
      return;
    }
    const limit = config.max_message_size;
    for (const option of $("echo-size").options) {
      if (option.value !== "typed" && limit && Number(option.value) > limit) {
        option.disabled = true;
        option.textContent += " (over the server's " + size(limit) + " limit)";
      }
    }
    url = wsUrl(config.echo);
    $("echo-url").textContent = url;
    connect();
  }).catch((error) => setState(state, "error", "could not load config.json: " + error.message)).finally(ready);
})();

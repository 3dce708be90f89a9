// trio_ws demo: the chat room (see the ids documented at the top of chat.html).
"use strict";

(() => {
  const { loadConfig, ready, wsUrl, logLine, setState, hex, preview, closedText } = window.TrioDemo;
  const $ = (id) => document.getElementById(id);
  const log = $("chat-log");
  const state = $("chat-state");
  // Identifies this tab's own messages when they come back from the room.
  const tabId = Math.random().toString(36).slice(2, 10);
  let ws = null;
  let url = "";
  let count = 0;

  $("chat-name").value = "guest-" + tabId.slice(0, 4);

  function show(event) {
    count += 1;
    $("chat-count").textContent = String(count);
    if (typeof event.data !== "string") {
      const bytes = new Uint8Array(event.data);
      logLine(log, "in", "(binary, " + bytes.length + " bytes) " + hex(bytes), { dir: "raw", kind: "binary" });
      return;
    }
    let message = null;
    try {
      message = JSON.parse(event.data);
    } catch (error) {
      message = null;
    }
    if (message && typeof message.name === "string" && typeof message.text === "string") {
      const self = message.from === tabId;
      logLine(log, self ? "out" : "in", message.name + ": " + message.text, {
        dir: "in", name: message.name, text: message.text, self,
      });
    } else {
      logLine(log, "in", "(raw) " + preview(event.data), { dir: "raw", kind: "text" });
    }
  }

  function setOpen(open) {
    $("chat-send").disabled = !open;
    $("chat-connect").disabled = open || !url;
  }

  function connect() {
    setState(state, "connecting", "connecting");
    ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      setState(state, "open", "open");
      setOpen(true);
      logLine(log, "info", "joined " + url, { dir: "info" });
    };
    ws.onmessage = show;
    ws.onerror = () => logLine(log, "err", "WebSocket error", { dir: "err" });
    ws.onclose = (event) => {
      setState(state, "closed", closedText(event));
      setOpen(false);
      logLine(log, "info", closedText(event), { dir: "info", code: event.code });
    };
  }

  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("chat-text").value;
    if (!ws || ws.readyState !== WebSocket.OPEN || !text) return;
    const name = $("chat-name").value.trim() || "anonymous";
    ws.send(JSON.stringify({ name, text, from: tabId }));
    $("chat-text").value = "";
    $("chat-text").focus();
  });
  $("chat-connect").addEventListener("click", connect);

  loadConfig().then((config) => {
    if (!config.chat) {
      setState(state, "unavailable", "unavailable: start the server with --chat /chat");
      $("chat-url").textContent = "(not mounted)";
      return;
    }
    url = wsUrl(config.chat);
    $("chat-url").textContent = url;
    connect();
  }).catch((error) => setState(state, "error", "could not load config.json: " + error.message)).finally(ready);
})();

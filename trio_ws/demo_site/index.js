// trio_ws demo: the start page fills in what this server mounts (from config.json).
"use strict";

(async () => {
  const { loadConfig, ready, wsUrl } = window.TrioDemo;
  const show = (id, path) => {
    const el = document.getElementById(id);
    el.dataset.available = String(Boolean(path));
    el.textContent = path ? wsUrl(path) : "not mounted";
  };
  try {
    const config = await loadConfig();
    show("endpoint-echo", config.echo);
    show("endpoint-chat", config.chat);
    const root = document.getElementById("root-status");
    root.dataset.root = String(Boolean(config.root));
    root.textContent = config.root ? "served at /" : "none (start with trio-ws serve ROOT --demo)";
  } catch (error) {
    document.getElementById("root-status").textContent = "could not load config.json: " + error.message;
  }
  ready();
})();

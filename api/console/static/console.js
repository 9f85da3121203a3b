// streamdesk console: swap each page's live part in from its server-sent event stream. No other script runs.
"use strict";
(function () {
  const main = document.getElementById("page");
  const state = document.getElementById("live-state");
  if (!main || !main.dataset.live || !window.EventSource) return;
  const source = new EventSource(main.dataset.live);
  const say = (text) => { if (state) state.textContent = text; };
  source.onopen = () => say("live");
  source.onmessage = (event) => {
    if (document.activeElement && main.contains(document.activeElement) &&
        document.activeElement.tagName === "SELECT") return;  // never pull a list from under a person's hand
    main.innerHTML = event.data;
    say("live · updated " + new Date().toLocaleTimeString());
  };
  source.addEventListener("ended", () => { source.close(); say("signed out: reload to sign in"); });
  source.onerror = () => say("reconnecting…");
})();

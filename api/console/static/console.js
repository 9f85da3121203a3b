// streamdesk console: bring each page's live part up to date from its server-sent event stream. No other script.
// Only what changed is replaced (a small morph), so a button or a list under a person's pointer stays put
// unless its own state changed.
"use strict";
(function () {
  const main = document.getElementById("page");
  const state = document.getElementById("live-state");
  if (!main || !main.dataset.live || !window.EventSource) return;
  const say = (text) => { if (state) state.textContent = text; };

  function sameAttributes(a, b) {
    if (a.attributes.length !== b.attributes.length) return false;
    for (const attr of a.attributes) if (b.getAttribute(attr.name) !== attr.value) return false;
    return true;
  }

  function morph(old, fresh) {
    if (old.isEqualNode(fresh)) return;
    if (old.nodeType === Node.TEXT_NODE && fresh.nodeType === Node.TEXT_NODE) {
      old.textContent = fresh.textContent;
      return;
    }
    if (old.nodeType !== Node.ELEMENT_NODE || fresh.nodeType !== Node.ELEMENT_NODE ||
        old.tagName !== fresh.tagName || !sameAttributes(old, fresh) ||
        old.childNodes.length !== fresh.childNodes.length || old.tagName === "svg") {
      old.replaceWith(fresh);
      return;
    }
    const freshChildren = Array.from(fresh.childNodes);
    Array.from(old.childNodes).forEach((child, i) => morph(child, freshChildren[i]));
  }

  const source = new EventSource(main.dataset.live);
  source.onopen = () => say("live");
  source.onmessage = (event) => {
    if (document.activeElement && main.contains(document.activeElement) &&
        document.activeElement.tagName === "SELECT") return;  // never pull a list from under a person's hand
    const next = document.createElement("main");
    next.innerHTML = event.data;
    if (next.childNodes.length === main.childNodes.length) {
      const fresh = Array.from(next.childNodes);
      Array.from(main.childNodes).forEach((child, i) => morph(child, fresh[i]));
    } else {
      main.replaceChildren(...next.childNodes);
    }
    say("live · updated " + new Date().toLocaleTimeString());
  };
  source.addEventListener("ended", () => { source.close(); say("signed out: reload to sign in"); });
  source.onerror = () => say("reconnecting…");
})();

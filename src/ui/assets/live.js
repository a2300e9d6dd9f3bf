// backstop dashboard: live refresh. The pages work without it; with it, a page whose <main>
// says data-live polls /v1/status every 2 s (every page of it, following "next") and, when
// anything changed (or an observation is running, so its time left moves), fetches the page
// again and swaps its <main>.
"use strict";
(function () {
  const main = document.querySelector("main[data-live]");
  const badge = document.getElementById("live");
  if (!main || !window.fetch || !window.DOMParser) return;
  let last = null;
  const say = (text, stale) => {
    if (!badge) return;
    badge.textContent = text;
    badge.classList.toggle("stale", stale);
  };
  // The status of every watch, its pages joined: a change to any of them shows.
  async function status() {
    let text = "";
    let after = null;
    for (;;) {
      const query = after === null ? "" : "&after=" + encodeURIComponent(after);
      const r = await fetch("/v1/status?limit=5000" + query, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!r.ok) throw new Error("status " + r.status);
      const page = await r.text();
      text += page;
      const next = JSON.parse(page).next;
      if (typeof next !== "string" || next === after) return text;
      after = next;
    }
  }
  async function tick() {
    try {
      const text = await status();
      const busy = text.includes("\"observing\"") || text.includes("\"rolling_back\"");
      if (last !== null && (text !== last || busy)) {
        const page = await fetch(location.href, { headers: { Accept: "text/html" }, cache: "no-store" });
        if (page.ok) {
          const doc = new DOMParser().parseFromString(await page.text(), "text/html");
          const fresh = doc.querySelector("main");
          if (fresh) {
            main.replaceChildren(...Array.from(fresh.childNodes, (n) => document.importNode(n, true)));
            if (!fresh.hasAttribute("data-live")) {
              say("final: no more updates", false);
              return;
            }
          }
        }
      }
      last = text;
      say("live, updated " + new Date().toLocaleTimeString(), false);
    } catch (e) {
      say("not updating: " + e.message, true);
    }
    setTimeout(tick, 2000);
  }
  tick();
})();

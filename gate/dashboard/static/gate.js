// Progressive enhancement: live progress of running runs. Pages read fine without it.
(function () {
  const bars = document.querySelectorAll("[data-run-progress]");
  if (!bars.length) return;
  async function refresh() {
    for (const el of bars) {
      const id = el.dataset.runProgress;
      try {
        const response = await fetch(`/api/v1/runs/${id}`, { credentials: "same-origin" });
        if (!response.ok) continue;
        const run = await response.json();
        if (run.status !== "running") { location.reload(); return; }
        // a shard answered: the running-estimate chart is drawn by the server, so the page is fetched again
        const page = document.querySelector(`[data-estimate-run="${id}"]`);
        const points = run.estimate ? run.estimate.points.length : 0;
        if (page && points !== Number(page.dataset.estimatePoints)) { location.reload(); return; }
        const { done, total } = run.progress;
        const bar = el.querySelector("progress");
        if (total) { bar.max = total; bar.value = done || 0; }
        el.querySelector(".count").textContent = `${done ?? "…"} / ${total ?? "…"}`;
      } catch (e) { /* the server is restarting: try again at the next tick */ }
    }
  }
  setInterval(refresh, 2000);
})();

// equilibria run report: builds the page from the JSON in <script id="report-data">.
// Every piece of run data (configs, metric names, tables, model output) enters the page through
// textContent or uPlot's canvas, never as HTML, so a replay holding "<script>" shows as text.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const root = document.getElementById("report");
  const SVG_NS = "http://www.w3.org/2000/svg";
  const SVG_KEEP = new Set(["g", "rect", "circle", "ellipse", "line", "polyline", "polygon", "path", "text", "tspan",
                            "title", "desc", "animate", "animateTransform", "animateMotion", "set", "defs"]);
  const PROGRESS = ["env_steps", "iteration", "generation", "queries", "step", "steps", "episode", "updates"];
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                   "#bcbd22", "#17becf"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c) node.appendChild(c);
    return node;
  }

  function fmt(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(5);
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function table(header, rows) {
    const t = el("table");
    const head = el("tr");
    header.forEach((h) => head.appendChild(el("th", { text: h })));
    t.appendChild(el("thead", {}, head));
    const body = el("tbody");
    rows.forEach((r) => {
      const tr = el("tr");
      r.forEach((c) => tr.appendChild(el("td", { text: fmt(c) })));
      body.appendChild(tr);
    });
    t.appendChild(body);
    return t;
  }

  function details(title, content, open) {
    const d = el("details", open ? { open: "" } : {}, el("summary", { text: title }), content);
    return d;
  }

  // One interactive chart: x shared, one series per (label, values); drag to zoom, double-click
  // to reset, hover for values, click a legend entry to hide or show its series.
  function chart(title, xLabel, xs, series) {
    const box = el("div", { class: "chart" });
    const opts = {
      title: title,
      width: Math.min(900, Math.max(420, root.clientWidth - 40)),
      height: 280,
      scales: { x: { time: false } },
      axes: [{ label: xLabel }, {}],
      series: [{ label: xLabel }].concat(series.map((s, i) => ({
        label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true,
        points: { show: xs.length < 60 },
      }))),
    };
    const payload = [xs].concat(series.map((s) => s.values));
    box.chart = new uPlot(opts, payload, box);
    return box;
  }

  function curved(run) {
    const m = run.metrics;
    return !!m && PROGRESS.includes(m.columns[0]) && column(m, m.columns[0]).filter((x) => x !== null).length >= 2;
  }

  function numericColumns(metrics) {
    return metrics.columns.filter((c, i) => i > 0 && !/_ci95$/.test(c) &&
      metrics.rows.some((r) => typeof r[i] === "number"));
  }

  function column(metrics, name) {
    const i = metrics.columns.indexOf(name);
    return metrics.rows.map((r) => (typeof r[i] === "number" ? r[i] : null));
  }

  function runSection(run, index) {
    const sec = el("section", { class: "run", id: "run-" + index });
    sec.appendChild(el("h2", { text: run.name + " (" + run.kind + ")" }));
    sec.appendChild(el("p", { class: "meta", text: run.dir + (run.game ? " · game: " + run.game : "") }));
    const summary = Object.entries(run.summary || {});
    if (summary.length) sec.appendChild(table(["metric", "value"], summary));
    (Array.isArray(run.alarms) ? run.alarms : []).forEach((a) =>
      sec.appendChild(el("p", { class: "alarm", text: "alarm: " + fmt(a) })));
    if (run.metrics && run.metrics.rows.length) {
      const m = run.metrics;
      const xs = column(m, m.columns[0]);
      // curves only over a progress column (steps, iterations, generations); a table of results
      // by game and policy, or a ranking, is shown as a table
      const curves = curved(run);
      if (curves) {
        const charts = el("div", { class: "charts" });
        numericColumns(m).forEach((c) => charts.appendChild(chart(c, m.columns[0], xs, [{ label: c, values: column(m, c) }])));
        sec.appendChild(charts);
      }
      sec.appendChild(details("metrics.csv (" + m.rows.length + " rows)", table(m.columns, m.rows), !curves));
    }
    if (run.payoff) sec.appendChild(heatmap(run.payoff));
    (run.tables || []).forEach((t) => sec.appendChild(details(t.title, table(t.header, t.rows), true)));
    (run.images || []).forEach((im) => {
      const img = el("img", { alt: im.name, src: "data:image/png;base64," + im.png });
      sec.appendChild(details(im.name, img, false));
    });
    (run.animations || []).forEach((a) => sec.appendChild(details(a.name, animation(a.svg), true)));
    if (run.replay_count) sec.appendChild(replaySection(run));
    sec.appendChild(details("config.yaml", el("pre", { text: run.config }), false));
    return sec;
  }

  // A tournament's payoff matrix (rows and columns in ranking order) as coloured cells, blue
  // above zero and red below, with the meta-Nash weight of every entry; hover shows the pair.
  function heatmap(p) {
    const vals = [].concat(...p.payoff).filter((v) => v !== null);
    const scale = Math.max(1e-12, ...vals.map(Math.abs));
    const t = el("table", { class: "heatmap" });
    const head = el("tr", {}, el("th", { text: "row vs column" }));
    p.entries.forEach((e) => head.appendChild(el("th", { text: e })));
    head.appendChild(el("th", { text: "meta-Nash weight" }));
    t.appendChild(el("thead", {}, head));
    const body = el("tbody");
    p.entries.forEach((row, i) => {
      const tr = el("tr", {}, el("th", { text: row }));
      p.payoff[i].forEach((v, j) => {
        const td = el("td", { text: v === null ? "–" : v.toFixed(3),
                              title: row + " vs " + p.entries[j] + ": " + (v === null ? "never played" : v) });
        if (v !== null) {
          const a = Math.min(1, Math.abs(v) / scale) * 0.75;
          td.style.background = v >= 0 ? "rgba(31,119,180," + a + ")" : "rgba(214,39,40," + a + ")";
        }
        tr.appendChild(td);
      });
      const w = p.meta_nash[i];
      const bar = el("td", { class: "weight", text: w.toFixed(3) });
      bar.style.background = "linear-gradient(90deg, rgba(44,160,44,0.45) " + (100 * w) + "%, transparent 0)";
      tr.appendChild(bar);
      body.appendChild(tr);
    });
    t.appendChild(body);
    return details("payoff heatmap (" + p.label + ")", t, true);
  }

  // An episode animation (an SMIL SVG written by the run, e.g. games/mapf_render.py) with
  // play/pause and a step slider. It is parsed as SVG, never as HTML, and scripts and event
  // attributes are dropped before it joins the page.
  function animation(text) {
    const box = el("div", { class: "animation" });
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const svg = doc.documentElement;
    if (svg.namespaceURI !== SVG_NS || svg.localName !== "svg" || doc.querySelector("parsererror")) {
      box.appendChild(el("p", { class: "alarm", text: "not an SVG animation" }));
      return box;
    }
    // keep drawing and animation only: elements outside the SVG namespace (an XHTML meta refresh,
    // base, iframe), scripts, styles, links and references go; so do event and link attributes
    svg.querySelectorAll("*").forEach((n) => {
      if (n.namespaceURI !== SVG_NS || !SVG_KEEP.has(n.localName)) { n.remove(); return; }
      Array.from(n.attributes).forEach((a) => {
        if (/^on/i.test(a.localName) || /href$/i.test(a.localName) || a.localName === "style" ||
            (n.localName.startsWith("animate") || n.localName === "set") && a.localName === "attributeName" &&
            !/^(x|y|cx|cy|r|width|height|fill|stroke|opacity|fill-opacity|points|d|transform)$/.test(a.value)) {
          n.removeAttribute(a.name);
        }
      });
    });
    const live = document.importNode(svg, true);
    const first = svg.querySelector("animate");
    const seconds = first ? parseFloat(first.getAttribute("dur")) || 0 : 0;
    const perStep = 0.25;  // mapf_render.SECONDS_PER_STEP
    const steps = Math.round(seconds / perStep);
    const play = el("button", { type: "button", text: "pause" });
    const slider = el("input", { type: "range", min: "0", max: String(steps), value: "0", step: "1" });
    const label = el("span", { class: "meta", text: " step 0 / " + steps });
    let playing = true;
    play.addEventListener("click", () => {
      playing = !playing;
      if (playing) live.unpauseAnimations(); else live.pauseAnimations();
      play.textContent = playing ? "pause" : "play";
    });
    slider.addEventListener("input", () => {
      playing = false;
      live.pauseAnimations();
      play.textContent = "play";
      live.setCurrentTime(Number(slider.value) * perStep);
      label.textContent = " step " + slider.value + " / " + steps;
    });
    setInterval(() => {
      if (!playing || !steps) return;
      const k = Math.floor((live.getCurrentTime() % seconds) / perStep);
      slider.value = String(k);
      label.textContent = " step " + k + " / " + steps;
    }, 250);
    box.appendChild(el("div", { class: "controls" }, play, slider, label));
    box.appendChild(live);
    return box;
  }

  // A decision's attempts as the engine records them: the prompt, the raw answer, why it was
  // refused, the option log-probabilities (highest first); anything else as JSON.
  function attempts(list) {
    const box = el("div", { class: "attempts" });
    (Array.isArray(list) ? list : []).forEach((a, i) => {
      box.appendChild(el("p", { class: "meta", text: "attempt " + (i + 1) }));
      if (a.prompt !== undefined) box.appendChild(details("prompt", el("pre", { text: String(a.prompt) }), false));
      if (a.raw !== undefined) box.appendChild(el("pre", { text: "answer: " + fmt(a.raw) }));
      if (a.error !== undefined) box.appendChild(el("p", { class: "alarm", text: "refused: " + fmt(a.error) }));
      if (a.option_logprobs) {
        const rows = Object.entries(a.option_logprobs).sort((x, y) => y[1] - x[1]);
        box.appendChild(table(["option", "log-probability"], rows));
      }
      const rest = Object.fromEntries(Object.entries(a).filter(([k]) => !["prompt", "raw", "error", "option_logprobs"].includes(k)));
      if (Object.keys(rest).length) box.appendChild(el("pre", { text: JSON.stringify(rest, null, 1) }));
    });
    return box;
  }

  // Replays: pick one; its transcript hides the players' roles until asked; every decision
  // lists its attempts (prompt, raw answer, errors, option log-probabilities) as recorded.
  function replaySection(run) {
    const box = el("div", { class: "replays" });
    const shown = run.replays.length;
    box.appendChild(el("h3", { text: "Replays (" + (run.lazy || shown === run.replay_count ? run.replay_count :
      shown + " of " + run.replay_count + ", sampled evenly; equilibria report --serve shows every one") + ")" }));
    const pick = el("select", { class: "replay-pick" });
    run.replays.forEach((r, i) => pick.appendChild(el("option", { value: String(i), text: r.name })));
    const view = el("div", { class: "replay-view" });
    box.appendChild(pick);
    box.appendChild(view);
    const show = (r) => {
      view.replaceChildren();
      if (r.error) { view.appendChild(el("p", { class: "alarm", text: r.error })); return; }
      view.appendChild(el("p", { class: "meta", text: r.game + " · seed " + r.seed + " · outcome " + fmt(r.outcome) }));
      const hasRoles = r.players.some((p) => p.role !== undefined);
      const cols = Object.keys(r.players[0] || {}).filter((k) => k !== "role");
      const players = table(cols, r.players.map((p) => cols.map((k) => p[k])));
      const transcript = el("pre", { class: "transcript", text: r.transcript_hidden.join("\n") });
      view.appendChild(players);
      // the decisions give the roles away (each one's phase, role and prompt), so with hidden
      // roles they appear only once the roles are revealed
      const decisionsSlot = el("p", { class: "meta", text: r.turns.length + " decisions, listed once the roles " +
        "are revealed (each one's phase and prompt name its player's role)" });
      if (hasRoles) {
        const reveal = el("button", { class: "reveal", type: "button", text: "reveal roles" });
        reveal.addEventListener("click", () => {
          players.replaceWith(table(cols.concat(["role"]), r.players.map((p) => cols.map((k) => p[k]).concat([p.role]))));
          transcript.textContent = r.transcript.join("\n");
          decisionsSlot.replaceWith(decisionsOf(r));
          reveal.remove();
        });
        view.appendChild(reveal);
      }
      view.appendChild(transcript);
      view.appendChild(hasRoles ? decisionsSlot : decisionsOf(r));
    };
    const decisionsOf = (r) => {
      const turns = el("div");
      r.turns.forEach((t, i) => {
        const head = "#" + i + " round " + fmt(t.round) + " " + fmt(t.phase) + " · seat " + t.seat + " (" + t.agent +
          ") → " + fmt(t.action) + (t.fallback ? "  [fallback]" : "");
        const d = details(head, attempts(t.attempts), false);
        if (t.fallback) d.classList.add("fallback");
        turns.appendChild(d);
      });
      return details("decisions (" + r.turns.length + ")", turns, false);
    };
    let picked = 0;  // a slow answer for an earlier pick must not replace the current one
    pick.addEventListener("change", () => {
      const r = run.replays[Number(pick.value)];
      if (!run.lazy) { show(r); return; }
      const mine = ++picked;
      view.replaceChildren(el("p", { class: "meta", text: "loading " + r.name + " …" }));
      fetch("/replay/" + encodeURIComponent(r.name)).then((res) => res.json())
        .then((full) => { if (mine === picked) show(full); })
        .catch((e) => { if (mine === picked) view.replaceChildren(el("p", { class: "alarm", text: String(e) })); });
    });
    if (run.replays.length) pick.dispatchEvent(new Event("change"));
    return box;
  }

  function comparison(runs) {
    const sec = el("section", { class: "run", id: "comparison" });
    sec.appendChild(el("h2", { text: "Comparison of " + runs.length + " runs" }));
    const keys = [];
    runs.forEach((r) => Object.keys(r.summary || {}).forEach((k) => { if (!keys.includes(k)) keys.push(k); }));
    sec.appendChild(table(["metric"].concat(runs.map((r) => r.name)),
                          keys.map((k) => [k].concat(runs.map((r) => (r.summary || {})[k])))));
    const names = [];
    runs.filter(curved).forEach((r) => numericColumns(r.metrics).forEach((c) => { if (!names.includes(c)) names.push(c); }));
    const charts = el("div", { class: "charts" });
    names.forEach((c) => {
      const xLabel = runs.filter((r) => curved(r) && r.metrics.columns.includes(c)).map((r) => r.metrics.columns[0])[0];
      // overlay only runs that share the progress column (steps with steps, iterations with iterations)
      const having = runs.filter((r) => curved(r) && r.metrics.columns.includes(c) && r.metrics.columns[0] === xLabel);
      if (having.length < 2) return;
      // the union of the runs' x values, each run's series null where it has no row
      const xs = Array.from(new Set([].concat(...having.map((r) => column(r.metrics, r.metrics.columns[0])))))
        .filter((x) => x !== null).sort((a, b) => a - b);
      const series = having.map((r) => {
        const own = new Map();
        const rx = column(r.metrics, r.metrics.columns[0]);
        const ry = column(r.metrics, c);
        rx.forEach((x, i) => own.set(x, ry[i]));
        return { label: r.name, values: xs.map((x) => (own.has(x) ? own.get(x) : null)) };
      });
      charts.appendChild(chart(c, xLabel, xs, series));
    });
    sec.appendChild(charts);
    return sec;
  }

  document.title = data.title;
  root.appendChild(el("h1", { text: data.title }));
  root.appendChild(el("p", { class: "meta", text: "equilibria " + data.version + " · generated " + data.generated }));
  if (data.runs.length > 1) root.appendChild(comparison(data.runs));
  data.runs.forEach((r, i) => root.appendChild(runSection(r, i)));
  document.body.setAttribute("data-rendered", "1");
})();

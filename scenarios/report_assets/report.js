// equilibria run report: builds the page from the JSON in <script id="report-data">.
// Every piece of run data (configs, metric names, tables, model output) enters the page through
// textContent or uPlot's canvas, never as HTML, so a replay holding "<script>" shows as text.
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const root = document.getElementById("report");
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
    (run.alarms || []).forEach((a) => sec.appendChild(el("p", { class: "alarm", text: "alarm: " + a })));
    if (run.metrics && run.metrics.rows.length) {
      const m = run.metrics;
      const xs = column(m, m.columns[0]);
      const charts = el("div", { class: "charts" });
      numericColumns(m).forEach((c) => charts.appendChild(chart(c, m.columns[0], xs, [{ label: c, values: column(m, c) }])));
      sec.appendChild(charts);
      sec.appendChild(details("metrics.csv (" + m.rows.length + " rows)", table(m.columns, m.rows), false));
    }
    (run.tables || []).forEach((t) => sec.appendChild(details(t.title, table(t.header, t.rows), true)));
    (run.images || []).forEach((im) => {
      const img = el("img", { alt: im.name, src: "data:image/png;base64," + im.png });
      sec.appendChild(details(im.name, img, false));
    });
    sec.appendChild(details("config.yaml", el("pre", { text: run.config }), false));
    return sec;
  }

  function comparison(runs) {
    const sec = el("section", { class: "run", id: "comparison" });
    sec.appendChild(el("h2", { text: "Comparison of " + runs.length + " runs" }));
    const keys = [];
    runs.forEach((r) => Object.keys(r.summary || {}).forEach((k) => { if (!keys.includes(k)) keys.push(k); }));
    sec.appendChild(table(["metric"].concat(runs.map((r) => r.name)),
                          keys.map((k) => [k].concat(runs.map((r) => (r.summary || {})[k])))));
    const names = [];
    runs.forEach((r) => r.metrics && numericColumns(r.metrics).forEach((c) => { if (!names.includes(c)) names.push(c); }));
    const charts = el("div", { class: "charts" });
    names.forEach((c) => {
      const having = runs.filter((r) => r.metrics && r.metrics.columns.includes(c));
      if (having.length < 2) return;
      const xLabel = having[0].metrics.columns[0];
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

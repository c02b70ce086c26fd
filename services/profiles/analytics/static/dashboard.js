// The analytics dashboard: fetches /v1/analytics/* and draws tables and ECharts charts.
// `window.dashboard` exposes the last API answers and the charts, for people and for tests.
"use strict";

const LABELS = window.DASHBOARD_LABELS;
const MODELS = ["first_touch", "last_touch", "linear", "time_decay", "position_based",
  "markov_chain", "shapley"];
const COLUMNS = [
  ["touchpoint", "text"], ["channel", "text"], ["phase", "text"], ["customers", "int"],
  ["events", "int"], ["conversions", "int"], ["conversion_rate", "pct"], ["revenue", "money"],
  ["attributed_revenue", "money"], ["average_rating", "dec"], ["cost", "money"], ["roi", "dec"],
];
const state = {
  lang: localStorage.getItem("dashboard.lang") || "en",
  data: {}, charts: {}, sort: { column: "events", descending: true }, channels: new Set(),
  loads: 0, ready: false, errors: [],
};
window.dashboard = state;

const $ = (id) => document.getElementById(id);
const t = (key) => (LABELS[state.lang] && LABELS[state.lang][key]) || key;
const locale = () => (state.lang === "vi" ? "vi-VN" : "en-US");

function formatValue(value, kind) {
  if (value === null || value === undefined) return "–";
  const nf = (options) => new Intl.NumberFormat(locale(), options).format(value);
  if (kind === "int") return nf({ maximumFractionDigits: 0 });
  if (kind === "pct") return nf({ style: "percent", maximumFractionDigits: 1 });
  if (kind === "money") return nf({ maximumFractionDigits: 0 });
  if (kind === "dec") return nf({ maximumFractionDigits: 2 });
  return String(value);
}

function queryString(extra) {
  const params = new URLSearchParams();
  for (const [name, id] of [["from", "f-from"], ["to", "f-to"], ["phase", "f-phase"],
    ["channel", "f-channel"], ["segment", "f-segment"]]) {
    if ($(id).value) params.set(name, $(id).value);
  }
  for (const [name, value] of Object.entries(extra || {})) params.set(name, value);
  return params.toString();
}

class NeedsKey extends Error {}

async function getJson(path) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem("dashboard.key");
  if (key) headers["X-API-Key"] = key;
  const response = await fetch(path, { headers });
  if (response.status === 401 || response.status === 403) throw new NeedsKey(t("need_key"));
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error((body.error && body.error.message) || response.statusText);
  }
  return response.json();
}

function chart(id) {
  if (!state.charts[id]) state.charts[id] = echarts.init($(id), null, { renderer: "canvas" });
  return state.charts[id];
}

// --- rendering ------------------------------------------------------------------------------

function applyLabels() {
  document.documentElement.lang = state.lang;
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll(".lang button").forEach((b) => {
    b.classList.toggle("active", b.dataset.lang === state.lang);
  });
}

function touchpointName(row) { return row.label ? row.label[state.lang] : row.touchpoint; }

function renderKpis() {
  const totals = state.data.touchpoints.totals;
  const items = [["events", totals.events, "int"], ["customers", totals.customers, "int"],
    ["purchases", totals.purchases, "int"], ["revenue", totals.revenue, "money"],
    ["touches_per_purchase", totals.touches_per_purchase, "dec"]];
  $("kpis").innerHTML = items.map(([key, value, kind]) =>
    `<div class="kpi" data-kpi="${key}" data-value="${value ?? ""}"><div class="value">` +
    `${formatValue(value, kind)}</div><div class="name">${t(key)}</div></div>`).join("");
}

function renderTable() {
  const table = $("effectiveness");
  const { column, descending } = state.sort;
  table.tHead.innerHTML = "<tr>" + COLUMNS.map(([key, kind]) => {
    const sorted = key === column ? (descending ? "sorted-desc" : "sorted-asc") : "";
    return `<th data-column="${key}" class="${kind === "text" ? "text" : ""} ${sorted}">${t(key)}</th>`;
  }).join("") + "</tr>";
  const rows = [...state.data.touchpoints.rows];
  const value = (row) => (column === "touchpoint" ? touchpointName(row) : row[column]);
  rows.sort((a, b) => {
    const x = value(a), y = value(b);
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    const order = typeof x === "string" ? x.localeCompare(y) : x - y;
    return descending ? -order : order;
  });
  table.tBodies[0].innerHTML = rows.map((row) => `<tr data-touchpoint="${row.touchpoint}" ` +
    `data-channel="${row.channel}" data-phase="${row.phase}">` + COLUMNS.map(([key, kind]) => {
      if (key === "touchpoint") return `<td class="text" title="${row.touchpoint}">${touchpointName(row)}</td>`;
      if (key === "phase") return `<td class="text">${t(row.phase)}</td>`;
      if (kind === "text") return `<td class="text">${row[key]}</td>`;
      return `<td data-column="${key}" data-value="${row[key] ?? ""}">${formatValue(row[key], kind)}</td>`;
    }).join("") + "</tr>").join("") ||
    `<tr><td colspan="${COLUMNS.length}" class="text">${t("no_data")}</td></tr>`;
}

function renderAttribution() {
  const data = state.data.attribution;
  const metric = $("attr-metric").value;
  const keys = data.keys;
  chart("chart-attribution").setOption({
    tooltip: { trigger: "axis" },
    legend: { type: "scroll", top: 0 },
    grid: { left: 60, right: 10, top: 40, bottom: 70 },
    xAxis: { type: "category", data: keys, axisLabel: { rotate: keys.length > 8 ? 40 : 0 } },
    yAxis: { type: "value", name: t(metric) },
    series: data.models.map((m) => ({
      id: m.model, name: t(m.model), type: "bar",
      data: m.credits.map((c) => Number(c[metric].toFixed(metric === "revenue" ? 0 : 3))),
    })),
  }, { notMerge: true });
}

function nodeLabel(id) { return t(id.split(":").slice(1).join(":")); }

function renderSankey() {
  const sankey = state.data.journeys.sankey;
  chart("chart-sankey").setOption({
    tooltip: { trigger: "item" },
    series: [{
      id: "journeys", type: "sankey", left: 10, right: 110, top: 10, bottom: 10,
      nodeAlign: "left", emphasis: { focus: "adjacency" },
      data: sankey.nodes.map((n) => ({ name: n.id, depth: n.depth, value: n.customers })),
      links: sankey.links.map((l) => ({ source: l.source, target: l.target, value: l.value })),
      label: { formatter: (p) => nodeLabel(p.name) },
      lineStyle: { color: "gradient", curveness: 0.5, opacity: 0.35 },
    }],
  }, { notMerge: true });
}

function renderFunnel() {
  const funnel = state.data.journeys.funnel;
  chart("chart-funnel").setOption({
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 60, right: 10, top: 40, bottom: 30 },
    xAxis: { type: "category", data: funnel.map((s) => t(s.stage)) },
    yAxis: { type: "value" },
    series: [
      { id: "customers", name: t("customers"), type: "bar", data: funnel.map((s) => s.customers),
        label: { show: true, position: "top" } },
      { id: "dropped_off", name: t("dropped_off"), type: "bar", data: funnel.map((s) => s.dropped_off) },
    ],
  }, { notMerge: true });
  const drop = $("drop-off");
  drop.tHead.innerHTML = `<tr><th class="text">${t("touchpoint")}</th><th class="text">` +
    `${t("channel")}</th><th>${t("customers")}</th><th>${t("share")}</th></tr>`;
  drop.tBodies[0].innerHTML = state.data.journeys.drop_off.map((d) =>
    `<tr data-touchpoint="${d.touchpoint}"><td class="text">${d.label[state.lang]}</td>` +
    `<td class="text">${d.channel}</td><td data-value="${d.customers}">${formatValue(d.customers, "int")}</td>` +
    `<td>${formatValue(d.share, "pct")}</td></tr>`).join("") ||
    `<tr><td colspan="4" class="text">${t("no_data")}</td></tr>`;
}

function renderLift() {
  const actions = state.data.recommendations.actions;
  const names = actions.map((a) => `${a.action} (${a.model_version})`);
  const pp = (x) => (x === null || x === undefined ? null : Number((x * 100).toFixed(3)));
  const whiskers = actions.map((a, i) => (a.response_lift_interval
    ? [i, pp(a.response_lift_interval.low), pp(a.response_lift_interval.high)] : [i, null, null]));
  chart("chart-lift").setOption({
    tooltip: { trigger: "axis" },
    grid: { left: 60, right: 10, top: 40, bottom: 50 },
    xAxis: { type: "category", data: names },
    yAxis: { type: "value", name: t("response_lift") },
    series: [
      { id: "lift", name: t("response_lift"), type: "bar", data: actions.map((a) => pp(a.response_lift)) },
      { id: "interval", name: "95% CI", type: "custom", data: whiskers,
        renderItem: (params, api) => {
          if (api.value(1) === null || Number.isNaN(api.value(1))) return null;
          const low = api.coord([api.value(0), api.value(1)]);
          const high = api.coord([api.value(0), api.value(2)]);
          const half = api.size([1, 0])[0] * 0.12;
          const style = { stroke: "#111827", lineWidth: 1.5 };
          return { type: "group", children: [
            { type: "line", shape: { x1: low[0], y1: low[1], x2: high[0], y2: high[1] }, style },
            { type: "line", shape: { x1: low[0] - half, y1: low[1], x2: low[0] + half, y2: low[1] }, style },
            { type: "line", shape: { x1: high[0] - half, y1: high[1], x2: high[0] + half, y2: high[1] }, style },
          ] };
        },
        encode: { x: 0, y: [1, 2] }, z: 10 },
    ],
  }, { notMerge: true });
}

function renderLive() {
  const live = state.data.live;
  $("live-rate").textContent = `${formatValue(live.events_per_second, "dec")} ${t("per_second")}`;
  $("live-rate").dataset.value = live.events_per_second;
  chart("chart-live").setOption({
    grid: { left: 50, right: 10, top: 10, bottom: 30 },
    xAxis: { type: "category", data: live.series.map((p) => new Date(p.t * 1000).toLocaleTimeString(locale())) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ id: "rate", type: "line", showSymbol: false, areaStyle: {}, data: live.series.map((p) => p.events) }],
  }, { notMerge: true });
}

function renderStatus() {
  if (state.updatedAt) {
    $("status").textContent = `${t("updated")} ${state.updatedAt.toLocaleTimeString(locale())}`;
  }
}

function renderAll() {
  applyLabels();
  renderStatus();
  if (!state.data.touchpoints) return;
  renderKpis(); renderTable(); renderAttribution(); renderSankey(); renderFunnel(); renderLift();
  if (state.data.live) renderLive();
}

function updateChannels() {
  for (const row of state.data.touchpoints.rows) state.channels.add(row.channel);
  const select = $("f-channel");
  const have = new Set([...select.options].map((o) => o.value));
  [...state.channels].sort().filter((c) => !have.has(c)).forEach((c) => {
    select.add(new Option(c, c));
  });
}

// --- loading -------------------------------------------------------------------------------

async function load() {
  $("status").textContent = t("loading");
  state.ready = false;
  try {
    const [touchpoints, attribution, journeys, recommendations, live] = await Promise.all([
      getJson(`/v1/analytics/touchpoints?${queryString()}`),
      getJson(`/v1/analytics/attribution?${queryString({ key: $("attr-key").value })}`),
      getJson(`/v1/analytics/journeys?${queryString({ facet: $("journey-facet").value })}`),
      getJson(`/v1/analytics/recommendations?${queryString()}`),
      getJson("/v1/analytics/live"),
    ]);
    state.data = { touchpoints, attribution, journeys, recommendations, live };
    if (!$("f-from").value) $("f-from").value = touchpoints.filters.from;
    if (!$("f-to").value) $("f-to").value = touchpoints.filters.to;
    updateChannels();
    state.updatedAt = new Date();
    renderAll();
  } catch (error) {
    if (error instanceof NeedsKey) {
      $("key-field").hidden = false;
      $("status").textContent = t("need_key");
    } else {
      state.errors.push(String(error.message || error));
      $("status").textContent = `${t("error")}: ${error.message || error}`;
    }
  }
  state.loads += 1;
  state.ready = true;
}

async function refreshLive() {
  try {
    state.data.live = await getJson("/v1/analytics/live");
    if (state.data.touchpoints) renderLive();
  } catch (error) { /* the next refresh tries again */ }
}

function setup() {
  const params = new URLSearchParams(location.search);
  for (const [name, id] of [["from", "f-from"], ["to", "f-to"], ["phase", "f-phase"],
    ["segment", "f-segment"]]) if (params.get(name)) $(id).value = params.get(name);
  if (params.get("lang")) state.lang = params.get("lang");
  $("f-key").addEventListener("change", () => {
    sessionStorage.setItem("dashboard.key", $("f-key").value.trim());
  });
  document.querySelectorAll("#filters input, #filters select, #attr-key, #journey-facet")
    .forEach((el) => el.addEventListener("change", load));
  $("attr-metric").addEventListener("change", () => state.data.attribution && renderAttribution());
  document.querySelectorAll(".lang button").forEach((b) => b.addEventListener("click", () => {
    state.lang = b.dataset.lang;
    localStorage.setItem("dashboard.lang", state.lang);
    renderAll();
  }));
  $("effectiveness").tHead.addEventListener("click", (event) => {
    const column = event.target.dataset && event.target.dataset.column;
    if (!column) return;
    state.sort = { column, descending: state.sort.column === column ? !state.sort.descending : true };
    renderTable();
  });
  window.addEventListener("resize", () => Object.values(state.charts).forEach((c) => c.resize()));
  applyLabels();
  load();
  setInterval(refreshLive, 5000);
}

setup();

// npsloop dashboard: plain JavaScript, hand-written SVG charts, no libraries, no CDN.
// Untrusted text (comments, names) is only ever set with textContent, never as HTML.
"use strict";

const KEY_STORAGE = "npsloop.apiKey";
// The application's root, frozen before any history change: the server writes <base href>
// relative to the page's own address, so everything works under a reverse proxy's path too.
const ROOT = new URL(document.baseURI);
const at = (path) => new URL(path.replace(/^\//, ""), ROOT);
const SVG_NS = "http://www.w3.org/2000/svg";
const OUTCOMES = ["resolved", "contacted", "no_response", "churned"];
// The server's clock decides what "now" and "the last 90 days" mean (it may differ from
// this device's, and tests run it on a manual clock), so the page tracks the skew.
const state = { reviewItems: [], reviewCursor: null, view: "overview", interval: "week", groupBy: "segment", now: null, skew: null, selected: null, tasks: [], customer: null, themes: null, classifier: null, openSections: new Set(), drafts: {}, scopes: null, nextCursor: null };
const PAGE_SIZE = 50;
// Which scope each view needs; a key sees only the views it may read.
const VIEW_SCOPES = { overview: "analytics:read", inbox: "tasks:read", sla: "analytics:read", review: "responses:read" };
const may = (scope) => !state.scopes || state.scopes.includes("admin") || state.scopes.includes(scope);

// ---------- small DOM helpers ----------
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, v);
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const fmt = {
  nps: (v) => (v === null || v === undefined ? "–" : (v > 0 ? "+" : "") + v.toFixed(1)),
  num: (v) => (v === null || v === undefined ? "–" : v.toFixed(1)),
  pct: (v) => (v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%"),
  duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const m = seconds / 60;
    if (m < 60) return Math.round(m) + " min";
    const hrs = m / 60;
    return hrs < 48 ? hrs.toFixed(1) + " h" : (hrs / 24).toFixed(1) + " d";
  },
  date: (iso) => new Date(iso).toLocaleDateString(undefined, { month: "short", day: "numeric" }),
  when: (iso) => new Date(iso).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }),
  label: (id) => (id === null || id === undefined ? "(none)" : String(id).replace(/_/g, " ")),
  // A theme's name as the taxonomy gives it (the policy may rename themes), else its id made readable.
  theme: (id) => (state.themes && state.themes[id]) || fmt.label(id),
};

function relative(iso) {
  const now = state.now ? new Date(state.now) : new Date();
  const diff = (new Date(iso) - now) / 1000;
  const text = fmt.duration(Math.abs(diff));
  return diff >= 0 ? "in " + text : text + " ago";
}

// ---------- API ----------
class ApiError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path, options = {}) {
  const key = sessionStorage.getItem(KEY_STORAGE);
  const headers = { Authorization: "Bearer " + key, Accept: "application/json", ...(options.headers || {}) };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const reply = await fetch(at(path), { ...options, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  if (reply.status === 401) { signOut("Your API key was not accepted. Sign in again."); throw new ApiError(401, "unauthorized"); }
  if (!reply.ok) {
    let detail = reply.statusText;
    try { const problem = await reply.json(); detail = problem.detail || problem.title || detail; } catch (_) { /* not JSON */ }
    throw new ApiError(reply.status, detail);
  }
  return options.raw ? reply : reply.json();
}

function serverNow() {
  return new Date(Date.now() + (state.skew || 0));
}

async function loadClassifier() {
  try {
    const info = await api("/v1/classifier");
    state.classifier = info;
    state.themes = Object.fromEntries(info.themes.map((t) => [t.id, t.label]));
    $("#classifier-version").textContent = `classifier ${info.version}${info.kind === "trained" ? " (trained)" : ""}`;
  } catch (err) { if (err.status !== 401) state.themes = {}; }
}

async function syncClock() {
  if (!may("analytics:read")) { state.skew = 0; return; } // only the reports carry the server's now
  // A one-second period in the past: the cheapest report, and it carries the server's now.
  const probe = await api("/v1/analytics/followup?from=2000-01-01T00:00:00Z&to=2000-01-01T00:00:01Z");
  state.skew = new Date(probe.now).getTime() - Date.now();
}

function periodQuery() {
  const days = Number($("#period").value);
  const to = serverNow();
  to.setTime(to.getTime() + 1000); // include what arrived this very second
  const from = new Date(to.getTime() - days * 86400000);
  return new URLSearchParams({ from: from.toISOString(), to: to.toISOString() });
}

function banner(text) {
  const el = $("#banner");
  el.textContent = text || "";
  el.hidden = !text;
}

// ---------- login ----------
function signOut(message) {
  sessionStorage.removeItem(KEY_STORAGE);
  $("#app").hidden = true;
  $("#login").hidden = false;
  const err = $("#login-error");
  err.textContent = message || "";
  err.hidden = !message;
  $("#api-key").value = "";
  $("#api-key").focus();
}

async function signIn(event) {
  event.preventDefault();
  const key = $("#api-key").value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_STORAGE, key);
  $("#api-key").value = "";
  await start();
}

async function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  await route();
}

// ---------- addresses ----------
// /tasks/<id> and /customers/<id> open the page on that task or customer (alerts and digests
// link there); ?team=<team> opens the inbox on a team. Opening things updates the address.
function here() {
  const rest = location.pathname.slice(ROOT.pathname.length);
  const [kind, ...id] = rest.split("/");
  return { kind, id: id.length ? decodeURIComponent(id.join("/")) : null, team: new URLSearchParams(location.search).get("team") };
}

function go(path, replace = false) {
  const url = at(path).href;
  if (url !== location.href) history[replace ? "replaceState" : "pushState"](null, "", url);
}

async function loadScopes() {
  try {
    state.scopes = (await api("/v1/me")).scopes;
  } catch (err) { if (err.status === 401) throw err; state.scopes = null; }
  for (const tab of $$(".tabs [role=tab]")) tab.hidden = !may(VIEW_SCOPES[tab.dataset.view]);
  $("#customer-search-form").hidden = !may("responses:read");
  if (!may(VIEW_SCOPES[state.view])) state.view = Object.keys(VIEW_SCOPES).find((v) => may(VIEW_SCOPES[v])) || "inbox";
}

async function loadProperties() {
  if (!may("analytics:read")) return;
  try {
    const { properties } = await api("/v1/analytics/properties?" + periodQuery());
    const select = $("#group-by");
    for (const old of $$("option[data-property]", select)) old.remove();
    for (const p of properties.slice(0, 30)) select.append(h("option", { value: "properties." + p.name, "data-property": p.name, text: "property: " + p.name }));
    if (state.groupBy) select.value = state.groupBy;
  } catch (_) { /* the menu keeps its fixed choices */ }
}

// The inbox's filters live in the address (?status=&team=&assignee=&breached=), so a filtered
// inbox can be bookmarked and shared.
const FILTERS = ["status", "team", "assignee"];
function filtersFromAddress(params) {
  const form = $("#inbox-filters");
  let any = false;
  for (const name of FILTERS) if (params.has(name)) { form.elements[name].value = params.get(name); any = true; }
  if (params.has("breached")) { form.elements.breached.checked = params.get("breached") === "true"; any = true; }
  return any;
}
function filtersToAddress() {
  const form = $("#inbox-filters");
  const params = new URLSearchParams();
  for (const name of FILTERS) if (form.elements[name].value.trim()) params.set(name, form.elements[name].value.trim());
  if (form.elements.breached.checked) params.set("breached", "true");
  const url = new URL(location.href);
  url.search = params.toString();
  history.replaceState(null, "", url);
}

async function route() {
  if (state.scopes === null) await loadScopes();
  const { kind, id, team } = here();
  if (!kind && filtersFromAddress(new URLSearchParams(location.search))) return show("inbox", { keepAddress: true });
  if (kind === "tasks" && id) {
    state.selected = id;
    $("#inbox-filters").elements.status.value = "";
    return show("inbox", { keepAddress: true });
  }
  if (kind === "customers" && id) return openCustomer(id, { keepAddress: true });
  if (team) {
    $("#inbox-filters").elements.team.value = team;
    return show("inbox", { keepAddress: true });
  }
  return show(state.view, { keepAddress: true });
}

// ---------- views ----------
function show(view, { keepAddress = false } = {}) {
  state.view = view;
  for (const tab of $$(".tabs [role=tab]")) tab.setAttribute("aria-selected", String(tab.dataset.view === view));
  for (const section of $$(".view")) section.hidden = section.id !== "view-" + view;
  if (!keepAddress) go(view === "inbox" && state.selected ? "tasks/" + encodeURIComponent(state.selected) : "");
  return refresh();
}

async function refresh() {
  banner("");
  try {
    if (state.skew === null) await syncClock();
    if (state.themes === null) { await loadClassifier(); loadProperties(); } // once the server's clock is known
    const followup = may("analytics:read") ? await api("/v1/analytics/followup?" + periodQuery()) : null;
    if (followup) {
      state.now = followup.now;
      state.skew = new Date(followup.now).getTime() - Date.now();
      renderCounts(followup);
    } else state.now = serverNow().toISOString();
    if (state.view === "overview") await renderOverview(followup);
    if (state.view === "inbox") await renderInbox();
    if (state.view === "sla") await renderSla(followup);
    if (state.view === "review") await renderReview();
    if (state.view === "customer" && state.customer) await renderCustomer(state.customer);
  } catch (err) {
    // A key for tasks only cannot read the overview: take it to its inbox instead.
    if (err.status === 403 && state.view === "overview") return show("inbox");
    if (err.status !== 401) banner(err.status === 403 ? "This API key lacks a scope this page needs: " + err.message : "Could not load: " + err.message);
  }
}

function renderCounts(followup) {
  const board = followup.sla_board;
  $("#inbox-count").textContent = board.open ? String(board.open) : "";
  $("#breach-count").textContent = board.breached ? String(board.breached) : "";
}

// ---------- overview ----------
async function renderOverview(followup) {
  const q = periodQuery();
  const [trend, groups, themes, outcomes] = await Promise.all([
    api("/v1/nps?" + q + "&interval=" + state.interval),
    api("/v1/nps?" + q + "&group_by=" + encodeURIComponent(state.groupBy)),
    api("/v1/analytics/themes?" + q),
    api("/v1/analytics/outcomes?" + q),
  ]);
  const o = trend.overall;
  $("[data-testid=kpi-nps]").textContent = fmt.nps(o.nps);
  $("[data-testid=kpi-moe]").textContent = fmt.num(o.margin_of_error);
  $("[data-testid=kpi-responses]").textContent = String(o.total);
  $("[data-testid=kpi-split]").textContent = `${o.promoters} promoters · ${o.passives} passives · ${o.detractors} detractors`;
  const sla = followup.sla;
  $("[data-testid=kpi-sla]").textContent = fmt.pct(sla.compliance);
  $("[data-testid=kpi-sla-detail]").textContent = `${sla.acknowledged_within_sla} of ${sla.decided} tasks in time · ${sla.pending} pending`;
  const ttft = followup.time_to_first_touch;
  $("[data-testid=kpi-ttft]").textContent = fmt.duration(ttft.median_seconds);
  $("[data-testid=kpi-ttft-p90]").textContent = `median · p90 ${fmt.duration(ttft.p90_seconds)} · ${ttft.touched} touched`;
  const rec = followup.recovery;
  $("[data-testid=kpi-recovery]").textContent = fmt.pct(rec.rate);
  $("[data-testid=kpi-recovery-detail]").textContent =
    `${rec.recovered} of ${rec.answered_again} who answered again won back · ${rec.resolved_tasks} tasks resolved`;
  donut($("#recovery-donut"), rec.rate);
  trendChart($("#trend-chart"), o.intervals || [], trend.benchmarks || []);
  outcomesTable($("#outcomes-table"), outcomes);
  groupChart($("#group-chart"), groups.groups, state.groupBy);
  themeChart($("#theme-chart"), themes.themes);
  ageChart($("#age-chart"), followup.open_tasks_by_age.buckets);
}

// Revenue and customers by NPS category and business outcome ("revenue from detractors who churned").
function outcomesTable(container, report) {
  const names = ["churned", "renewed", "expanded", "contracted"];
  const rows = report.categories.filter((c) => names.some((n) => c.outcomes[n].outcomes > 0));
  if (!rows.length) return empty(container, "No business outcomes recorded in this period.");
  const money = (cell) => (cell.outcomes ? `${cell.revenue.toLocaleString()}${cell.currencies.length === 1 ? " " + cell.currencies[0] : ""}` : "–");
  container.replaceChildren(h("table", { class: "outcomes" },
    h("thead", {}, h("tr", {}, h("th", { text: "" }), names.map((n) => h("th", { text: fmt.label(n) })))),
    h("tbody", {}, rows.map((c) => h("tr", { "data-testid": "outcome-row", "data-category": c.category },
      h("th", { text: fmt.label(c.category) }),
      names.map((n) => h("td", { "data-outcome": n, "data-revenue": c.outcomes[n].revenue,
        title: `${c.outcomes[n].customers} customers, ${c.outcomes[n].outcomes} outcomes` },
        h("strong", { text: money(c.outcomes[n]) }), h("br"), h("small", { class: "muted", text: `${c.outcomes[n].customers} customers` }))))))));
}

function donut(svg, rate) {
  svg.replaceChildren();
  const r = 15.915; // circumference 100: dash lengths read as percentages
  svg.append(s("circle", { cx: 21, cy: 21, r, class: "donut-track" }));
  if (rate !== null && rate !== undefined) {
    svg.append(s("circle", { cx: 21, cy: 21, r, class: "donut-value", "stroke-dasharray": `${rate * 100} ${100 - rate * 100}`, "stroke-dashoffset": 25 }));
  }
}

function empty(container, text) {
  container.replaceChildren(h("p", { class: "empty", text }));
}

function trendChart(container, points, benchmarks = []) {
  if (!points.some((p) => p.total > 0)) return empty(container, "No responses in this period yet.");
  const W = 720, H = 260, L = 44, R = 12, T = 12, B = 30;
  const values = points.filter((p) => p.total > 0).flatMap((p) => [p.ci_low, p.ci_high, p.nps]).concat(benchmarks.map((b) => b.nps));
  let lo = Math.max(-100, Math.floor((Math.min(...values, 0) - 5) / 20) * 20);
  let hi = Math.min(100, Math.ceil((Math.max(...values, 0) + 5) / 20) * 20);
  if (hi - lo < 40) { hi = Math.min(100, hi + 20); lo = Math.max(-100, lo - 20); }
  const x = (i) => L + (points.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (points.length - 1));
  const y = (v) => T + ((hi - v) * (H - T - B)) / (hi - lo);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "NPS per interval with its 95% margin of error" });
  for (let v = lo; v <= hi; v += 20) {
    svg.append(s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: v === 0 ? "axis zero" : "grid" }));
    svg.append(s("text", { x: L - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, String(v)));
  }
  // Runs of consecutive intervals with data: the band and the line break over empty ones.
  const runs = [];
  let run = [];
  points.forEach((p, i) => { if (p.total > 0) run.push([p, i]); else if (run.length) { runs.push(run); run = []; } });
  if (run.length) runs.push(run);
  for (const seg of runs) {
    if (seg.length === 1) { // a lone interval: its margin of error as an error bar
      const [p, i] = seg[0];
      svg.append(s("line", { x1: x(i), x2: x(i), y1: y(p.ci_low), y2: y(p.ci_high), class: "band-bar" }));
      continue;
    }
    const upper = seg.map(([p, i]) => `${x(i)},${y(p.ci_high)}`);
    const lower = seg.slice().reverse().map(([p, i]) => `${x(i)},${y(p.ci_low)}`);
    svg.append(s("polygon", { points: upper.concat(lower).join(" "), class: "band" }));
    svg.append(s("polyline", { points: seg.map(([p, i]) => `${x(i)},${y(p.nps)}`).join(" "), class: "line" }));
  }
  // The policy's references (an industry average, a target) as dashed lines with their names.
  for (const b of benchmarks) {
    const g = s("g", { "data-testid": "benchmark-line", "data-name": b.name, "data-nps": b.nps });
    g.append(s("line", { x1: L, x2: W - R, y1: y(b.nps), y2: y(b.nps), class: "benchmark" }));
    g.append(s("text", { x: W - R - 4, y: y(b.nps) - 4, class: "tick benchmark-label", "text-anchor": "end" }, `${b.name} ${fmt.nps(b.nps)}`));
    svg.append(g);
  }
  const every = Math.ceil(points.length / 8);
  points.forEach((p, i) => {
    if (i % every === 0) svg.append(s("text", { x: x(i), y: H - 8, class: "tick", "text-anchor": "middle" }, fmt.date(p.start)));
    if (!p.total) return;
    const significant = p.change && p.change.significant;
    const dot = s("circle", { cx: x(i), cy: y(p.nps), r: significant ? 5.5 : 3.5, class: significant ? "dot sig" : "dot", "data-testid": "trend-point", "data-nps": p.nps });
    const change = p.change ? ` · ${fmt.nps(p.change.delta)} vs previous${significant ? " (significant)" : ""}` : "";
    dot.append(s("title", {}, `${fmt.date(p.start)}: NPS ${fmt.nps(p.nps)} ± ${fmt.num(p.margin_of_error)} (n=${p.total})${change}`));
    svg.append(dot);
  });
  container.replaceChildren(svg);
}

function groupChart(container, groups, key) {
  if (!groups.length) return empty(container, "No responses in this period yet.");
  const rows = groups.slice(0, 12);
  const W = 560, rowH = 34, L = 120, R = 110, H = rows.length * rowH + 26;
  const x = (v) => L + ((v + 100) * (W - L - R)) / 200;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "NPS by " + key });
  for (const v of [-100, -50, 0, 50, 100]) {
    svg.append(s("line", { x1: x(v), x2: x(v), y1: 0, y2: H - 20, class: v === 0 ? "axis zero" : "grid" }));
    svg.append(s("text", { x: x(v), y: H - 6, class: "tick", "text-anchor": "middle" }, String(v)));
  }
  rows.forEach((g, i) => {
    const cy = i * rowH + rowH / 2;
    const label = fmt.label(g[key]);
    const row = s("g", { "data-testid": "group-row", "data-key": g[key] === null ? "" : String(g[key]), "data-nps": g.nps });
    row.append(s("text", { x: L - 8, y: cy + 4, class: "label", "text-anchor": "end" }, label.length > 18 ? label.slice(0, 17) + "…" : label));
    row.append(s("rect", { x: Math.min(x(0), x(g.nps)), y: cy - 9, width: Math.abs(x(g.nps) - x(0)), height: 18, rx: 3, class: g.nps >= 0 ? "bar pos" : "bar neg" }));
    row.append(s("line", { x1: x(g.ci_low), x2: x(g.ci_high), y1: cy, y2: cy, class: "whisker" }));
    for (const end of [g.ci_low, g.ci_high]) row.append(s("line", { x1: x(end), x2: x(end), y1: cy - 5, y2: cy + 5, class: "whisker" }));
    row.append(s("text", { x: W - R + 6, y: cy + 4, class: "value" }, `${fmt.nps(g.nps)} ±${fmt.num(g.margin_of_error)}`));
    row.append(s("title", {}, `${label}: NPS ${fmt.nps(g.nps)} ± ${fmt.num(g.margin_of_error)} · ${g.promoters}/${g.passives}/${g.detractors} (n=${g.total})`));
    svg.append(row);
  });
  container.replaceChildren(svg);
}

function themeChart(container, themes) {
  if (!themes.length) return empty(container, "No themes found in comments yet.");
  const rows = themes.slice(0, 8);
  const W = 560, rowH = 40, L = 190, R = 50, H = rows.length * rowH + 6;
  const max = Math.max(0.01, ...rows.flatMap((t) => [t.by_category.detractor.share || 0, t.by_category.promoter.share || 0]));
  const w = (v) => ((v || 0) * (W - L - R)) / max;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Theme shares among detractors and promoters" });
  rows.forEach((t, i) => {
    const top = i * rowH + 4;
    const det = t.by_category.detractor, pro = t.by_category.promoter;
    const row = s("g", { "data-testid": "theme-row", "data-theme": t.id });
    const name = fmt.label(t.id);
    row.append(s("text", { x: L - 8, y: top + 20, class: "label", "text-anchor": "end" }, name.length > 26 ? name.slice(0, 25) + "…" : name));
    row.append(s("rect", { x: L, y: top + 3, width: w(det.share), height: 14, rx: 2, class: "bar det" }));
    row.append(s("text", { x: L + w(det.share) + 4, y: top + 14, class: "value small" }, fmt.pct(det.share)));
    row.append(s("rect", { x: L, y: top + 19, width: w(pro.share), height: 14, rx: 2, class: "bar pro" }));
    row.append(s("text", { x: L + w(pro.share) + 4, y: top + 30, class: "value small" }, fmt.pct(pro.share)));
    row.append(s("title", {}, `${fmt.label(t.id)}: ${det.count} detractor and ${pro.count} promoter comments · NPS of mentions ${fmt.nps(t.nps)}`));
    svg.append(row);
  });
  container.replaceChildren(svg);
}

function ageChart(container, buckets) {
  const labels = { under_24h: "< 24 h", "24h_to_48h": "24–48 h", "2d_to_7d": "2–7 d", over_7d: "> 7 d" };
  const entries = Object.entries(buckets);
  const W = 520, H = 170, B = 26, T = 18, max = Math.max(1, ...entries.map(([, v]) => v));
  const bw = W / entries.length;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Open tasks by age" });
  entries.forEach(([k, v], i) => {
    const bh = ((H - B - T) * v) / max;
    const g = s("g", { "data-testid": "age-bucket", "data-bucket": k, "data-count": v });
    g.append(s("rect", { x: i * bw + bw * 0.2, y: H - B - bh, width: bw * 0.6, height: bh, rx: 3, class: i >= 2 ? "bar neg" : i === 1 ? "bar warn" : "bar neutral" }));
    g.append(s("text", { x: i * bw + bw / 2, y: H - B - bh - 5, class: "value", "text-anchor": "middle" }, String(v)));
    g.append(s("text", { x: i * bw + bw / 2, y: H - 8, class: "tick", "text-anchor": "middle" }, labels[k] || k));
    svg.append(g);
  });
  container.replaceChildren(svg);
}

async function download(kind) {
  try {
    const reply = await api(`/v1/analytics/export/${kind}.csv?` + periodQuery(), { raw: true, headers: { Accept: "text/csv" } });
    const url = URL.createObjectURL(await reply.blob());
    const link = h("a", { href: url, download: `npsloop-${kind}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    if (err.status !== 401) banner("Export failed: " + err.message);
  }
}

// ---------- inbox ----------
function scoreBadge(score) {
  return h("span", { class: "score " + (score >= 9 ? "pro" : score >= 7 ? "pas" : "det"), text: String(score) });
}

function taskItem(task, onOpen) {
  const overdue = task.status === "open" && (task.breached || new Date(task.due_at) <= new Date(state.now));
  const who = task.customer.name || task.customer.email || task.customer_id;
  return h("li", {},
    h("button", { class: "task" + (state.selected === task.id ? " selected" : ""), "data-testid": "task-item", "data-task-id": task.id, onclick: () => onOpen(task.id) },
      scoreBadge(task.score),
      h("span", { class: "task-main" },
        h("span", { class: "task-who", text: who }),
        h("span", { class: "task-comment", text: task.comment || "(no comment)" })),
      h("span", { class: "task-meta" },
        h("span", { class: "status " + task.status, text: task.status }),
        task.status === "resolved" ? h("span", { class: "muted", text: task.outcome || "" })
          : h("span", { class: overdue ? "due overdue" : "due", text: (overdue ? "overdue " : "due ") + relative(task.due_at) }),
        h("span", { class: "muted", text: task.team || "" }))));
}

async function renderInbox({ more = false } = {}) {
  const form = $("#inbox-filters");
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const name of FILTERS) if (form.elements[name].value.trim()) params.set(name, form.elements[name].value.trim());
  if (form.elements.breached.checked) params.set("breached", "true");
  if (more && state.nextCursor) params.set("cursor", state.nextCursor);
  // A page at a time: a large inbox is not one endless page.
  const page = await api("/v1/tasks?" + params);
  state.nextCursor = page.next_cursor;
  const tasks = more ? state.tasks.concat(page.tasks) : page.tasks;
  $("#inbox-more").hidden = !page.next_cursor;
  // Most urgent first: the earliest due among unresolved, the latest among resolved.
  tasks.sort((a, b) => (a.status === "resolved" ? new Date(b.resolved_at) - new Date(a.resolved_at) : new Date(a.due_at) - new Date(b.due_at)));
  state.tasks = tasks;
  const list = $("#task-list");
  list.replaceChildren(...tasks.map((t) => taskItem(t, openTask)));
  if (!tasks.length) list.append(h("li", { class: "empty", text: "Nothing here. Inbox zero." }));
  if (state.selected) await openTask(state.selected, false);
}

async function openTask(id, scroll = true) {
  state.selected = id;
  for (const b of $$("#task-list .task")) b.classList.toggle("selected", b.dataset.taskId === id);
  const panel = $("#task-detail");
  let task;
  try { task = await api("/v1/tasks/" + encodeURIComponent(id)); } catch (err) {
    banner(err.status === 404 ? `Task ${id} does not exist (or was erased).` : err.message);
    return;
  }
  if (state.view === "inbox") go("tasks/" + encodeURIComponent(id));
  panel.replaceChildren(taskDetail(task));
  panel.hidden = false;
  document.body.classList.add("detail-open");
  if (scroll) panel.scrollIntoView({ block: "nearest" });
}

function closeTask() {
  if (state.selected && state.view === "inbox") go("");
  state.selected = null;
  $("#task-detail").hidden = true;
  document.body.classList.remove("detail-open");
  for (const b of $$("#task-list .task")) b.classList.remove("selected");
}

function taskDetail(task) {
  const c = task.customer || {};
  // What the lead types survives the pane being rebuilt by a refresh (drafts per task).
  const draft = (state.drafts[task.id] ||= {});
  const kept = (el, key, initial = "") => {
    el.value = key in draft ? draft[key] : initial;
    el.addEventListener("input", () => {
      draft[key] = el.value;
      // Typed into a pane a refresh has just replaced: the live pane shows it too.
      const live = $(`#task-detail [data-testid="${el.dataset.testid}"]`);
      if (live && live !== el) live.value = el.value;
    });
    return el;
  };
  const note = kept(h("textarea", { rows: 3, placeholder: "What did you do or learn?", "data-testid": "task-note", maxlength: 10000 }), "note");
  const outcome = h("select", { "data-testid": "task-outcome" }, OUTCOMES.map((o) => h("option", { value: o, text: fmt.label(o) })));
  const resolved = task.status === "resolved";
  const act = (path, body, done) => async () => {
    try {
      const payload = typeof body === "function" ? body() : body;
      await api(`/v1/tasks/${encodeURIComponent(task.id)}/${path}`, { method: "POST", body: payload });
      if (path === "resolve") delete state.drafts[task.id];
      else if (path === "reassign") { delete draft.assignee; delete draft.team; }
      else if (path === "notes" || path === "acknowledge") draft.note = "";
      await refresh(); // it clears the banner, so the confirmation comes after
      banner(done);
    } catch (err) { if (err.status !== 401) banner(err.message); }
  };
  const noteValue = () => note.value.trim() || undefined;
  // The pane is rebuilt on every refresh: a section the lead opened stays open.
  const section = (name, title, ...children) => {
    const summary = h("summary", { text: title });
    const el = h("details", { class: "pane-section", "data-testid": name + "-section", open: state.openSections.has(name) },
      summary, ...children);
    // Remembered at the click, not at the "toggle" event, which comes a task later: a
    // refresh in between rebuilt the pane with the section closed again under the lead's click.
    summary.addEventListener("click", () => state.openSections[el.open ? "delete" : "add"](name));
    el.addEventListener("toggle", () => state.openSections[el.open ? "add" : "delete"](name));
    return el;
  };
  const assignee = kept(h("input", { placeholder: "person", "data-testid": "task-assignee", maxlength: 200 }), "assignee", task.assignee || "");
  const team = kept(h("input", { placeholder: "team", "data-testid": "task-team", maxlength: 100 }), "team", task.team || "");
  const reassignBody = () => {
    const body = {};
    if (assignee.value.trim() !== (task.assignee || "")) body.assignee = assignee.value.trim() || null;
    if (team.value.trim() && team.value.trim() !== task.team) body.team = team.value.trim();
    return body;
  };
  const current = new Set((task.themes || []).map((t) => t.id));
  const themeBoxes = Object.entries(state.themes || {}).map(([id, label]) =>
    h("label", { class: "check" }, h("input", { type: "checkbox", value: id, checked: current.has(id), "data-testid": "theme-" + id }), " " + label));
  const sentiment = h("select", { "data-testid": "task-sentiment" },
    h("option", { value: "", text: "sentiment: keep" }), ["positive", "neutral", "negative"].map((v) => h("option", { value: v, text: v })));
  const correct = async () => {
    const body = { themes: themeBoxes.map((l) => $("input", l)).filter((i) => i.checked).map((i) => i.value) };
    if (sentiment.value) body.sentiment = sentiment.value;
    try {
      await api(`/v1/responses/${encodeURIComponent(task.response_id)}/classification`, { method: "PUT", body });
      await refresh();
      banner("Correction saved: it wins from now on and teaches the next trained classifier.");
    } catch (err) { if (err.status !== 401) banner(err.message); }
  };
  const hasEmail = /^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(c.email || "");
  const subject = kept(h("input", { placeholder: "Subject", "data-testid": "message-subject", maxlength: 200 }), "subject");
  const message = kept(h("textarea", { rows: 4, placeholder: `What changed, in your words to ${c.name || c.email || "the customer"}`, "data-testid": "message-body", maxlength: 10000 }), "message");
  const resolveBody = () => {
    const body = { outcome: outcome.value, note: noteValue() };
    if (subject.value.trim() && message.value.trim()) body.customer_message = { subject: subject.value.trim(), body: message.value.trim() };
    return body;
  };
  return h("div", { "data-task-id": task.id },
    h("div", { class: "detail-head" },
      scoreBadge(task.score),
      h("div", {}, h("h2", { text: c.name || c.email || task.customer_id }),
        h("p", { class: "muted", text: [c.email, task.account_id, task.segment].filter(Boolean).join(" · ") })),
      h("button", { class: "close", "aria-label": "Close", "data-testid": "task-close", onclick: closeTask, text: "×" })),
    h("p", {}, h("a", { href: at("customers/" + encodeURIComponent(task.customer_id)).href, "data-testid": "task-customer-link",
      onclick: (e) => { e.preventDefault(); openCustomer(task.customer_id); } }, "The customer's story →")),
    h("blockquote", { text: task.comment || "(no comment)" }),
    h("p", { class: "chips" }, (task.themes || []).map((t) => h("span", { class: "chip", text: fmt.theme(t.id) }))),
    h("dl", { class: "facts" },
      h("dt", { text: "Status" }), h("dd", { "data-testid": "task-status", text: task.status + (task.outcome ? " — " + task.outcome : "") }),
      h("dt", { text: "Due" }), h("dd", { text: `${fmt.when(task.due_at)} (${relative(task.due_at)})${task.breached ? " · breached" : ""}` }),
      h("dt", { text: "Team" }), h("dd", { text: [task.team, task.assignee].filter(Boolean).join(" · ") || "–" })),
    resolved ? null : h("div", { class: "task-actions" },
      note,
      h("div", { class: "actions" },
        task.status === "open" ? h("button", { "data-testid": "task-acknowledge", onclick: act("acknowledge", () => ({ note: noteValue() }), "Acknowledged.") }, "Acknowledge") : null,
        h("button", { "data-testid": "task-add-note", onclick: () => { if (noteValue()) act("notes", { note: noteValue() }, "Note added.")(); } }, "Add note")),
      section("reassign", "Reassign",
        h("div", { class: "actions" }, assignee, team,
          h("button", { "data-testid": "task-reassign", onclick: () => { const b = reassignBody(); if (Object.keys(b).length) act("reassign", b, "Reassigned.")(); } }, "Reassign"))),
      section("correct", "Correct themes and sentiment",
        h("div", { class: "theme-picker" }, themeBoxes),
        h("div", { class: "actions" }, sentiment, h("button", { "data-testid": "task-correct", onclick: correct }, "Save correction"))),
      hasEmail ? section("message", `Tell ${c.email} what changed (sent when you resolve)`, subject, message) : null,
      h("div", { class: "actions resolve" },
        h("label", {}, "Outcome ", outcome),
        h("button", { class: "primary", "data-testid": "task-resolve", onclick: () => act("resolve", resolveBody, "Resolved.")() }, "Resolve"))),
    h("h3", { text: "Timeline" }),
    h("ol", { class: "timeline", "data-testid": "task-timeline" }, (task.events || []).map((e) =>
      h("li", {}, h("strong", { text: fmt.label(e.type) }), " ", h("span", { class: "muted", text: `${fmt.when(e.at)} · ${e.actor}` }),
        e.note ? h("p", { text: e.note }) : null))));
}

// ---------- customer ----------
async function openCustomer(id, { keepAddress = false } = {}) {
  state.customer = id;
  state.view = "customer";
  for (const tab of $$(".tabs [role=tab]")) tab.setAttribute("aria-selected", "false");
  for (const section of $$(".view")) section.hidden = section.id !== "view-customer";
  if (!keepAddress) go("customers/" + encodeURIComponent(id));
  return refresh();
}

async function renderCustomer(id) {
  const view = $("#customer-story");
  let story;
  try { story = await api("/v1/customers/" + encodeURIComponent(id)); } catch (err) {
    if (err.status === 401) return;
    view.replaceChildren(h("p", { class: "empty", "data-testid": "customer-missing",
      text: err.status === 404 ? `No customer "${id}": never answered, or erased.` : "Could not load: " + err.message }));
    return;
  }
  const c = story.customer || {};
  const e = story.eligibility;
  const openTaskHere = (taskId) => { state.selected = taskId; show("inbox"); };
  view.replaceChildren(
    h("header", { class: "detail-head" },
      story.responses.length ? scoreBadge(story.responses[0].score) : null,
      h("div", {},
        h("h2", { "data-testid": "customer-name", text: c.name || c.email || story.customer_id }),
        h("p", { class: "muted", text: [c.email, story.account_id, story.segment, story.customer_id].filter(Boolean).join(" · ") }),
        h("p", {}, h("span", { class: "chip", "data-testid": "customer-category", text: fmt.label(story.category) }), " ",
          h("span", { class: "muted", "data-testid": "customer-eligibility",
            text: e.eligible ? "may be surveyed now" : `next survey from ${fmt.when(e.next_eligible_at)}` })))),
    h("div", { class: "grid2" },
      h("article", { class: "card" }, h("h3", { text: `Answers (${story.responses.length})` }),
        h("ol", { class: "timeline", "data-testid": "customer-responses" }, story.responses.map((r) =>
          h("li", { "data-response-id": r.id },
            scoreBadge(r.score), " ", h("strong", { text: fmt.label(r.category) }), " ",
            h("span", { class: "muted", text: [fmt.when(r.responded_at), r.touchpoint, r.sentiment].filter(Boolean).join(" · ") }),
            h("blockquote", { text: r.comment || "(no comment)" }),
            h("p", { class: "chips" }, (r.themes || []).map((t) => h("span", { class: "chip", text: fmt.theme(t.id) }))))))),
      h("article", { class: "card" }, h("h3", { text: `Follow-up tasks (${story.tasks.length})` }),
        h("ul", { class: "task-list compact", "data-testid": "customer-tasks" }, story.tasks.map((t) => taskItem(t, openTaskHere))),
        h("h3", { text: "Business outcomes" }),
        h("ul", { class: "plain", "data-testid": "customer-outcomes" }, story.business_outcomes.length
          ? story.business_outcomes.map((o) => h("li", { text: [fmt.label(o.outcome), o.revenue !== null ? `${o.revenue} ${o.currency || ""}`.trim() : null, o.occurred_on].filter(Boolean).join(" · ") }))
          : h("li", { class: "muted", text: "None recorded." })),
        h("h3", { text: "Referral requests" }),
        h("ul", { class: "plain" }, story.referral_requests.length
          ? story.referral_requests.map((r) => h("li", { text: fmt.when(r.requested_at) }))
          : h("li", { class: "muted", text: "None sent." })))));
}

async function searchCustomer(event) {
  event.preventDefault();
  const text = $("#customer-search").value.trim();
  if (!text) return;
  if (!text.includes("@")) return openCustomer(text);
  try {
    const { customers } = await api("/v1/customers?" + new URLSearchParams({ email: text }));
    if (customers.length === 1) return openCustomer(customers[0].customer_id);
    banner(customers.length ? `${customers.length} customers use ${text}: ${customers.map((c) => c.customer_id).join(", ")}` : `No customer with the email ${text}.`);
  } catch (err) { if (err.status !== 401) banner(err.message); }
}

// ---------- review queue ----------
// The comments whose correction teaches the classifier most (GET /v1/classifier/review-queue).
// One click stores the ticked themes and the chosen sentiment as a correction (the same
// PUT the task pane uses) and the comment leaves the list.
async function renderReview({ more = false } = {}) {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (more && state.reviewCursor) params.set("cursor", state.reviewCursor);
  const page = await api("/v1/classifier/review-queue?" + params);
  state.reviewCursor = page.next_cursor;
  state.reviewItems = more ? state.reviewItems.concat(page.items) : page.items;
  $("#review-more").hidden = !page.next_cursor;
  const list = $("#review-list");
  list.replaceChildren(...state.reviewItems.map(reviewItem));
  if (!state.reviewItems.length) list.append(h("li", { class: "empty", "data-testid": "review-empty", text: "Nothing to review: the classifier is sure of every recent comment." }));
}

function reviewItem(item) {
  const tagged = new Set(item.themes.map((t) => t.id));
  const unsure = new Map(item.uncertain_themes.map((t) => [t.id, t.confidence]));
  const ids = Object.keys(state.themes || {});
  for (const id of [...tagged, ...unsure.keys()]) if (!ids.includes(id)) ids.push(id);
  // The uncertain themes first: they are what the question is about.
  ids.sort((a, b) => (unsure.has(b) - unsure.has(a)));
  const boxes = ids.map((id) => h("label", { class: "check" + (unsure.has(id) ? " unsure" : ""), title: unsure.has(id) ? `the classifier is unsure (${unsure.get(id).toFixed(2)})` : null },
    h("input", { type: "checkbox", value: id, checked: tagged.has(id), "data-testid": "review-theme-" + id, onchange: () => relabel() }), " " + fmt.theme(id) + (unsure.has(id) ? " ?" : "")));
  const sentiment = h("select", { "data-testid": "review-sentiment", onchange: () => relabel() },
    ["positive", "neutral", "negative"].map((v) => h("option", { value: v, text: v, selected: v === item.sentiment })));
  const chosen = () => boxes.map((l) => $("input", l)).filter((i) => i.checked).map((i) => i.value);
  const changed = () => sentiment.value !== item.sentiment || chosen().sort().join() !== [...tagged].sort().join();
  const save = h("button", { class: "primary", "data-testid": "review-save", hidden: !may("responses:write") }, "Confirm");
  const relabel = () => { save.textContent = changed() ? "Save correction" : "Confirm"; };
  const li = h("li", { class: "card review-item", "data-testid": "review-item", "data-response-id": item.response_id },
    h("div", { class: "detail-head" }, scoreBadge(item.score),
      h("p", { class: "chips" }, item.reasons.map((r) => h("span", { class: "chip reason", "data-testid": "review-reason", text: r })))),
    h("blockquote", { "data-testid": "review-comment", text: item.comment }),
    h("div", { class: "theme-picker" }, boxes),
    h("div", { class: "actions" }, sentiment, save));
  save.addEventListener("click", async () => {
    save.disabled = true;
    try {
      await api(`/v1/responses/${encodeURIComponent(item.response_id)}/classification`, { method: "PUT", body: { themes: chosen(), sentiment: sentiment.value } });
      state.reviewItems = state.reviewItems.filter((i) => i.response_id !== item.response_id);
      li.remove();
      if (!state.reviewItems.length) await renderReview();
      banner("Thank you: the correction wins from now on and teaches the next trained classifier.");
    } catch (err) { save.disabled = false; if (err.status !== 401) banner(err.message); }
  });
  return li;
}

// ---------- SLA board ----------
async function renderSla(followup) {
  const board = followup.sla_board;
  $("[data-testid=sla-open]").textContent = String(board.open);
  $("[data-testid=sla-due-soon]").textContent = String(board.due_soon);
  $("[data-testid=sla-due-soon-hours]").textContent = `within ${board.due_soon_hours} h`;
  $("[data-testid=sla-breached]").textContent = String(board.breached);
  teamChart($("#team-chart"), board.by_team);
  const soon = new Date(new Date(state.now).getTime() + board.due_soon_hours * 3600000).toISOString();
  const [breached, dueSoon] = await Promise.all([
    api("/v1/tasks?status=open&breached=true&limit=100"),
    api("/v1/tasks?" + new URLSearchParams({ status: "open", breached: "false", due_before: soon, limit: "100" })),
  ]);
  const open = (id) => { state.selected = id; show("inbox"); };
  fill($("#breached-list"), breached.tasks, open, "No breaches. ");
  fill($("#due-soon-list"), dueSoon.tasks.filter((t) => new Date(t.due_at) > new Date(state.now)), open, "Nothing due soon.");
}

function fill(list, tasks, onOpen, emptyText) {
  list.replaceChildren(...tasks.map((t) => taskItem(t, onOpen)));
  if (!tasks.length) list.append(h("li", { class: "empty", text: emptyText }));
}

function teamChart(container, teams) {
  if (!teams.length) return empty(container, "No task is waiting for a first touch.");
  const W = 720, rowH = 30, L = 110, R = 40, H = teams.length * rowH + 8;
  const max = Math.max(1, ...teams.map((t) => t.open));
  const w = (v) => (v * (W - L - R)) / max;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Open, due soon and breached tasks by team" });
  teams.forEach((t, i) => {
    const top = i * rowH + 4, ok = t.open - t.due_soon - t.breached;
    const g = s("g", { "data-testid": "team-row", "data-team": t.team, "data-open": t.open, "data-breached": t.breached });
    g.append(s("text", { x: L - 8, y: top + 16, class: "label", "text-anchor": "end" }, t.team));
    let left = L;
    for (const [v, cls] of [[t.breached, "neg"], [t.due_soon, "warn"], [ok, "neutral"]]) {
      if (v > 0) g.append(s("rect", { x: left, y: top + 2, width: w(v), height: 20, class: "bar " + cls }));
      left += w(v);
    }
    g.append(s("text", { x: left + 6, y: top + 17, class: "value" }, String(t.open)));
    g.append(s("title", {}, `${t.team}: ${t.open} waiting · ${t.due_soon} due soon · ${t.breached} breached`));
    svg.append(g);
  });
  container.replaceChildren(svg);
}

// ---------- wiring ----------
document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", signIn);
  $("#logout").addEventListener("click", () => signOut(""));
  $("#refresh").addEventListener("click", refresh);
  $("#period").addEventListener("change", refresh);
  for (const tab of $$(".tabs [role=tab]")) tab.addEventListener("click", () => show(tab.dataset.view));
  for (const b of $$("[data-interval]")) b.addEventListener("click", () => {
    state.interval = b.dataset.interval;
    for (const o of $$("[data-interval]")) o.setAttribute("aria-pressed", String(o === b));
    refresh();
  });
  $("#group-by").addEventListener("change", (e) => { state.groupBy = e.target.value; refresh(); });
  for (const b of $$("[data-export]")) b.addEventListener("click", () => download(b.dataset.export));
  const filters = $("#inbox-filters");
  filters.addEventListener("change", () => { filtersToAddress(); renderInbox().catch((err) => banner(err.message)); });
  filters.addEventListener("submit", (e) => { e.preventDefault(); filtersToAddress(); renderInbox().catch((err) => banner(err.message)); });
  $("#inbox-more").addEventListener("click", () => renderInbox({ more: true }).catch((err) => banner(err.message)));
  $("#review-more").addEventListener("click", () => renderReview({ more: true }).catch((err) => banner(err.message)));
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeTask(); });
  $("#customer-search-form").addEventListener("submit", searchCustomer);
  window.addEventListener("popstate", () => { if (sessionStorage.getItem(KEY_STORAGE)) route(); });
  if (sessionStorage.getItem(KEY_STORAGE)) start(); else signOut("");
});

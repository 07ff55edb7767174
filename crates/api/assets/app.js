// expansa dashboard: widgets over the HTTP API, arranged by the user (gridstack), layout saved
// per dashboard in the store. Amounts arrive as exact decimal strings and are formatted here
// with BigInt arithmetic, never through floating point (charts only draw with numbers).
"use strict";

const TEXT = {
  "pt-BR": {
    from: "De", to: "Até", segment: "Segmento", channel: "Canal", family: "Família", all: "todos",
    add_widget: "Adicionar widget", add: "Adicionar", login: "Entrar", logout: "Sair", remove: "Remover",
    vs_prev: "vs. mês anterior", loading: "Carregando…", saved: "Layout salvo.", updated: "Atualizado às",
    need_key: "Entre como usuário para salvar o layout.", save_failed: "Não foi possível salvar o layout: ",
    load_failed: "Não foi possível carregar: ", trail: "Clientes e linhas por trás de", customer: "Cliente",
    month: "Mês", kind: "Movimento", amount: "Valor", lines: "Linhas", total: "Total", none: "Nenhum movimento.",
    cohort: "Coorte", customers_col: "Clientes", product: "Produto", gain: "Ganho esperado", probability: "Probabilidade",
    made: "Feitas", accepted: "Aceitas", conversion: "Conversão", mrr_gained: "MRR ganho",
    in_range: "No período", found: "encontradas", offers_of: "Ofertas de", outcome: "Resultado",
    realised: "Ganho", forecast: "Previsto", no_offers: "Nenhuma oferta.",
    outcomes: { accepted: "aceita", declined: "recusada", open: "em aberto" },
    kinds: { new: "Novo", cross_sell: "Cross-sell", upsell: "Upsell", reactivation: "Reativação", downsell: "Downsell", churn: "Churn", fx: "Câmbio", entering_segment: "Entrada no segmento", leaving_segment: "Saída do segmento" },
    mrr_line: "MRR final",
    tab_dashboard: "Painel", tab_import: "Importar", import_title: "Importar um export",
    tab_admin: "Usuários", admin_title: "Usuários",
    admin_hint: "Quem entra no painel e o que pode fazer: leitura (relatórios e painéis), analista (também cotações e layouts), admin (também gravações, importações e usuários). Desativar encerra as sessões na hora; uma nova senha reativa.",
    admin_name: "Nome", admin_role: "Papel", admin_password: "Senha (12 caracteres ou mais)", admin_create: "Criar usuário",
    admin_state: "Situação", admin_new_password: "Nova senha", admin_active: "ativo", admin_disabled: "desativado em",
    admin_disable: "Desativar", admin_reset: "Trocar senha", admin_created: "Usuário criado: ", admin_role_changed: "Papel alterado: ",
    admin_disabled_done: "Usuário desativado (sessões encerradas): ", admin_reset_done: "Senha trocada (sessões encerradas): ",
    admin_failed: "Não foi possível: ", admin_you: "você",
    roles: { viewer: "leitura", analyst: "analista", admin: "admin" },
    import_hint: "Envie os arquivos do export (CSV, JSON, .xlsx, .ods), escolha a origem, confira o relatório e as primeiras linhas, corrija o mapeamento se preciso e importe para a base como um evento. Pré-visualizar e importar exigem entrar como admin.",
    import_kind: "Origem", import_files: "Arquivos", import_timezone: "Fuso horário", import_mrr_at: "MRR no fim de",
    import_skip: "Deixar de fora as linhas recusadas", import_mapping: "Mapeamento (TOML)",
    import_preview: "Pré-visualizar", import_commit: "Importar para a base", mapping_file: "Arquivo de mapeamento (TOML)",
    no_mapping: "Esta origem é convertida por código: não tem mapeamento.",
    need_files: "Escolha ao menos um arquivo.", need_key_import: "Entre como admin para pré-visualizar e importar.",
    previewing: "Convertendo…", previewed: "Pré-visualização pronta: confira e importe.",
    refused: "A conversão recusou os arquivos: ", preview_failed: "Não foi possível pré-visualizar: ",
    committing: "Importando…", committed: "Importado como evento ", unchanged: "Nada mudou: a base já tinha estas linhas.",
    commit_failed: "Não foi possível importar: ", report_of: "Relatório da conversão", first_rows: "Primeiras linhas de",
    mrr_at: "MRR em", paying: "Clientes pagantes", book_written: "Livro", file: "Arquivo", reason: "Motivo", rows: "Linhas",
    not_rebuilt: "Meses não reconstruídos", notes: "Notas",
    import_outcomes: { mapped: "mapeadas", merged: "combinadas", skipped: "ignoradas", refused: "recusadas" },
    written_names: { lines: "linhas", customers: "clientes", products: "produtos", contracts: "contratos" },
    gross_rate: "Taxa de renovação bruta", net_rate: "Líquida", up_for_renewal: "Em renovação", renewed_arr: "Renovado",
    next_renewals: "Próximas renovações a partir de", contract: "Contrato", end: "Fim", days: "Dias", arr: "ARR",
    renewal_quote: "Cotação", status_col: "Situação", renew: "Renovar", renewing: "Renovando…",
    renewed_as: "Renovado: evento ", renew_failed: "Não foi possível renovar: ", no_renewals: "Nenhuma renovação na janela.",
    renewals_of: "Contratos em renovação em", not_priced: "sem cotação",
    statuses: { renewed: "renovado", churned: "perdido", open: "em aberto" },
    signed_on: "Data", event_col: "Evento", signed_by: "Assinado por", invoice_no: "Fatura", deliveries: "Envios", not_signed: "não assinado",
    no_amendments: "Nenhum aditivo pelo portal.", portal_refused: "Só administradores veem os aditivos: ",
    sent_of: "enviados", pending: "pendentes", customer_id: "Cliente (id)", link_days: "Dias",
    make_link: "Gerar link do portal", link_made: "Link (mostrado só agora): ", link_failed: "Não foi possível gerar o link: ",
  },
  en: {
    from: "From", to: "To", segment: "Segment", channel: "Channel", family: "Family", all: "all",
    add_widget: "Add widget", add: "Add", login: "Log in", logout: "Log out", remove: "Remove",
    vs_prev: "vs. previous month", loading: "Loading…", saved: "Layout saved.", updated: "Updated at",
    need_key: "Log in to save the layout.", save_failed: "Could not save the layout: ",
    load_failed: "Could not load: ", trail: "Customers and lines behind", customer: "Customer",
    month: "Month", kind: "Movement", amount: "Amount", lines: "Lines", total: "Total", none: "No movements.",
    cohort: "Cohort", customers_col: "Customers", product: "Product", gain: "Expected gain", probability: "Probability",
    made: "Made", accepted: "Accepted", conversion: "Conversion", mrr_gained: "MRR gained",
    in_range: "In the range", found: "found", offers_of: "Offers of", outcome: "Outcome",
    realised: "Gain", forecast: "Forecast", no_offers: "No offers.",
    outcomes: { accepted: "accepted", declined: "declined", open: "open" },
    kinds: { new: "New", cross_sell: "Cross-sell", upsell: "Upsell", reactivation: "Reactivation", downsell: "Downsell", churn: "Churn", fx: "FX", entering_segment: "Entering segment", leaving_segment: "Leaving segment" },
    mrr_line: "MRR end",
    tab_dashboard: "Dashboard", tab_import: "Import", import_title: "Import an export",
    tab_admin: "Users", admin_title: "Users",
    admin_hint: "Who logs in to the dashboard and what they may do: viewer (reports and dashboards), analyst (also quotes and layouts), admin (also writes, imports and users). Disabling ends their sessions at once; a new password enables them again.",
    admin_name: "Name", admin_role: "Role", admin_password: "Password (12 characters or more)", admin_create: "Add user",
    admin_state: "State", admin_new_password: "New password", admin_active: "active", admin_disabled: "disabled on",
    admin_disable: "Disable", admin_reset: "Set password", admin_created: "User added: ", admin_role_changed: "Role changed: ",
    admin_disabled_done: "User disabled (sessions ended): ", admin_reset_done: "Password set (sessions ended): ",
    admin_failed: "Could not do it: ", admin_you: "you",
    roles: { viewer: "viewer", analyst: "analyst", admin: "admin" },
    import_hint: "Upload the export's files (CSV, JSON, .xlsx, .ods), choose the source, check the report and the first rows, fix the mapping if needed and commit it to the store as one event. Previewing and committing need an admin's login.",
    import_kind: "Source", import_files: "Files", import_timezone: "Time zone", import_mrr_at: "MRR at the end of",
    import_skip: "Leave refused rows out", import_mapping: "Mapping (TOML)",
    import_preview: "Preview", import_commit: "Commit to the store", mapping_file: "Mapping file (TOML)",
    no_mapping: "This source is converted by code: it has no mapping.",
    need_files: "Choose at least one file.", need_key_import: "Log in as an admin to preview and commit.",
    previewing: "Converting…", previewed: "Preview ready: check it and commit.",
    refused: "The conversion refused the files: ", preview_failed: "Could not preview: ",
    committing: "Committing…", committed: "Committed as event ", unchanged: "Nothing changed: the store already held these rows.",
    commit_failed: "Could not commit: ", report_of: "Conversion report", first_rows: "First rows of",
    mrr_at: "MRR at", paying: "Paying customers", book_written: "Book", file: "File", reason: "Reason", rows: "Rows",
    not_rebuilt: "Months not rebuilt", notes: "Notes",
    import_outcomes: { mapped: "mapped", merged: "merged", skipped: "skipped", refused: "refused" },
    written_names: { lines: "lines", customers: "customers", products: "products", contracts: "contracts" },
    gross_rate: "Gross renewal rate", net_rate: "Net", up_for_renewal: "Up for renewal", renewed_arr: "Renewed",
    next_renewals: "Next renewals from", contract: "Contract", end: "End", days: "Days", arr: "ARR",
    renewal_quote: "Quote", status_col: "Status", renew: "Renew", renewing: "Renewing…",
    renewed_as: "Renewed: event ", renew_failed: "Could not renew: ", no_renewals: "No renewal in the window.",
    renewals_of: "Contracts up for renewal in", not_priced: "not priced",
    statuses: { renewed: "renewed", churned: "churned", open: "open" },
    signed_on: "Date", event_col: "Event", signed_by: "Signed by", invoice_no: "Invoice", deliveries: "Deliveries", not_signed: "not signed",
    no_amendments: "No amendment through the portal.", portal_refused: "Only admins see the amendments: ",
    sent_of: "sent", pending: "pending", customer_id: "Customer (id)", link_days: "Days",
    make_link: "Make a portal link", link_made: "Link (shown this once): ", link_failed: "Could not make the link: ",
  },
};

// Every widget: where its value comes from and how it is shown. The list is the server's
// (/assets/widgets.json, the one it checks saved layouts against), read at start into a Map:
// ids come from stored layouts, so they are never looked up on a plain object (`constructor`
// and `__proto__` would find Object's own members).
let WIDGETS = new Map();
let GRID = { columns: 12, rows: 200 };

// obj[key] when obj has its own key `key`, else undefined (never an inherited member).
const own = (obj, key) => (obj && typeof key === "string" && Object.hasOwn(obj, key) ? obj[key] : undefined);

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const dashboardId = params.get("dashboard") || "main";
const knownLang = (lang) => (Object.hasOwn(TEXT, lang) ? lang : null);
const state = {
  lang: knownLang(localStorage.getItem("expansa.lang")) || knownLang(params.get("lang")) || "pt-BR",
  data: {},
  charts: new Map(),
};
const t = (key) => own(TEXT[state.lang], key);
const kindName = (kind) => own(t("kinds"), kind) ?? String(kind);

// ---- exact decimal strings ------------------------------------------------------------
function scaled(s, dp) {
  // The decimal string `s` as a BigInt of units of 10^-dp, rounded half away from zero.
  const neg = s.startsWith("-");
  const [int, frac = ""] = s.replace(/^[-+]/, "").split(".");
  const digits = (frac + "0".repeat(dp + 1)).slice(0, dp + 1);
  let n = BigInt(int || "0") * 10n ** BigInt(dp + 1) + BigInt(digits || "0");
  n = (n + 5n) / 10n;
  return neg ? -n : n;
}

function plain(n, dp) {
  // A BigInt of units of 10^-dp as a decimal string.
  const neg = n < 0n;
  const s = (neg ? -n : n).toString().padStart(dp + 1, "0");
  const int = s.slice(0, s.length - dp);
  const frac = s.slice(s.length - dp);
  return (neg && n !== 0n ? "-" : "") + int + (dp ? "." + frac : "");
}

function grouped(s, dp) {
  // `s` rounded to dp places with the locale's separators: 1.234,56 (pt-BR), 1,234.56 (en).
  const n = scaled(s, dp);
  const p = plain(n < 0n ? -n : n, dp);
  const [int, frac] = p.split(".");
  const [thousands, decimal] = state.lang === "pt-BR" ? [".", ","] : [",", "."];
  const withGroups = int.replace(/\B(?=(\d{3})+(?!\d))/g, thousands);
  return { negative: n < 0n, text: withGroups + (frac !== undefined ? decimal + frac : "") };
}

const SYMBOLS = { BRL: "R$", USD: "US$", EUR: "€", GBP: "£" };
function money(s, currency) {
  const { negative, text } = grouped(s, currency === "JPY" ? 0 : 2);
  const symbol = own(SYMBOLS, currency) || currency;
  // As the CLI prints: `R$ 1.234,56` in pt-BR, `R$1,234.56` in en.
  const body = state.lang === "pt-BR" ? `${symbol} ${text}` : `${symbol}${text}`;
  return (negative ? "-" : "") + body;
}

function show(value, format, currency) {
  if (value === null || value === undefined) return "–";
  const s = String(value);
  switch (format) {
    case "money": return money(s, currency);
    case "count": { const g = grouped(s, 0); return (g.negative ? "-" : "") + g.text; }
    case "percent": {
      const g = grouped(plain(scaled(s, 4) * 100n, 4), 2);
      return (g.negative ? "-" : "") + g.text + "%";
    }
    case "times": { const g = grouped(s, 2); return (g.negative ? "-" : "") + g.text + "×"; }
    default: return s;
  }
}

function difference(a, b) {
  // a - b of two decimal strings, exactly (10 places).
  return plain(scaled(String(a), 10) - scaled(String(b), 10), 10);
}

// ---- months -----------------------------------------------------------------------------
function addMonths(month, n) {
  const [y, m] = month.split("-").map(Number);
  const k = y * 12 + (m - 1) + n;
  return `${Math.floor(k / 12)}-${String((k % 12) + 1).padStart(2, "0")}`;
}
function lastDay(month) {
  const [y, m] = month.split("-").map(Number);
  return `${month}-${String(new Date(Date.UTC(y, m, 0)).getUTCDate()).padStart(2, "0")}`;
}

// ---- API ----------------------------------------------------------------------------------
// Who is logged in (GET /api/v1/session): the page acts by the session's cookie, and its
// writes carry the session's CSRF token. (Programs use API keys, in their own requests.)
let session = { kind: "anonymous", name: null, role: "viewer", csrf: null };

function withAuth(options) {
  const headers = Object.assign({}, options.headers || {});
  const method = (options.method || "GET").toUpperCase();
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  return Object.assign({}, options, { headers, credentials: "same-origin" });
}

// Whether the page may write: only with a session (reads may be public).
function mayWrite() {
  return Boolean(session.csrf);
}

async function api(path, options = {}) {
  const response = await fetch(path, withAuth(options));
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = body.error ? body.error.message : response.statusText;
    throw new Error(message);
  }
  return body;
}

function filterQuery() {
  const q = new URLSearchParams();
  for (const key of ["segment", "channel", "family"]) {
    const v = $(key).value;
    if (v) q.append("where", `${key}=${v}`);
  }
  return q;
}

async function loadData() {
  const from = $("from").value, to = $("to").value;
  const q = filterQuery();
  q.set("from", addMonths(from, -1));
  q.set("to", to);
  const [kpis, movements] = await Promise.all([api(`/api/v1/kpis?${q}`), api(`/api/v1/movements?${q}`)]);
  state.data = { kpis, movements, from, to };
  const present = new Set(layoutWidgets().map((w) => w.id));
  const jobs = [];
  if (present.has("cohorts")) {
    const c = filterQuery(); c.set("from", from); c.set("to", to);
    jobs.push(api(`/api/v1/cohorts?${c}`).then((d) => (state.data.cohorts = d)));
  }
  if (present.has("opportunities")) {
    // The month's list, and how many there were at the end of the month before.
    const now = filterQuery(); now.set("at", lastDay(to)); now.set("top", "10");
    const before = filterQuery(); before.set("at", lastDay(addMonths(to, -1))); before.set("top", "1");
    jobs.push(api(`/api/v1/opportunities?${now}`).then((d) => (state.data.opportunities = d)));
    jobs.push(api(`/api/v1/opportunities?${before}`).then((d) => (state.data.opportunitiesBefore = d)));
  }
  if (present.has("renewals")) {
    // The desk from the month's last day (the next renewals), and the month's own contracts
    // as of the day after it (their outcome: the trail behind the month's rate).
    const at = lastDay(to);
    const next = addMonths(to, 1) + "-01";
    const days = Number(at.slice(8));
    // The dashboard's filters too: the contracts of the kept customers holding a kept product.
    const desk = filterQuery(); desk.set("at", at); desk.set("within", "90");
    const month = filterQuery(); month.set("at", next); month.set("within", String(days));
    jobs.push(api(`/api/v1/renewals?${desk}`).then((d) => (state.data.renewals = d)));
    jobs.push(api(`/api/v1/renewals?${month}`).then((d) => (state.data.renewalsOfMonth = d)));
  }
  if (present.has("portal")) {
    // Admins only: anyone else is told why, and the other widgets load all the same.
    jobs.push(api("/api/v1/portal/amendments?limit=10")
      .then((d) => (state.data.portal = { list: d }))
      .catch((e) => (state.data.portal = { error: e.message })));
  }
  if (present.has("offers")) {
    const o = filterQuery(); o.set("from", addMonths(from, -1)); o.set("to", to);
    jobs.push(api(`/api/v1/offers?${o}`).then((d) => (state.data.offers = d)));
  }
  await Promise.all(jobs);
}

// ---- widgets ------------------------------------------------------------------------------
let grid;

function layoutWidgets() {
  // gridstack leaves out a width or height equal to the widget's smallest.
  return grid.save(false).map((n) => {
    const [minW, minH] = (WIDGETS.get(n.id) || { min: [1, 1] }).min;
    return { id: n.id, x: n.x ?? 0, y: n.y ?? 0, w: n.w ?? minW, h: n.h ?? minH };
  });
}

function widgetElement(id) {
  return document.querySelector(`.grid-stack-item[gs-id="${CSS.escape(id)}"]`);
}

function addWidget(w) {
  // Only a known widget, once; a stored place is used only when it is a whole number.
  const spec = w && typeof w.id === "string" ? WIDGETS.get(w.id) : undefined;
  if (!spec || widgetElement(w.id)) return;
  const whole = (v) => Number.isInteger(v) && v >= 0;
  const within = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
  const el = document.createElement("div");
  el.className = "grid-stack-item";
  const [dw, dh] = spec.size;
  const [minW, minH] = spec.min;
  const attrs = {
    "gs-id": w.id,
    "gs-w": whole(w.w) ? within(w.w, minW, GRID.columns) : dw,
    "gs-h": whole(w.h) ? within(w.h, minH, GRID.rows) : dh,
    "gs-min-w": minW, "gs-min-h": minH,
  };
  if (whole(w.x)) attrs["gs-x"] = Math.min(w.x, GRID.columns - 1);
  if (whole(w.y)) attrs["gs-y"] = Math.min(w.y, GRID.rows - 1);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  el.dataset.widget = w.id;
  el.innerHTML = `<div class="grid-stack-item-content">
      <div class="widget-head"><h3></h3><button type="button" class="remove">×</button></div>
      <div class="widget-body"></div></div>`;
  el.querySelector(".remove").addEventListener("click", () => {
    const chart = state.charts.get(w.id);
    if (chart) { chart.destroy(); state.charts.delete(w.id); }
    grid.removeWidget(el);
  });
  $("grid").appendChild(el);
  grid.makeWidget(el);
}

function renderWidget(id) {
  const spec = WIDGETS.get(id);
  const el = spec && widgetElement(id);
  if (!el) return;
  el.querySelector("h3").textContent = spec.title[state.lang];
  el.querySelector(".remove").title = t("remove");
  const body = el.querySelector(".widget-body");
  if (!state.data.kpis) { body.textContent = t("loading"); return; }
  switch (spec.kind) {
    case "chart": return renderChart(id, body);
    case "cohorts": return renderCohorts(body);
    case "opportunities": return renderOpportunities(body);
    case "offers": return renderOffers(body);
    case "renewals": return renderRenewals(body);
    case "portal": return renderPortal(body);
    default: return renderKpi(id, spec, body);
  }
}

function monthRow(source, month) {
  return (state.data[source].months || []).find((m) => m.month === month);
}

function renderKpi(id, spec, body) {
  const { to } = state.data;
  const currency = state.data[spec.source].currency;
  const now = monthRow(spec.source, to);
  const before = monthRow(spec.source, addMonths(to, -1));
  const raw = now ? now[spec.field] : null;
  body.className = "widget-body kpi";
  body.innerHTML = `<div class="month"></div><div class="value" tabindex="0"></div><div class="delta"></div>`;
  body.querySelector(".month").textContent = to;
  const value = body.querySelector(".value");
  value.textContent = show(raw, spec.format, currency);
  value.dataset.raw = raw ?? "";
  showDelta(body.querySelector(".delta"), raw, before ? before[spec.field] : null, spec.format, currency);
  opens(value, () => openTrail(spec, to));
}

function showDelta(delta, now, before, format, currency) {
  // The change from the month before, when both months have a value.
  if (now === null || now === undefined || before === null || before === undefined) return;
  const d = difference(now, before);
  const sign = d.startsWith("-") ? "down" : /[1-9]/.test(d) ? "up" : "";
  delta.className = `delta ${sign}`;
  const shown = format === "percent" ? show(d, "percent", currency).replace(/%$/, " p.p.") : show(d, format, currency);
  delta.textContent = `${sign === "up" ? "▲ +" : sign === "down" ? "▼ " : ""}${shown} ${t("vs_prev")}`;
}

function opens(element, open) {
  // A value that opens what is behind it, by mouse or keyboard.
  element.onclick = open;
  element.onkeydown = (e) => { if (e.key === "Enter") open(); };
}

function showTrail(title) {
  // The trail dialog, open, with its body to fill.
  const dialog = $("trail");
  $("trail-title").textContent = title;
  const body = $("trail-body");
  body.textContent = t("loading");
  if (!dialog.open) dialog.showModal();
  return body;
}

async function openTrail(spec, month) {
  const q = filterQuery();
  q.set("from", month);
  q.set("to", month);
  if (spec.kind) q.set("kind", spec.kind);
  const body = showTrail(`${t("trail")} ${spec.title[state.lang]} · ${month}`);
  try {
    const detail = await api(`/api/v1/movements/detail?${q}`);
    if (!detail.movements.length) { body.textContent = t("none"); return; }
    const rows = detail.movements.map((m) => `<tr><td>${esc(m.customer)}</td><td>${esc(kindName(m.kind))}</td>
        <td class="num">${esc(money(m.amount, detail.currency))}</td><td>${esc(m.lines.join(" "))}</td></tr>`);
    const total = detail.movements.reduce((acc, m) => acc + scaled(m.amount, 10), 0n);
    body.innerHTML = `<table><thead><tr><th>${t("customer")}</th><th>${t("kind")}</th><th class="num">${t("amount")}</th><th>${t("lines")}</th></tr></thead>
      <tbody>${rows.join("")}</tbody><tfoot><tr><th>${t("total")}</th><th></th><th class="num">${esc(money(plain(total, 10), detail.currency))}</th><th></th></tr></tfoot></table>`;
  } catch (e) {
    body.textContent = t("load_failed") + e.message;
  }
}

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

const KIND_COLORS = { new: "#2e7d32", cross_sell: "#1565c0", upsell: "#6a1b9a", reactivation: "#00838f", downsell: "#ef6c00", churn: "#c62828", fx: "#8e24aa", entering_segment: "#7986cb", leaving_segment: "#a1887f" };

function renderChart(id, body) {
  const months = state.data.movements.months.filter((m) => m.month >= state.data.from);
  let canvas = body.querySelector("canvas");
  if (!canvas) {
    body.innerHTML = '<div class="chart-box"><canvas></canvas></div>';
    canvas = body.querySelector("canvas");
  }
  if (state.charts.has(id)) state.charts.get(id).destroy();
  // The segment moves only show when a family filter made some.
  const kinds = Object.keys(KIND_COLORS).filter((k) => !k.endsWith("_segment") || months.some((m) => /[1-9]/.test(m[k])));
  const datasets = kinds.map((k) => ({
    label: kindName(k), data: months.map((m) => Number(m[k])), backgroundColor: KIND_COLORS[k], stack: "m",
  }));
  datasets.push({ type: "line", label: t("mrr_line"), data: months.map((m) => Number(m.mrr_end)), borderColor: "#17324d", yAxisID: "mrr" });
  state.charts.set(id, new Chart(canvas, {
    type: "bar",
    data: { labels: months.map((m) => m.month), datasets },
    options: {
      responsive: true, maintainAspectRatio: false, animation: false,
      // A bar opens the customers and lines behind it.
      onClick: (_event, elements) => {
        const hit = elements.find((e) => e.datasetIndex < kinds.length);
        if (!hit) return;
        const kind = kinds[hit.datasetIndex];
        openTrail({ kind, title: { "pt-BR": TEXT["pt-BR"].kinds[kind], en: TEXT.en.kinds[kind] } }, months[hit.index].month);
      },
      scales: { x: { stacked: true }, y: { stacked: true }, mrr: { position: "right", grid: { drawOnChartArea: false } } },
    },
  }));
}

function renderCohorts(body) {
  const c = state.data.cohorts;
  if (!c) { body.textContent = t("loading"); return; }
  const width = Math.max(0, ...c.cohorts.map((r) => r.cells.length));
  const head = `<tr><th>${t("cohort")}</th><th class="num">${t("customers_col")}</th>${Array.from({ length: width }, (_, i) => `<th>${i}</th>`).join("")}</tr>`;
  const rows = c.cohorts.map((r) => {
    const cells = r.cells.map((v) => {
      if (v === null) return "<td></td>";
      const pct = Number(scaled(v, 2)); // whole percent, for the colour only
      const shade = Math.max(0, Math.min(100, pct));
      return `<td data-shade="${shade}">${esc(show(v, "percent"))}</td>`;
    });
    return `<tr><th>${esc(r.cohort)}</th><td class="num">${esc(r.customers)}</td>${cells.join("")}</tr>`;
  });
  body.innerHTML = `<table class="heat"><thead>${head}</thead><tbody>${rows.join("")}</tbody></table>`;
  // Colours set through the DOM, not a style attribute (the page's CSP allows no inline style).
  for (const td of body.querySelectorAll("td[data-shade]")) {
    td.style.background = `hsl(152 45% ${100 - Number(td.dataset.shade) * 0.45}%)`;
  }
}

function renderOpportunities(body) {
  const o = state.data.opportunities;
  if (!o) { body.textContent = t("loading"); return; }
  const before = state.data.opportunitiesBefore;
  const rows = o.opportunities.map((x) => `<tr><td>${esc(x.customer_name || x.customer_id)}</td>
      <td>${esc(kindName(x.kind))}: ${esc(x.product_id)}</td>
      <td class="num">${esc(show(x.probability, "percent"))}</td>
      <td class="num">${esc(money(x.expected_gain, o.currency))}</td></tr>`);
  body.innerHTML = `<div class="summary"><span class="found"></span> <span class="delta"></span></div>
    <table><thead><tr><th>${t("customer")}</th><th>${t("product")}</th><th class="num">${t("probability")}</th><th class="num">${t("gain")}</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
  const found = body.querySelector(".found");
  found.textContent = `${show(o.found, "count")} ${t("found")} · ${o.at}`;
  found.dataset.raw = o.found;
  showDelta(body.querySelector(".delta"), o.found, before ? before.found : null, "count");
}

// The latest amendments customers made on the portal: who signed, the event that applied it,
// its invoice, its totals and how many of its deliveries were sent.
function renderPortal(body) {
  const p = state.data.portal;
  if (!p) { body.textContent = t("loading"); return; }
  body.className = "widget-body portal";
  if (p.error) { body.textContent = t("portal_refused") + p.error; return; }
  const form = `<form class="portal-link"><label>${t("customer_id")} <input name="customer" required maxlength="200"></label>
    <label>${t("link_days")} <input name="days" type="number" min="1" max="90" step="1" value="7"></label>
    <button type="submit">${t("make_link")}</button><output class="link"></output></form>`;
  if (!p.list.length) {
    body.innerHTML = `${form}<p>${esc(t("no_amendments"))}</p>`;
    attachLinkForm(body);
    return;
  }
  const rows = p.list.map((a) => {
    const totals = ((a.quote && a.quote.totals) || []).map((x) => money(x.total, x.currency)).join(" + ");
    const sent = a.deliveries.filter((d) => d.state === "sent").length;
    const pending = a.deliveries.length - sent;
    const signer = a.signature ? `${a.signature.name} <${a.signature.email}>` : t("not_signed");
    return `<tr data-amendment="${esc(a.id)}" data-pending="${pending}">
      <td>${esc(a.created_at.slice(0, 16).replace("T", " "))}</td>
      <td>${esc(a.customer_id)} · ${esc(a.contract)}</td>
      <td>${esc(signer)}</td>
      <td class="num">${a.event === null ? "" : esc(String(a.event))}</td>
      <td class="num">${a.invoice ? esc(String(a.invoice.number)) : ""}</td>
      <td class="num">${esc(totals)}</td>
      <td>${sent} ${esc(t("sent_of"))}${pending ? `, ${pending} ${esc(t("pending"))}` : ""}</td></tr>`;
  });
  body.innerHTML = `${form}<table><thead><tr><th>${t("signed_on")}</th><th>${t("contract")}</th><th>${t("signed_by")}</th>
    <th class="num">${t("event_col")}</th><th class="num">${t("invoice_no")}</th><th class="num">Total</th><th>${t("deliveries")}</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table>`;
  attachLinkForm(body);
}

// The widget's form: `POST /api/v1/portal/links` with the admin's session; the link's URL is
// shown this once (the store keeps only its hash).
function attachLinkForm(body) {
  const form = body.querySelector("form.portal-link");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const out = form.querySelector("output.link");
    const customer = form.elements.customer.value.trim();
    const days = Number(form.elements.days.value);
    try {
      const made = await api("/api/v1/portal/links", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ customer, days }),
      });
      out.textContent = t("link_made") + location.origin + made.path;
      out.dataset.path = made.path;
    } catch (err) {
      out.textContent = t("link_failed") + err.message;
      delete out.dataset.path;
    }
  });
}

function offerMonth(month) {
  return (state.data.offers.by_month || []).find((m) => m.key === month);
}

function renderOffers(body) {
  const o = state.data.offers;
  if (!o) { body.textContent = t("loading"); return; }
  const { from, to } = state.data;
  const now = offerMonth(to);
  const before = offerMonth(addMonths(to, -1));
  // The range's own figures (the report starts a month early, for the change).
  const range = o.by_month.filter((m) => m.key >= from);
  const sum = (field) => range.reduce((acc, m) => acc + m[field], 0);
  const gained = plain(range.reduce((acc, m) => acc + scaled(m.mrr_gained, 10), 0n), 10);
  body.className = "widget-body kpi";
  body.innerHTML = `<div class="month"></div><div class="value" tabindex="0"></div><div class="delta"></div>
    <div class="counts"></div><table><tbody></tbody></table>`;
  body.querySelector(".month").textContent = to;
  const value = body.querySelector(".value");
  value.textContent = show(now ? now.conversion_rate : null, "percent");
  value.dataset.raw = (now && now.conversion_rate) ?? "";
  showDelta(body.querySelector(".delta"), now && now.conversion_rate, before && before.conversion_rate, "percent");
  if (now) {
    body.querySelector(".counts").textContent =
      `${t("accepted")} ${now.accepted} / ${now.accepted + now.declined} · ${t("made")} ${now.made} · ${t("mrr_gained")} ${money(now.mrr_gained, o.currency)}`;
  }
  body.querySelector("tbody").innerHTML = `<tr><th>${t("in_range")}</th>
    <td class="num">${esc(`${t("accepted")} ${sum("accepted")} / ${sum("accepted") + sum("declined")} · ${t("made")} ${sum("made")}`)}</td>
    <td class="num">${esc(money(gained, o.currency))}</td></tr>`;
  opens(value, () => openOffers(to));
}

function openOffers(month) {
  // The offers made in the month: who, what, the outcome, what it brought and the forecast.
  const o = state.data.offers;
  const body = showTrail(`${t("offers_of")} ${month}`);
  const list = (o.offers || []).filter((x) => x.offered_on.startsWith(month));
  if (!list.length) { body.textContent = t("no_offers"); return; }
  const rows = list.map((x) => `<tr><td>${esc(x.customer_id)}</td><td>${esc(kindName(x.kind))}: ${esc(x.product_id)}</td>
      <td>${esc(own(t("outcomes"), x.outcome || "open") ?? x.outcome)}</td><td class="num">${esc(money(x.gain, o.currency))}</td>
      <td class="num">${esc(money(x.forecast, o.currency))}</td><td>${esc(x.line_id || "")}</td></tr>`);
  body.innerHTML = `<table><thead><tr><th>${t("customer")}</th><th>${t("product")}</th><th>${t("outcome")}</th>
    <th class="num">${t("realised")}</th><th class="num">${t("forecast")}</th><th>${t("lines")}</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table>`;
}

function renderRenewals(body) {
  // The month's gross renewal rate (kpis), its change and the trail behind it; the next
  // renewals with their value, each open one renewable from its row (an admin's session needed).
  const desk = state.data.renewals;
  if (!desk) { body.textContent = t("loading"); return; }
  const { to } = state.data;
  const currency = state.data.kpis.currency;
  const now = monthRow("kpis", to);
  const before = monthRow("kpis", addMonths(to, -1));
  body.className = "widget-body kpi renewals";
  body.innerHTML = `<div class="month"></div><div class="value" tabindex="0"></div><div class="delta"></div>
    <div class="counts"></div><div class="summary next"></div><div class="desk-status"></div>
    <table class="desk"><thead><tr><th>${t("customer")}</th><th>${t("contract")}</th><th>${t("end")}</th>
    <th class="num">${t("days")}</th><th class="num">${t("arr")}</th><th class="num">${t("renewal_quote")}</th>
    <th>${t("status_col")}</th><th></th></tr></thead><tbody></tbody></table>`;
  body.querySelector(".month").textContent = `${to} · ${t("gross_rate")}`;
  const value = body.querySelector(".value");
  const raw = now ? now.gross_renewal_rate : null;
  value.textContent = show(raw, "percent");
  value.dataset.raw = raw ?? "";
  showDelta(body.querySelector(".delta"), raw, before ? before.gross_renewal_rate : null, "percent");
  if (now) {
    body.querySelector(".counts").textContent =
      `${t("net_rate")} ${show(now.net_renewal_rate, "percent")} · ${t("up_for_renewal")} ${money(now.renewal_arr, currency)} · ${t("renewed_arr")} ${money(now.renewed_arr, currency)}`;
  }
  body.querySelector(".next").textContent = `${t("next_renewals")} ${desk.at}`;
  const next = desk.renewals.filter((r) => r.days_left >= 0).slice(0, 10);
  const rows = next.map((r) => {
    const quote = r.quote ? money(r.quote.arr, desk.currency) : t("not_priced");
    const renewable = r.status === "open" && r.quote;
    return `<tr data-contract="${esc(r.contract)}" data-status="${esc(r.status)}"><td>${esc(r.customer_name || r.customer_id)}</td>
      <td>${esc(r.contract)}</td><td>${esc(r.end)}</td><td class="num">${esc(r.days_left)}</td>
      <td class="num" data-raw="${esc(r.arr)}">${esc(money(r.arr, desk.currency))}</td>
      <td class="num"${r.quote_error ? ` title="${esc(r.quote_error)}"` : ""}>${esc(quote)}</td>
      <td class="status-${esc(r.status)}">${esc(own(t("statuses"), r.status) ?? r.status)}</td>
      <td>${renewable ? `<button type="button" class="renew" data-contract="${esc(r.contract)}">${esc(t("renew"))}</button>` : ""}</td></tr>`;
  });
  body.querySelector("tbody").innerHTML = rows.length ? rows.join("") : `<tr><td colspan="8">${esc(t("no_renewals"))}</td></tr>`;
  for (const button of body.querySelectorAll("button.renew")) {
    button.addEventListener("click", () => renewFromDesk(button.dataset.contract));
  }
  showDeskStatus();
  opens(value, () => openRenewals(to));
}

// The desk's last message (renewing, renewed as event N, refused), kept across the widget's
// renderings: a live update re-renders the widgets a moment after the renewal it reports.
function showDeskStatus() {
  const line = widgetElement("renewals")?.querySelector(".desk-status");
  if (!line || !state.deskStatus) return;
  line.className = `desk-status ${state.deskStatus.kind}`;
  line.textContent = state.deskStatus.text;
}

async function renewFromDesk(contract) {
  // `quote renew --apply` for the row: POST /api/v1/quotes/renew, idempotent per contract.
  // The server refuses it without an admin's session; its answer is shown as it is.
  state.deskStatus = { kind: "", text: t("renewing") };
  showDeskStatus();
  const headers = { "Content-Type": "application/json", "Idempotency-Key": `desk-renew-${contract}` };
  try {
    const body = await api("/api/v1/quotes/renew", {
      method: "POST", headers, body: JSON.stringify({ contract, apply: true }),
    });
    state.deskStatus = { kind: "done", text: t("renewed_as") + body.applied.event };
    await refresh();
    document.body.dataset.renewed = contract;
  } catch (e) {
    state.deskStatus = { kind: "failed", text: t("renew_failed") + e.message };
    showDeskStatus();
    document.body.dataset.renewRefused = contract;
  }
}

function openRenewals(month) {
  // The contracts whose term ends in the month, with their outcome as of the day after it.
  const d = state.data.renewalsOfMonth;
  const body = showTrail(`${t("renewals_of")} ${month}`);
  const list = ((d && d.renewals) || []).filter((r) => r.end.startsWith(month));
  if (!list.length) { body.textContent = t("no_renewals"); return; }
  const rows = list.map((r) => `<tr><td>${esc(r.customer_id)}</td><td>${esc(r.contract)}</td><td>${esc(r.end)}</td>
      <td class="num">${esc(money(r.arr, d.currency))}</td><td>${esc(own(t("statuses"), r.status) ?? r.status)}</td>
      <td class="num">${esc(r.renewed_arr ? money(r.renewed_arr, d.currency) : "")}</td><td>${esc((r.renewal_lines || []).join(" "))}</td></tr>`);
  body.innerHTML = `<table><thead><tr><th>${t("customer")}</th><th>${t("contract")}</th><th>${t("end")}</th>
    <th class="num">${t("up_for_renewal")}</th><th>${t("status_col")}</th><th class="num">${t("renewed_arr")}</th><th>${t("lines")}</th></tr></thead>
    <tbody>${rows.join("")}</tbody></table>`;
}

function renderAll() {
  for (const w of layoutWidgets()) renderWidget(w.id);
  refreshAddMenu();
}

function refreshAddMenu() {
  const present = new Set(layoutWidgets().map((w) => w.id));
  const select = $("add-widget");
  select.innerHTML = [...WIDGETS.keys()]
    .filter((id) => !present.has(id))
    .map((id) => `<option value="${esc(id)}">${esc(WIDGETS.get(id).title[state.lang])}</option>`)
    .join("");
  $("add").disabled = !select.options.length;
}

// ---- layout persistence ---------------------------------------------------------------
let saveTimer = null;
let loading = true;

function scheduleSave() {
  if (loading) return;
  refreshAddMenu();
  clearTimeout(saveTimer);
  saveTimer = setTimeout(saveLayout, 250);
}

async function saveLayout() {
  if (!mayWrite()) { status(t("need_key")); return; }
  try {
    await api(`/api/v1/dashboards/${encodeURIComponent(dashboardId)}`, {
      method: "PUT",
      headers: {
        "Content-Type": "application/json",
        "Idempotency-Key": crypto.randomUUID(),
      },
      body: JSON.stringify({ widgets: layoutWidgets() }),
    });
    status(t("saved"));
    document.body.dataset.saved = String(Date.now());
  } catch (e) {
    status(t("save_failed") + e.message);
  }
}

function status(text) { $("status").textContent = text; }

function applyLanguage() {
  document.documentElement.lang = state.lang;
  $("lang").value = state.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
}

async function fillFilters() {
  const [customers, products] = await Promise.all([api("/api/v1/customers?limit=10000"), api("/api/v1/products?limit=10000")]);
  const fill = (id, values) => {
    const select = $(id);
    for (const v of [...new Set(values.filter(Boolean))].sort()) select.add(new Option(v, v));
  };
  fill("segment", customers.rows.map((r) => r.segment));
  fill("channel", customers.rows.map((r) => r.channel));
  fill("family", products.rows.map((r) => r.family || r.id));
}

async function refresh() {
  status(t("loading"));
  try {
    await loadData();
    renderAll();
    status("");
    document.body.dataset.ready = "true";
  } catch (e) {
    status(t("load_failed") + e.message);
  }
}

// ---- live updates -------------------------------------------------------------------------
// The book's latest event, sent by the server whenever it changes (GET /api/v1/events/stream,
// server-sent events; whoever wrote: this page, another client, a webhook): the widgets read
// their data again, without a reload, and the bar says when. The browser reconnects by itself.
function watchBook() {
  if (typeof EventSource === "undefined") return;
  let seen = null;
  const source = new EventSource("/api/v1/events/stream");
  source.addEventListener("book", async (message) => {
    let event = null;
    try { event = JSON.parse(message.data).event; } catch (e) { return; }
    if (!Number.isInteger(event) || event === seen) return;
    const first = seen === null;
    seen = event;
    if (first) return;
    await refresh();
    const live = $("live");
    live.textContent = `${t("updated")} ${new Date().toLocaleTimeString(state.lang)}`;
    live.dataset.event = String(event);
    live.hidden = false;
  });
}

// ---- import page ------------------------------------------------------------------------
// Upload an export, convert it on the server (POST /api/v1/imports/preview: the `convert`
// command's report and the first rows of the book), fix the mapping here, then commit the
// previewed book (POST /api/v1/imports/{token}/commit: one event). Everything the server sends
// is shown as text (esc), never as markup.
const KIND_NAMES = { stripe: "Stripe", recurly: "Recurly", zuora: "Zuora", chargebee: "Chargebee", baremetrics: "Baremetrics", chartmogul: "ChartMogul", conexa: "Conexa", asaas: "Asaas", iugu: "Iugu", vindi: "Vindi" };
const importState = { sources: [], preset: null, token: null, idempotency: null, preview: null, error: null, committed: null };

function showPage() {
  const pages = { "#import": "import", "#admin": session.role === "admin" ? "admin" : "dashboard" };
  const page = own(pages, location.hash) || "dashboard";
  document.body.dataset.page = page;
  if (page === "admin") loadUsers();
  for (const [id, p] of [["tab-dashboard", "dashboard"], ["tab-import", "import"], ["tab-admin", "admin"]]) {
    if (p === page) $(id).setAttribute("aria-current", "page"); else $(id).removeAttribute("aria-current");
  }
  // Charts drawn while hidden have no size: draw them again when the dashboard shows.
  if (page === "dashboard" && grid && state.data.kpis) renderAll();
}

function importStatus(text, kind = "") {
  const el = $("import-status");
  el.textContent = text;
  el.className = kind;
}

function fillKinds() {
  const select = $("import-kind");
  const chosen = select.value;
  select.innerHTML = "";
  for (const s of importState.sources) select.add(new Option(own(KIND_NAMES, s.kind) || s.kind, s.kind));
  select.add(new Option(t("mapping_file"), "mapping"));
  if (chosen) select.value = chosen;
  $("import-mapping").placeholder = $("import-mapping").disabled ? t("no_mapping") : "";
}

function forgetPreview() {
  // What was previewed no longer matches the form: it cannot be committed.
  importState.token = null;
  importState.idempotency = null;
  $("import-commit").disabled = true;
}

function onKindChange() {
  const kind = $("import-kind").value;
  const source = importState.sources.find((s) => s.kind === kind);
  const area = $("import-mapping");
  if (kind === "mapping") {
    if (importState.preset !== null && area.value === importState.preset) area.value = "";
    importState.preset = null;
    area.disabled = false;
  } else if (source && typeof source.preset === "string") {
    importState.preset = source.preset;
    area.value = source.preset;
    area.disabled = false;
  } else {
    importState.preset = null;
    area.value = "";
    area.disabled = true;
  }
  area.placeholder = area.disabled ? t("no_mapping") : "";
  forgetPreview();
}

function readBase64(file) {
  // The file's bytes in base64 (a data: URL's payload), read by the browser.
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).replace(/^[^,]*,/, ""));
    reader.onerror = () => reject(reader.error || new Error(file.name));
    reader.readAsDataURL(file);
  });
}

async function importRequest() {
  const kind = $("import-kind").value;
  const text = $("import-mapping").value;
  const files = await Promise.all([...$("import-files").files].map(async (f) => ({ name: f.name, content_base64: await readBase64(f) })));
  const body = { files, timezone: $("import-timezone").value.trim() || "UTC", skip_refused: $("import-skip").checked };
  if ($("import-mrr-at").value) body.mrr_at = $("import-mrr-at").value;
  // A preset edited in the page is sent as a mapping of its own.
  if (kind === "mapping" || (importState.preset !== null && text !== importState.preset)) body.mapping = text;
  else body.from = kind;
  return body;
}

async function previewImport() {
  if (!mayWrite()) { importStatus(t("need_key_import"), "failed"); return; }
  if (!$("import-files").files.length) { importStatus(t("need_files"), "failed"); return; }
  forgetPreview();
  importState.preview = null;
  importState.error = null;
  importState.committed = null;
  renderImport();
  importStatus(t("previewing"));
  try {
    const response = await fetch("/api/v1/imports/preview", withAuth({
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(await importRequest()),
    }));
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      importState.error = body.error || { code: String(response.status), message: response.statusText, problems: [] };
      const prefix = importState.error.code === "invalid_source" ? t("refused") : t("preview_failed");
      importStatus(prefix + importState.error.message, "failed");
      renderImport();
      document.body.dataset.importRefused = String(Date.now());
      return;
    }
    importState.preview = body;
    importState.token = body.token;
    importState.idempotency = crypto.randomUUID();
    $("import-commit").disabled = false;
    importStatus(t("previewed"));
    renderImport();
    document.body.dataset.previewed = body.token;
  } catch (e) {
    importStatus(t("preview_failed") + e.message, "failed");
  }
}

async function commitImport() {
  if (!mayWrite()) { importStatus(t("need_key_import"), "failed"); return; }
  if (!importState.token) return;
  $("import-commit").disabled = true;
  importStatus(t("committing"));
  try {
    // One idempotency key per previewed book: a retry answers the first commit.
    const body = await api(`/api/v1/imports/${encodeURIComponent(importState.token)}/commit`, {
      method: "POST",
      headers: { "Idempotency-Key": importState.idempotency },
    });
    importState.committed = body;
    importStatus(body.event === null ? t("unchanged") : t("committed") + body.event, "done");
    document.body.dataset.committed = String(body.event);
    // The dashboard's figures, read again from the store.
    const events = await api("/api/v1/events").catch(() => []);
    document.body.dataset.events = String(events.length || 0);
    await refresh();
    await fillFilters().catch(() => {});
    document.body.dataset.refreshed = String(body.event);
  } catch (e) {
    $("import-commit").disabled = false;
    importStatus(t("commit_failed") + e.message, "failed");
  }
}

function renderImport() {
  const problems = $("import-problems");
  const err = importState.error;
  problems.innerHTML = err && Array.isArray(err.problems)
    ? err.problems.map((p) => `<li>${esc(`${p.file}:${p.line}: ${p.column}: ${p.value}: ${p.reason}`)}</li>`).join("")
    : "";
  const report = $("import-report");
  const rowsBox = $("import-rows");
  const preview = importState.preview;
  if (!preview) { report.innerHTML = ""; rowsBox.innerHTML = ""; return; }
  const r = preview.report;
  const outcomes = Object.entries(r.rows || {}).map(([k, n]) => `<div class="figure" data-outcome="${esc(k)}">
      <span class="label">${esc(own(t("import_outcomes"), k) ?? k)}</span><span class="value" data-raw="${esc(n)}">${esc(show(String(n), "count"))}</span></div>`);
  const written = Object.entries(r.written || {}).map(([k, n]) => `${show(String(n), "count")} ${own(t("written_names"), k) ?? k}`).join(", ");
  const reasons = (r.reasons || []).map((x) => `<tr><td>${esc(x.file)}</td><td>${esc(own(t("import_outcomes"), x.outcome) ?? x.outcome)}</td>
      <td>${esc(x.reason)}</td><td class="num">${esc(x.rows)}</td></tr>`).join("");
  const list = (title, items, cls) => (items && items.length
    ? `<h3>${esc(title)}</h3><ul class="${cls}">${items.map((m) => `<li>${esc(m)}</li>`).join("")}</ul>` : "");
  report.innerHTML = `<h3>${esc(t("report_of"))}: ${esc(r.source)}</h3>
    <div class="import-figures">${outcomes.join("")}
      <div class="figure mrr"><span class="label">${esc(t("mrr_at"))} ${esc(r.mrr_at)}</span><span class="value" data-raw="${esc(r.mrr)}">${esc(money(r.mrr, r.currency))}</span></div>
      <div class="figure paying"><span class="label">${esc(t("paying"))}</span><span class="value" data-raw="${esc(r.customers_paying)}">${esc(show(String(r.customers_paying), "count"))}</span></div>
      <div class="figure written"><span class="label">${esc(t("book_written"))}</span><span class="value">${esc(written)}</span></div>
    </div>
    <table class="reasons"><thead><tr><th>${esc(t("file"))}</th><th>${esc(t("outcome"))}</th><th>${esc(t("reason"))}</th><th class="num">${esc(t("rows"))}</th></tr></thead>
    <tbody>${reasons}</tbody></table>
    ${list(t("not_rebuilt"), r.not_rebuilt, "not-rebuilt")}${list(t("notes"), r.notes, "notes")}`;
  rowsBox.innerHTML = Object.entries(preview.preview || {}).map(([file, table]) => `<h3>${esc(t("first_rows"))} ${esc(file)}.csv</h3>
    <div class="import-rows-table"><table data-file="${esc(file)}"><thead><tr>${table.columns.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead>
    <tbody>${table.rows.map((row) => `<tr>${row.map((v) => `<td>${esc(v)}</td>`).join("")}</tr>`).join("")}</tbody></table></div>`).join("");
}

async function setupImport() {
  window.addEventListener("hashchange", showPage);
  showPage();
  $("import-kind").addEventListener("change", onKindChange);
  $("import-mapping").addEventListener("input", forgetPreview);
  for (const id of ["import-files", "import-timezone", "import-mrr-at", "import-skip"]) $(id).addEventListener("change", forgetPreview);
  $("import-preview").addEventListener("click", previewImport);
  $("import-commit").addEventListener("click", commitImport);
  const known = await api("/api/v1/imports/sources");
  importState.sources = known.sources;
  fillKinds();
  onKindChange();
  document.body.dataset.importReady = "true";
}

// ---- admin page --------------------------------------------------------------------------
// The users of the dashboard (GET/POST /api/v1/users, PUT /api/v1/users/{name}, POST
// /api/v1/users/{name}/password; admin only, the session's CSRF token sent by api()). Built
// with DOM nodes and textContent; a password typed here is sent once and cleared, never shown.
const ROLES = ["viewer", "analyst", "admin"];
const adminState = { users: [] };

function adminStatus(text, kind = "") {
  const el = $("admin-status");
  el.textContent = text;
  el.className = kind;
}

function fillRoles(select, chosen) {
  select.replaceChildren(...ROLES.map((r) => new Option(own(t("roles"), r), r)));
  select.value = chosen;
}

function renderUsers() {
  fillRoles($("admin-role"), $("admin-role").value || "viewer");
  const me = session.kind === "user" ? session.name : null;
  const rows = adminState.users.map((u) => {
    const tr = document.createElement("tr");
    tr.dataset.user = u.name;
    const cell = (...children) => {
      const td = document.createElement("td");
      td.append(...children);
      tr.append(td);
      return td;
    };
    cell(u.name + (u.name === me ? ` (${t("admin_you")})` : ""));
    const role = document.createElement("select");
    role.className = "user-role";
    fillRoles(role, u.role);
    role.disabled = u.name === me;
    role.addEventListener("change", () => changeUser(u.name, { role: role.value }, "admin_role_changed"));
    cell(role);
    cell(u.disabled_at ? `${t("admin_disabled")} ${u.disabled_at.slice(0, 10)}` : t("admin_active"));
    const disable = document.createElement("button");
    disable.type = "button";
    disable.className = "user-disable";
    disable.textContent = t("admin_disable");
    disable.disabled = Boolean(u.disabled_at) || u.name === me;
    disable.addEventListener("click", () => changeUser(u.name, { disabled: true }, "admin_disabled_done"));
    cell(disable);
    const password = document.createElement("input");
    password.type = "password";
    password.className = "user-password";
    password.autocomplete = "new-password";
    password.minLength = 12;
    password.maxLength = 1024;
    const reset = document.createElement("button");
    reset.type = "button";
    reset.className = "user-reset";
    reset.textContent = t("admin_reset");
    reset.addEventListener("click", async () => {
      const value = password.value;
      password.value = "";
      await adminWrite(`/api/v1/users/${encodeURIComponent(u.name)}/password`, "POST", { password: value }, "admin_reset_done", u.name);
    });
    cell(password, " ", reset);
    return tr;
  });
  $("admin-users").tBodies[0].replaceChildren(...rows);
}

async function loadUsers() {
  try {
    adminState.users = await api("/api/v1/users");
    renderUsers();
    document.body.dataset.adminReady = "true";
  } catch (e) {
    adminStatus(t("load_failed") + e.message, "failed");
  }
}

async function adminWrite(path, method, body, done, name) {
  adminStatus("");
  try {
    await api(path, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    adminStatus(t(done) + name, "done");
  } catch (e) {
    adminStatus(t("admin_failed") + e.message, "failed");
  }
  await loadUsers();
}

function changeUser(name, change, done) {
  return adminWrite(`/api/v1/users/${encodeURIComponent(name)}`, "PUT", change, done, name);
}

function setupAdmin() {
  fillRoles($("admin-role"), "viewer");
  $("admin-add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("admin-name").value.trim();
    const body = { name, role: $("admin-role").value, password: $("admin-password").value };
    $("admin-password").value = "";
    await adminWrite("/api/v1/users", "POST", body, "admin_created", name);
    if ($("admin-status").className === "done") $("admin-name").value = "";
  });
}

// The session: without one (and without public reads) the login page; else who is logged in,
// a logout button, and what the role cannot do hidden.
async function loadSession() {
  const response = await fetch("/api/v1/session", { credentials: "same-origin" });
  if (response.status === 401) {
    location.assign(`/login${document.cookie.includes("expansa") ? "?expired=1" : ""}`);
    return false;
  }
  if (response.ok) session = await response.json();
  const who = $("who");
  who.textContent = session.kind === "user" ? `${session.name} (${session.role})` : "";
  $("logout").hidden = session.kind !== "user";
  // Public reads without a session: the way to log in (and to write).
  $("login-link").hidden = session.kind === "user";
  // What a logged-in user's role cannot do is hidden (the server checks it all the same).
  if (session.kind === "user") document.body.dataset.role = session.role;
  document.body.dataset.user = session.kind === "user" ? session.name : "";
  // The users page is an admin's only (the server refuses anyone else: 403).
  document.body.dataset.admin = String(session.role === "admin");
  return true;
}

async function logout() {
  await fetch("/logout", withAuth({ method: "POST" })).catch(() => {});
  location.assign("/login");
}

async function start() {
  if (!(await loadSession())) return;
  $("logout").addEventListener("click", logout);
  const known = await api("/assets/widgets.json");
  WIDGETS = new Map(known.widgets.map((w) => [w.id, w]));
  GRID = { columns: known.columns, rows: known.rows };
  grid = GridStack.init({ column: GRID.columns, cellHeight: 70, margin: 6, float: false, draggable: { handle: ".widget-head" } }, "#grid");
  applyLanguage();
  setupAdmin();
  setupImport().catch((e) => importStatus(t("load_failed") + e.message, "failed"));
  const events = await api("/api/v1/events").catch(() => []);
  const lastMonth = (() => {
    const d = new Date();
    return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
  })();
  // Default range: the 12 months up to the book's last movement month, else up to now.
  let to = params.get("to");
  if (!to) {
    const probe = await api(`/api/v1/movements?from=${addMonths(lastMonth, -60)}&to=${lastMonth}`).catch(() => null);
    const active = probe ? probe.months.filter((m) => Object.keys(KIND_COLORS).some((k) => /[1-9]/.test(m[k]))) : [];
    to = active.length ? active[active.length - 1].month : lastMonth;
  }
  $("to").value = to;
  $("from").value = params.get("from") || addMonths(to, -11);
  document.body.dataset.events = String(events.length || 0);
  const saved = await api(`/api/v1/dashboards/${encodeURIComponent(dashboardId)}`);
  // A stored layout is data, not trusted: unknown ids and odd entries are skipped, one by one.
  const stored = saved && saved.layout && Array.isArray(saved.layout.widgets) ? saved.layout.widgets : [];
  for (const w of stored) {
    try { addWidget(w); } catch (e) { console.warn("skipped a stored widget", e); }
  }
  await fillFilters().catch(() => {});
  for (const id of ["from", "to", "segment", "channel", "family"]) $(id).addEventListener("change", refresh);
  $("lang").addEventListener("change", () => {
    state.lang = knownLang($("lang").value) || "pt-BR";
    localStorage.setItem("expansa.lang", state.lang);
    applyLanguage();
    renderAll();
    fillKinds();
    renderImport();
    renderUsers();
  });
  $("add").addEventListener("click", async () => {
    const id = $("add-widget").value;
    if (!id) return;
    addWidget({ id });
    await refresh();
    scheduleSave();
  });
  grid.on("change", scheduleSave);
  grid.on("removed", scheduleSave);
  grid.on("resizestop", (_e, el) => {
    const chart = state.charts.get(el.getAttribute("gs-id"));
    if (chart) chart.resize();
  });
  loading = false;
  watchBook();
  await refresh();
}

start();

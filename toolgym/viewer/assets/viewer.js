// toolgym view: the episode table (only the rows in view are built), an episode as a conversation,
// two episodes of one question side by side, and the curves of a training run. The state lives in
// the URL hash (#q=...&env=...&open=3), so a filtered view can be bookmarked, shared and tested.
(function () {
  "use strict";
  const T0 = performance.now();  // since navigation start: the HTML (and the data in it) read
  const D = JSON.parse(document.getElementById("data").textContent);
  const T1 = performance.now();
  const C = {};
  D.columns.forEach((name, i) => { C[name] = i; });
  const S = D.strings, ROWS = D.rows, N = ROWS.length, ROW_PX = 30;
  const FILTERS = ["q", "env", "agent", "status", "success", "sort", "open", "cmp"];
  const state = {};
  const $ = (id) => document.getElementById(id);
  const text = (x) => (typeof x === "number" ? S[x] : x == null ? "" : String(x));
  let view = [];

  function el(tag, cls, content) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (content != null) e.textContent = content;
    return e;
  }
  function fmt(x, digits) {
    return x == null ? "–" : typeof x === "number" ? (Number.isInteger(x) ? String(x) : x.toFixed(digits == null ? 2 : digits)) : String(x);
  }
  function who(i) {
    const r = ROWS[i];
    return (r[C.agent] == null ? "" : r[C.agent]) + (r[C.step] == null ? "" : " @" + r[C.step]);
  }

  // -- the state <-> the URL hash --------------------------------------------------------------
  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    FILTERS.forEach((k) => { state[k] = p.get(k) || ""; });
    ["q", "env", "agent", "status", "success", "sort"].forEach((k) => { $(k).value = state[k]; });
  }
  function writeHash() {
    const p = new URLSearchParams();
    FILTERS.forEach((k) => { if (state[k]) p.set(k, state[k]); });
    history.replaceState(null, "", "#" + p.toString());
  }

  // -- the filters -------------------------------------------------------------------------------
  function options(id, column, label) {
    const counts = new Map();
    for (let i = 0; i < N; i++) {
      const v = ROWS[i][C[column]];
      if (v != null) counts.set(v, (counts.get(v) || 0) + 1);
    }
    const select = $(id);
    select.appendChild(new Option("any " + label, ""));
    [...counts.keys()].sort().forEach((v) => select.appendChild(new Option(v + " (" + counts.get(v) + ")", v)));
    if (counts.size < 2) select.hidden = true;
  }
  function matches(q) {  // case-insensitive substring search over an episode's texts; shared texts tested once
    if (!q) return null;
    const re = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "i");
    const hit = S.map((s) => re.test(s));
    const has = (x) => (typeof x === "number" ? hit[x] : x != null && re.test(x));
    return (i) => {
      const ep = D.episodes[i];
      if (re.test(ROWS[i][C.question]) || has(ep.prediction)) return true;
      if ((ep.first || []).some((m) => has(m.content))) return true;
      return (ep.steps || []).some((s) => has(s.action) || (s.added || []).some((m) => has(m.content)));
    };
  }
  function apply() {
    const t = performance.now();
    const found = matches(state.q.trim());
    const succ = state.success;
    view = [];
    for (let i = 0; i < N; i++) {
      const r = ROWS[i];
      if (state.env && r[C.env] !== state.env) continue;
      if (state.agent && r[C.agent] !== state.agent) continue;
      if (state.status && r[C.status] !== state.status) continue;
      if (succ === "none" ? r[C.success] != null : succ && String(r[C.success] == null ? "" : +r[C.success]) !== succ) continue;
      if (found && !found(i)) continue;
      view.push(i);
    }
    if (state.sort) {
      const [key, dir] = state.sort.split("-");
      const col = C[{ score: "score", turns: "turns", time: "time", return: "return", step: "step" }[key]];
      const sign = dir === "asc" ? 1 : -1;
      view.sort((a, b) => {
        const x = ROWS[a][col], y = ROWS[b][col];
        if (x == null || y == null) return (x == null) - (y == null) || a - b;
        return (x - y) * sign || a - b;
      });
    }
    const count = $("count");
    count.textContent = view.length + " of " + N + " episodes";
    count.dataset.shown = view.length;
    count.dataset.total = N;
    $("spacer").style.height = view.length * ROW_PX + "px";
    $("scroller").scrollTop = 0;
    drawRows();
    return performance.now() - t;
  }

  // -- the table: only the rows in view ----------------------------------------------------------
  function badge(i) {
    const r = ROWS[i], s = r[C.success];
    return el("span", "badge " + (s == null ? "other" : s ? "ok" : "bad"), s == null ? r[C.status] : s ? "solved" : r[C.status] === "terminated" ? "wrong" : r[C.status]);
  }
  function drawRows() {
    const box = $("scroller"), spacer = $("spacer");
    const first = Math.max(0, Math.floor(box.scrollTop / ROW_PX) - 5);
    const last = Math.min(view.length, first + Math.ceil((box.clientHeight || 800) / ROW_PX) + 10);
    const frag = document.createDocumentFragment();
    for (let k = first; k < last; k++) {
      const i = view[k], r = ROWS[i], row = el("div", "row" + (String(i) === state.open ? " open" : ""));
      row.style.top = k * ROW_PX + "px";
      row.dataset.i = i;
      const st = el("span", "c-st"); st.appendChild(badge(i));
      row.append(st, el("span", "c-env", r[C.env]), el("span", "c-who", who(i)), el("span", "c-q", r[C.question]),
        el("span", "c-num", fmt(r[C.score])), el("span", "c-num", fmt(r[C.turns])), el("span", "c-num c-time", r[C.time] == null ? "–" : fmt(r[C.time], 2) + "s"));
      frag.appendChild(row);
    }
    spacer.replaceChildren(frag);
  }

  // -- an episode as a conversation --------------------------------------------------------------
  function message(role, content, extra) {
    const m = el("div", "msg " + role);
    m.append(el("div", "role", extra ? role + " · " + extra : role), el("pre", null, text(content)));
    return m;
  }
  function shade(a) {  // advantage -> background: green above 0, red below
    const v = Math.max(-1, Math.min(1, a / 2));
    return v >= 0 ? "rgba(34,160,80," + (0.12 + 0.5 * v).toFixed(3) + ")" : "rgba(210,50,50," + (0.12 - 0.5 * v).toFixed(3) + ")";
  }
  function tokens(train) {
    const box = el("div", "tokens"), per = train.token_advantages;
    let k = 0;
    const toks = train.tokens || [], mask = train.mask;
    while (k < mask.length) {
      if (mask[k] === "1") {
        const s = el("span", "tok", toks[k] == null ? "·" : toks[k]);
        const a = per ? per[k] : train.advantage;
        s.style.background = shade(a);
        s.title = "trained, advantage " + fmt(a, 3);
        box.appendChild(s);
        k++;
      } else {
        let j = k;
        while (j < mask.length && mask[j] === "0") j++;
        const hidden = el("span", "tok env", toks.slice(k, j).join(""));
        const chip = el("span", "envchip", "+" + (j - k) + " env tokens, masked (not trained)");
        hidden.hidden = true;
        hidden.title = "masked: the env's tokens";
        chip.onclick = () => { hidden.hidden = !hidden.hidden; };
        box.append(chip, hidden);
        k = j;
      }
    }
    return box;
  }
  function stepInfo(s, k) {
    const info = el("div", "stepinfo");
    info.appendChild(el("b", null, "step " + (k + 1) + "  reward " + (s.reward >= 0 ? "+" : "") + fmt(s.reward, 3)));
    Object.entries(s.terms || {}).forEach(([name, v]) => {
      if (v !== 0) info.appendChild(el("span", "term " + (v > 0 ? "pos" : "neg"), name + " " + (v > 0 ? "+" : "") + fmt(v, 3)));
    });
    ["parse_error", "tool_error", "error"].forEach((key) => { if (s[key]) info.appendChild(el("span", "error", key.replace("_", " ") + ": " + s[key])); });
    if (s.stepped === false) info.appendChild(el("span", "error", "not stepped"));
    if (s.train) info.appendChild(el("span", "term", "advantage " + fmt(s.train.advantage, 3)));
    if (s.tokens_in || s.tokens_out) info.appendChild(el("span", null, "tokens " + s.tokens_in + " in / " + s.tokens_out + " out"));
    info.appendChild(el("span", null, fmt(s.seconds, 3) + " s" + (s.agent_seconds != null ? " (agent " + fmt(s.agent_seconds, 3) + " s)" : "")));
    return info;
  }
  function summary(i, ep) {
    const r = ROWS[i], box = el("div", "summary");
    const h = el("h2", null, r[C.env] + " · " + who(i) + " · ");
    h.appendChild(badge(i));
    box.appendChild(h);
    const ans = el("div", "answer");
    ans.append(el("b", null, "answer"), el("span", null, ep.prediction == null ? "(none)" : String(ep.prediction)),
      el("b", null, "gold"), el("span", null, ep.gold == null ? "(none)" : typeof ep.gold === "string" ? ep.gold : JSON.stringify(ep.gold)));
    box.appendChild(ans);
    const m = el("div", "metrics"), res = ep.result || {};
    [["EM", r[C.em]], ["F1", r[C.score]], ["subEM", ep.subem], ["score", res.score], ["return", r[C.return]],
      ["turns", r[C.turns]], ["tool calls", r[C.tool_calls]], ["time", r[C.time] == null ? null : fmt(r[C.time], 2) + " s"]]
      .forEach(([name, v]) => { if (v != null) m.appendChild(el("span", null, name + " " + fmt(v, 3))); });
    m.appendChild(el("span", null, "status " + r[C.status] + (ep.truncated_by ? " (" + ep.truncated_by + ")" : "")));
    box.appendChild(m);
    if (ep.error) box.appendChild(el("div", "error", ep.error));
    return box;
  }
  function conversation(i) {
    const ep = D.episodes[i], box = el("article", "episode");
    box.dataset.i = i;
    box.appendChild(summary(i, ep));
    (ep.first || []).forEach((m) => {
      if (m.role === "system") {
        const d = el("details", "msg system sys");
        d.append(el("summary", null, "system prompt"), el("pre", null, text(m.content)));
        box.appendChild(d);
      } else box.appendChild(message(m.role, m.content));
    });
    let trained = false;
    (ep.steps || []).forEach((s, k) => {
      const a = el("div", "msg assistant");
      a.appendChild(el("div", "role", "assistant · step " + (k + 1)));
      if (s.train) { a.appendChild(tokens(s.train)); trained = true; } else a.appendChild(el("pre", null, text(s.action)));
      if ((s.calls || []).length) {
        const calls = el("div", "calls");
        s.calls.forEach((c) => calls.appendChild(el("code", "call", c.name + "(" + JSON.stringify(c.arguments) + ")")));
        a.appendChild(calls);
      }
      box.appendChild(a);
      box.appendChild(stepInfo(s, k));
      (s.added || []).forEach((m) => box.appendChild(message(m.role, m.content, s.context === "replaced" ? "context replaced" : "")));
    });
    if (trained) box.appendChild(el("div", "legend", "Tokens are shaded one by one: green = positive advantage, red = negative (per token where the trainer gave token-level advantages, else the step's advantage on each of its tokens); striped = env tokens, masked from the loss."));
    return box;
  }
  function twins(i) {  // other episodes of the same question (another agent, checkpoint or group member)
    const key = ROWS[i][C.key], out = [];
    for (let j = 0; j < N && out.length < 200; j++) if (j !== i && ROWS[j][C.key] === key) out.push(j);
    return out;
  }
  function openEpisode() {
    const detail = $("detail");
    const i = state.open === "" ? null : +state.open;
    if (i == null || !(i >= 0 && i < N)) { detail.replaceChildren(el("p", "hint", "Pick an episode on the left.")); return; }
    const left = conversation(i), others = twins(i);
    if (others.length) {
      const pick = el("select"), label = el("label", "compare", "compare side by side with ");
      pick.id = "cmp";
      pick.appendChild(new Option("(another episode of this question: " + others.length + ")", ""));
      others.forEach((j) => pick.appendChild(new Option(who(j) + " · " + ROWS[j][C.status] + " · score " + fmt(ROWS[j][C.score]), String(j))));
      pick.value = state.cmp;
      pick.onchange = () => { state.cmp = pick.value; writeHash(); openEpisode(); };
      label.appendChild(pick);
      left.firstChild.appendChild(label);
    }
    const parts = [left];
    const j = state.cmp === "" ? null : +state.cmp;
    if (j != null && j >= 0 && j < N && j !== i) parts.push(conversation(j));
    detail.replaceChildren(...parts);
    document.querySelector("main").classList.toggle("comparing", parts.length > 1);
    detail.scrollTop = 0;
  }

  // -- training curves ---------------------------------------------------------------------------
  function curve(c) {
    const W = 210, H = 92, L = 40, B = 16, NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("width", W); svg.setAttribute("height", H); svg.setAttribute("class", "curve");
    const xs = c.x, ys = c.y, x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    const sx = (x) => L + (x1 === x0 ? 0 : (x - x0) / (x1 - x0)) * (W - L - 6);
    const sy = (y) => 18 + (y1 === y0 ? 0.5 : 1 - (y - y0) / (y1 - y0)) * (H - 18 - B);
    const line = document.createElementNS(NS, "polyline");
    line.setAttribute("class", "line");
    line.setAttribute("points", xs.map((x, k) => sx(x).toFixed(1) + "," + sy(ys[k]).toFixed(1)).join(" "));
    const label = (x, y, s, anchor) => {
      const t = document.createElementNS(NS, "text");
      t.setAttribute("x", x); t.setAttribute("y", y); t.textContent = s;
      if (anchor) t.setAttribute("text-anchor", anchor);
      svg.appendChild(t);
    };
    label(4, 11, c.name);
    label(L - 3, 22, fmt(y1, 3), "end"); label(L - 3, H - B, fmt(y0, 3), "end");
    label(L, H - 3, "step " + x0); label(W - 6, H - 3, String(x1), "end");
    svg.appendChild(line);
    return svg;
  }

  // -- start -------------------------------------------------------------------------------------
  $("title").textContent = D.title;
  options("env", "env", "env");
  options("agent", "agent", "agent");
  options("status", "status", "status");
  if (D.curves.length) {
    $("curves-box").hidden = false;
    D.curves.forEach((c) => $("curves").appendChild(curve(c)));
  }
  readHash();
  const filterMs = apply();
  if (state.open === "" && view.length) state.open = String(view[0]);  // a person sees a conversation at once
  openEpisode();
  drawRows();
  const perf = $("perf");
  perf.dataset.htmlMs = T0.toFixed(1);
  perf.dataset.jsonMs = (T1 - T0).toFixed(1);
  perf.dataset.filterMs = filterMs.toFixed(1);
  perf.dataset.readyMs = performance.now().toFixed(1);  // since navigation start: parse, JSON, first render

  let timer = null;
  $("q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { state.q = $("q").value; writeHash(); apply(); }, 120); });
  ["env", "agent", "status", "success", "sort"].forEach((k) => $(k).addEventListener("change", () => { state[k] = $(k).value; writeHash(); apply(); }));
  $("scroller").addEventListener("scroll", () => requestAnimationFrame(drawRows));
  $("spacer").addEventListener("click", (e) => {
    const row = e.target.closest(".row");
    if (!row) return;
    state.open = row.dataset.i; state.cmp = ""; writeHash(); openEpisode(); drawRows();
  });
  window.addEventListener("hashchange", () => { readHash(); apply(); openEpisode(); });
})();

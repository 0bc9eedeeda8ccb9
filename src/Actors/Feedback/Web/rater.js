"use strict";
(() => {
  // Task texts arrive twice: as given (shown with textContent in raw mode) and as HTML the server rendered from
  // Markdown and sanitised (no raw HTML, only http(s)/mailto links). Nothing else is ever put in as HTML, and the
  // page's Content-Security-Policy runs no script but this one.
  const KEY = "rlft.token", SEEN = "rlft.guidelines.seen";
  const $ = (id) => document.getElementById(id);
  let task = null, scores = {}, strength = null, busy = false, pollTimer = null, undo = null, undoTimer = null, syncing = false, shownGuideline = "";

  const token = () => sessionStorage.getItem(KEY);
  function status(text, kind) { const s = $("status"); s.textContent = text; s.className = kind || ""; }
  function show(section) { for (const id of ["login", "task", "empty"]) $(id).hidden = id !== section; }
  function errorText(r) { return (r.data && r.data.error) ? r.data.error + " (" + r.status + ")" : "request failed (" + r.status + ")"; }

  async function api(method, path, body) {
    const init = { method, headers: { "Authorization": "Bearer " + token() } };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const res = await fetch(path, init);
    let data = null;
    if (res.status !== 204) { try { data = await res.json(); } catch { data = null; } }
    // A token nobody owns, or a revoked one, ends the session; a 403 about a task ("not handed to you") does not.
    const error = (data && data.error) || "";
    if (res.status === 401 || (res.status === 403 && (error.includes("revoked") || method === "GET"))) {
      sessionStorage.removeItem(KEY);
      signedOut(error);
    }
    return { status: res.status, data };
  }

  function signedOut(reason) {
    clearTimeout(pollTimer); task = null; undo = null; showUndo();
    $("signout").hidden = true; $("progress").hidden = true; $("who").textContent = "";
    show("login");
    status(reason ? "Signed out: " + reason : "", reason ? "bad" : "");
    $("token").focus();
  }

  function startOfToday() { const d = new Date(); d.setHours(0, 0, 0, 0); return d.getTime(); }

  async function refreshProgress() {
    const r = await api("GET", "/api/v1/me?since=" + startOfToday());
    if (r.status !== 200 || !r.data) return false;
    const p = r.data;
    $("who").textContent = p.rater; $("count").textContent = String(p.rated);
    $("today").textContent = String(p.ratedSince); $("remaining").textContent = String(p.remaining);
    $("progress").hidden = false;
    undo = p.undo ? { ratingId: p.undo.ratingId, until: Date.parse(p.undo.until) } : null;
    showUndo();
    return true;
  }

  function showUndo() {
    clearInterval(undoTimer);
    const tick = () => {
      const left = undo ? Math.ceil((undo.until - Date.now()) / 1000) : 0;
      $("undo-bar").hidden = left <= 0;
      if (left <= 0) { undo = null; clearInterval(undoTimer); return; }
      $("undo-text").textContent = "Saved. You can take your last rating back for " + left + " s.";
    };
    tick();
    if (undo) undoTimer = setInterval(tick, 1000);
  }

  async function next() {
    clearTimeout(pollTimer);
    if (!token()) return;
    const r = await api("GET", "/api/v1/tasks/next");
    if (r.status === 204) { task = null; show("empty"); pollTimer = setTimeout(next, 4000); return; }
    if (r.status !== 200 || !r.data) { if (token()) { status(errorText(r), "bad"); pollTimer = setTimeout(next, 4000); } return; }
    render(r.data);
  }

  // Markdown as the server rendered it, or the raw text; links open in a new tab, never in this one.
  function fill(el, html, text) {
    const raw = $("raw").checked;
    el.classList.toggle("text", raw);
    if (raw) { el.textContent = text; return; }
    el.innerHTML = html;
    for (const a of el.querySelectorAll("a")) { a.target = "_blank"; a.rel = "noopener noreferrer"; }
  }

  function seenGuidelines() { try { return JSON.parse(localStorage.getItem(SEEN) || "{}"); } catch { return {}; } }

  function renderGuideline(g) {
    $("guideline").hidden = !g;
    if (!g) return;
    $("guideline-version").textContent = g.name + " · v" + g.version;
    $("guideline-body").innerHTML = g.html;
    for (const a of $("guideline-body").querySelectorAll("a")) { a.target = "_blank"; a.rel = "noopener noreferrer"; }
    const seen = seenGuidelines();
    const fresh = (seen[g.name] || 0) < g.version;
    // Shown open when new to this rater or changed since they last read it, folded otherwise (G toggles); while it
    // stays the same from task to task, it stays as the rater left it.
    $("guideline-new").hidden = !fresh || !seen[g.name];
    if (g.name + "@" + g.version !== shownGuideline) $("guideline").open = fresh;
    shownGuideline = g.name + "@" + g.version;
    if (fresh) { seen[g.name] = g.version; try { localStorage.setItem(SEEN, JSON.stringify(seen)); } catch { } }
  }

  function renderContext(t) {
    const chat = Array.isArray(t.messages) && t.messages.length > 0;
    $("context-label").textContent = chat ? "Conversation" : "Prompt";
    $("prompt").hidden = chat && !t.prompt;
    if (t.prompt || !chat) fill($("prompt"), t.promptHtml, t.prompt);
    const box = $("messages");
    box.hidden = !chat;
    box.replaceChildren();
    if (!chat) return;
    for (const m of t.messages) {
      const bubble = document.createElement("div");
      bubble.className = "msg " + m.role;
      const role = document.createElement("div");
      role.className = "role"; role.textContent = m.role;
      const body = document.createElement("div");
      body.className = "md";
      fill(body, m.html, m.content);
      bubble.append(role, body);
      box.appendChild(bubble);
    }
  }

  // keep: the same task drawn again (raw text toggled), so the answer in progress stays.
  function render(t, keep) {
    task = t;
    if (!keep) { scores = {}; strength = null; status("", ""); }
    renderGuideline(t.guideline);
    renderContext(t);
    const compare = t.kind === "compare", chat = Array.isArray(t.messages) && t.messages.length > 0;
    $("compare").hidden = !compare; $("pair-answers").hidden = !compare;
    $("sync-label").hidden = !compare;
    $("pick-tie").hidden = !(compare && t.verdicts.includes("tie"));
    $("pick-bad").hidden = !(compare && t.verdicts.includes("both-bad"));
    $("strength-row").hidden = !(compare && t.strength);
    markStrength();
    for (const b of ["pick-0", "pick-1", "pick-tie", "pick-bad"]) $(b).classList.remove("picked");
    $("rationale").hidden = t.rationale === "off";
    $("rationale").placeholder = t.rationale === "required" ? "Why? (required) — W to write, Esc to leave" : "Why? (optional) — W to write, Esc to leave";
    if (!keep) { $("rationale").value = ""; $("flag-form").hidden = true; $("flag-reason").value = ""; }
    $("lease").textContent = "Yours until " + new Date(t.leaseExpiresAt).toLocaleTimeString();
    const box = $("score");
    box.replaceChildren();
    if (compare) {
      const turn = chat ? "Next assistant turn · " : "Completion ";
      $("label-0").textContent = turn + "A"; $("label-1").textContent = turn + "B";
      fill($("text-0"), t.completions[0].html, t.completions[0].text);
      fill($("text-1"), t.completions[1].html, t.completions[1].text);
      if (!keep) for (const i of [0, 1]) $("text-" + i).scrollTop = 0;
      const extra = [t.verdicts.includes("tie") ? "T a tie" : "", t.verdicts.includes("both-bad") ? "X both bad" : "", t.strength ? "S or M first for slightly or much" : ""].filter(Boolean);
      $("keys").textContent = "Keys: 1 or A picks the left completion, 2 or B the right one" + (extra.length ? "; " + extra.join(", ") : "") + ". ? for all keys.";
    } else {
      t.completions.forEach((c, i) => box.appendChild(scoreCard(c, i, t)));
      $("keys").textContent = "Keys: 1 (poor) to 7 (excellent) scores the highlighted " + (t.criteria.length ? "criterion" : "completion") + ". ? for all keys.";
      highlight();
    }
    show("task");
  }

  // Score items: one cell per completion, or per completion and criterion; keys fill the first empty cell.
  function cells() {
    const names = task.criteria.length ? task.criteria : [null];
    return task.completions.flatMap((c, i) => names.map((k, j) => ({ completion: c.id, criterion: k, id: "score-" + i + (k === null ? "" : "-" + j) })));
  }
  function keyOf(cell) { return cell.criterion === null ? cell.completion : cell.completion + "\u001f" + cell.criterion; }

  function scoreCard(c, i, t) {
    const card = document.createElement("div");
    card.className = "card"; card.id = "score-card-" + i;
    const label = document.createElement("div");
    label.className = "label";
    label.textContent = (t.messages && t.messages.length ? "Next assistant turn" : "Completion") + (t.completions.length > 1 ? " " + (i + 1) + " of " + t.completions.length : "");
    const text = document.createElement("div");
    text.className = "md scroll"; text.id = "score-text-" + i;
    fill(text, c.html, c.text);
    card.append(label, text);
    const names = t.criteria.length ? t.criteria : [null];
    names.forEach((k, j) => {
      const row = document.createElement("div");
      row.className = "criterion"; row.id = "score-" + i + (k === null ? "" : "-" + j);
      if (k !== null) { const n = document.createElement("div"); n.className = "name"; n.textContent = k; row.appendChild(n); }
      const scale = document.createElement("div");
      scale.className = "scale";
      const lo = document.createElement("span"); lo.className = "ends"; lo.textContent = "poor";
      scale.appendChild(lo);
      for (let v = 1; v <= 7; v++) {
        const b = document.createElement("button");
        b.type = "button"; b.textContent = String(v); b.id = row.id + "-" + v;
        b.setAttribute("aria-label", "Score " + v + (k === null ? "" : " for " + k) + " of completion " + (i + 1));
        b.addEventListener("click", () => setScore({ completion: c.id, criterion: k, id: row.id }, v));
        scale.appendChild(b);
      }
      const hi = document.createElement("span"); hi.className = "ends"; hi.textContent = "excellent";
      scale.appendChild(hi);
      row.appendChild(scale);
      card.appendChild(row);
    });
    return card;
  }

  function firstEmpty() { return cells().find((cell) => !(keyOf(cell) in scores)); }

  function highlight() {
    const current = firstEmpty();
    for (const cell of cells()) {
      $(cell.id).classList.toggle("current", !!current && current.id === cell.id);
      for (let v = 1; v <= 7; v++) $(cell.id + "-" + v).classList.toggle("picked", scores[keyOf(cell)] === v);
    }
    task.completions.forEach((c, i) => $("score-card-" + i).classList.toggle("current", !!current && current.completion === c.id));
  }

  function setScore(cell, v) {
    if (busy || !task) return;
    scores[keyOf(cell)] = v;
    highlight();
    if (firstEmpty()) return;
    const body = {};
    for (const c of cells()) {
      if (c.criterion === null) body[c.completion] = scores[keyOf(c)];
      else (body[c.completion] = body[c.completion] || {})[c.criterion] = scores[keyOf(c)];
    }
    answer({ scores: body });
  }

  function markStrength() {
    for (const s of ["slightly", "much"]) {
      $("strength-" + s).classList.toggle("picked", strength === s);
      $("strength-" + s).setAttribute("aria-pressed", String(strength === s));
    }
  }

  function setStrength(s) { if (task && task.strength) { strength = strength === s ? null : s; markStrength(); } }

  function choose(i) {
    if (busy || !task || task.kind !== "compare") return;
    $("pick-" + i).classList.add("picked");
    const body = { choice: task.completions[i].id };
    if (strength) body.strength = strength;
    answer(body);
  }

  function verdict(v) {
    if (busy || !task || task.kind !== "compare" || !task.verdicts.includes(v)) return;
    $(v === "tie" ? "pick-tie" : "pick-bad").classList.add("picked");
    answer({ verdict: v });
  }

  function answer(parts) {
    const why = $("rationale").value.trim();
    if (task.rationale === "required" && !why) {
      for (const b of ["pick-0", "pick-1", "pick-tie", "pick-bad"]) $(b).classList.remove("picked");
      status("This task needs a sentence on why before the answer.", "bad");
      $("rationale").focus();
      return;
    }
    const body = Object.assign({ taskId: task.taskId }, parts);
    if (why && task.rationale !== "off") body.rationale = why;
    send("/api/v1/ratings", body, "Saved ✓");
  }

  async function send(path, body, done) {
    busy = true;
    try {
      const r = await api("POST", path, body);
      if (r.status === 201 || r.status === 200) { status(done, "ok"); await refreshProgress(); await next(); }
      else {
        status("Not saved: " + errorText(r), "bad");
        if (task && task.kind === "score" && r.status === 400) { scores = {}; highlight(); }
        if (token() && (r.status === 409 || r.status === 404 || r.status === 403)) await next();
      }
    } catch (e) {
      status("Not saved: the server could not be reached; try again", "bad");
    } finally {
      busy = false;
    }
  }

  function skip() { if (!busy && task) send("/api/v1/skips", { taskId: task.taskId }, "Skipped: someone else will get it."); }

  function openFlag() { if (task) { $("flag-form").hidden = false; $("flag-reason").focus(); } }

  async function takeBack() {
    if (busy || !undo) return;
    busy = true;
    try {
      const r = await api("POST", "/api/v1/undo", { ratingId: undo.ratingId });
      if (r.status === 200) { status("Rating taken back: answer it again.", "ok"); undo = null; showUndo(); await next(); await refreshProgress(); }
      else { status("Not undone: " + errorText(r), "bad"); await refreshProgress(); }
    } finally {
      busy = false;
    }
  }

  // Long pairs: scrolling one side scrolls the other to the same place (by proportion).
  for (const [from, to] of [["text-0", "text-1"], ["text-1", "text-0"]]) {
    $(from).addEventListener("scroll", () => {
      if (syncing || !$("sync").checked) return;
      const a = $(from), b = $(to), range = a.scrollHeight - a.clientHeight;
      syncing = true;
      b.scrollTop = range > 0 ? a.scrollTop / range * (b.scrollHeight - b.clientHeight) : 0;
      requestAnimationFrame(() => { syncing = false; });
    });
  }

  $("pick-0").addEventListener("click", () => choose(0));
  $("pick-1").addEventListener("click", () => choose(1));
  $("pick-tie").addEventListener("click", () => verdict("tie"));
  $("pick-bad").addEventListener("click", () => verdict("both-bad"));
  $("strength-slightly").addEventListener("click", () => setStrength("slightly"));
  $("strength-much").addEventListener("click", () => setStrength("much"));
  $("skip").addEventListener("click", skip);
  $("flag").addEventListener("click", openFlag);
  $("undo").addEventListener("click", takeBack);
  $("raw").addEventListener("change", () => { if (task) render(task, true); });
  $("flag-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if (busy || !task) return;
    const reason = $("flag-reason").value.trim();
    send("/api/v1/flags", reason ? { taskId: task.taskId, reason } : { taskId: task.taskId }, "Flagged as broken: the admin will look at it.");
  });
  const help = (open) => { $("help").hidden = !open; if (open) $("help-close").focus(); };
  $("help-button").addEventListener("click", () => help(true));
  $("help-close").addEventListener("click", () => help(false));
  $("help").addEventListener("click", (e) => { if (e.target === $("help")) help(false); });

  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (!$("help").hidden) { if (e.key === "Escape" || e.key === "?") { e.preventDefault(); help(false); } return; }
    const active = document.activeElement;
    if (active && (active.tagName === "TEXTAREA" || active.tagName === "INPUT")) {
      if (e.key === "Escape") { if (active === $("flag-reason")) $("flag-form").hidden = true; active.blur(); }
      return;
    }
    if (e.key === "?") { e.preventDefault(); help(true); return; }
    if (!task && e.key.toLowerCase() !== "u") return;
    const k = e.key.toLowerCase();
    const act = {
      u: takeBack, k: skip, f: openFlag, r: () => { $("raw").checked = !$("raw").checked; render(task, true); },
      g: () => { $("guideline").open = !$("guideline").open; }, w: () => { if (!$("rationale").hidden) $("rationale").focus(); },
    }[k];
    if (act) { e.preventDefault(); act(); return; }
    if (task.kind === "compare") {
      const pick = { "1": () => choose(0), a: () => choose(0), "2": () => choose(1), b: () => choose(1),
        t: () => verdict("tie"), x: () => verdict("both-bad"), s: () => setStrength("slightly"), m: () => setStrength("much") }[k];
      if (pick) { e.preventDefault(); pick(); }
    } else if (k >= "1" && k <= "7" && k.length === 1) {
      const cell = firstEmpty();
      if (cell) { e.preventDefault(); setScore(cell, Number(k)); }
    }
  });

  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    $("token").value = "";
    await start();
  });

  $("signout").addEventListener("click", () => { sessionStorage.removeItem(KEY); signedOut(); });

  async function start() {
    if (!token()) { signedOut(); return; }
    if (!await refreshProgress()) return;
    status("", "");
    $("signout").hidden = false;
    await next();
  }

  start();
})();

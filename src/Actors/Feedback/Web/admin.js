"use strict";
(() => {
  // Everything shown here is text (textContent): prompts, reasons and names come from raters and producers.
  const KEY = "rlft.admin";
  const $ = (id) => document.getElementById(id);
  let timer = null, guidelines = [];

  const token = () => sessionStorage.getItem(KEY);
  function status(text, kind) { const s = $("status"); s.textContent = text; s.className = kind || ""; }
  function errorText(r) { return (r.data && r.data.error) ? r.data.error + " (" + r.status + ")" : "request failed (" + r.status + ")"; }

  async function api(method, path, body, raw) {
    const init = { method, headers: { "Authorization": "Bearer " + token() } };
    if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    const res = await fetch(path, init);
    if (raw && res.ok) return { status: res.status, text: await res.text() };
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    if (res.status === 401 || res.status === 403) { sessionStorage.removeItem(KEY); signedOut(data && data.error); }
    return { status: res.status, data };
  }

  function signedOut(reason) {
    clearTimeout(timer);
    $("dash").hidden = true; $("login").hidden = false; $("signout").hidden = true; $("refresh").hidden = true;
    status(reason ? "Signed out: " + reason : "", reason ? "bad" : "");
  }

  function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function num(v, digits) { return v === null || v === undefined ? "–" : (digits === undefined ? String(v) : Number(v).toFixed(digits)); }
  function when(t) { return t ? new Date(t).toLocaleString() : "–"; }
  function button(text, cls, onClick) { const b = el("button", text, cls); b.type = "button"; b.addEventListener("click", onClick); return b; }

  function table(id, heads, rows) {
    const t = $(id);
    t.replaceChildren();
    const tr = el("tr");
    for (const h of heads) { const th = el("th", h.text || h); if (h.num) th.className = "num"; tr.appendChild(th); }
    t.appendChild(tr);
    for (const cells of rows) {
      const r = el("tr");
      for (const c of cells) r.appendChild(c instanceof Node ? c : el("td", c));
      t.appendChild(r);
    }
    if (rows.length === 0) { const r = el("tr"); const td = el("td", "nothing yet", "hint"); td.colSpan = heads.length; r.appendChild(td); t.appendChild(r); }
  }
  function cell(content, cls) { const td = el("td", null, cls); if (content instanceof Node) td.appendChild(content); else td.textContent = content; return td; }

  function render(o) {
    $("updated").textContent = "as of " + new Date(o.at).toLocaleTimeString();
    const tiles = $("tiles");
    tiles.replaceChildren();
    for (const [label, value] of [["Waiting", o.pending], ["Rated", o.rated], ["Timed out", o.timedOut], ["Discarded", o.discarded], ["Ratings", o.ratings],
      ["α pairs", num(o.agreement.compare, 2)], ["α scores", num(o.agreement.score, 2)]]) {
      const t = el("div", null, "tile"); t.append(el("span", label, "hint"), el("b", value)); tiles.appendChild(t);
    }
    table("raters", ["Rater", "Status", { text: "Rated", num: true }, { text: "Per hour", num: true }, { text: "Skipped", num: true }, { text: "Flagged", num: true },
      { text: "Undone", num: true }, { text: "α pairs", num: true }, { text: "α scores", num: true }, { text: "Shared", num: true }, "Last rating", ""],
      o.raters.map((r) => [
        cell(r.name), cell(el("span", r.revoked ? "revoked" : "active", "badge " + (r.revoked ? "bad" : "ok"))),
        cell(num(r.rated), "num"), cell(num(r.perHour, 1), "num"), cell(num(r.skipped), "num"), cell(num(r.flagged), "num"), cell(num(r.undone), "num"),
        cell(num(r.agreement.compare, 2), "num"), cell(num(r.agreement.score, 2), "num"), cell(num(r.agreement.shared), "num"), cell(when(r.last)),
        actions(r),
      ]));
    const names = [...new Set(o.hours.flatMap((h) => Object.keys(h.raters)))].sort();
    const max = Math.max(1, ...o.hours.map((h) => h.total));
    table("hours", ["Hour", ...names.map((n) => ({ text: n, num: true })), { text: "All", num: true }, ""],
      o.hours.slice().reverse().map((h) => {
        const bar = el("div", null, "bar"); bar.style.width = Math.round(100 * h.total / max) + "%";
        return [cell(new Date(h.hour).toISOString().slice(0, 13).replace("T", " ") + ":00"), ...names.map((n) => cell(num(h.raters[n] || 0), "num")), cell(num(h.total), "num"), cell(bar)];
      }));
    table("pairs", ["Rater", "Rater", { text: "Shared items", num: true }, { text: "κ pairs", num: true }, { text: "κ scores", num: true }],
      o.pairs.map((p) => [cell(p.a), cell(p.b), cell(num(p.shared), "num"), cell(num(p.compareKappa, 2), "num"), cell(num(p.scoreKappa, 2), "num")]));
    table("flagged", ["Item", "Prompt", "Flags", "Outcome", ""], o.flagged.map((f) => {
      const flags = el("div", null, "flags");
      for (const x of f.flags) flags.appendChild(el("div", x.rater + ": " + (x.reason || "(no reason given)")));
      const discard = f.outcome ? cell("") : cell(button("Discard", "danger", () => discardItem(f.itemId)), "actions");
      return [cell(f.itemId), cell(f.prompt), cell(flags), cell(f.outcome || "open"), discard];
    }));
  }

  function actions(r) {
    const td = el("td", null, "actions");
    if (!r.revoked) td.appendChild(button("Revoke", "danger", () => revoke(r.name)));
    if (r.source !== "removed") td.appendChild(button("New token", "", () => newToken(r.name)));
    return td;
  }

  function showToken(name, token) {
    const box = $("new-token");
    box.replaceChildren(el("div", "Token for " + name + " (shown only now; give it to them, the server keeps only its hash):"), el("code", token));
    box.hidden = false;
  }

  async function revoke(name) {
    if (!confirm("Revoke " + name + "? Their next request is refused.")) return;
    const r = await api("POST", "/api/v1/admin/raters/" + encodeURIComponent(name) + "/revoke");
    status(r.status === 200 ? name + " is revoked." : "Not revoked: " + errorText(r), r.status === 200 ? "ok" : "bad");
    refresh();
  }

  async function newToken(name) {
    const r = await api("POST", "/api/v1/admin/raters/" + encodeURIComponent(name) + "/token");
    if (r.status === 200) { showToken(name, r.data.token); status("New token issued; the old one no longer works.", "ok"); }
    else status("No token issued: " + errorText(r), "bad");
    refresh();
  }

  async function discardItem(id) {
    const r = await api("POST", "/api/v1/admin/items/" + encodeURIComponent(id) + "/discard", { reason: "discarded by the admin as broken" });
    status(r.status === 200 ? id + " is discarded; its fallback applies." : "Not discarded: " + errorText(r), r.status === 200 ? "ok" : "bad");
    refresh();
  }

  async function loadGuidelines() {
    const r = await api("GET", "/api/v1/admin/guidelines");
    if (r.status !== 200) return;
    guidelines = r.data.guidelines;
    const select = $("guideline-name"), chosen = select.value;
    const names = [...new Set(guidelines.map((g) => g.name))].sort();
    select.replaceChildren(...names.map((n) => el("option", n)));
    select.hidden = names.length === 0;
    if (names.includes(chosen)) select.value = chosen;
    showGuideline();
  }

  function showGuideline() {
    const name = $("guideline-name").value;
    const versions = guidelines.filter((g) => g.name === name);
    const current = versions[versions.length - 1];
    $("guideline-text").value = current ? current.markdown : "";
    $("guideline-info").textContent = current ? "v" + current.version + " (" + current.source + ", " + when(current.updatedAt) + "); " + versions.length + " version" + (versions.length === 1 ? "" : "s") : "";
  }

  async function saveGuideline() {
    const name = $("guideline-new-name").value.trim() || $("guideline-name").value;
    if (!name) { status("Name the guideline first.", "bad"); return; }
    const r = await api("PUT", "/api/v1/admin/guidelines/" + encodeURIComponent(name), { markdown: $("guideline-text").value });
    if (r.status !== 200) { status("Not saved: " + errorText(r), "bad"); return; }
    status(r.data.changed ? "Saved " + name + " v" + r.data.version + "." : "Unchanged: " + name + " stays at v" + r.data.version + ".", "ok");
    $("guideline-new-name").value = "";
    await loadGuidelines();
    $("guideline-name").value = name;
    showGuideline();
  }

  async function download(query, file) {
    const r = await api("GET", "/api/v1/export?" + query, undefined, true);
    if (r.text === undefined) { status("Export failed: " + errorText(r), "bad"); return; }
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([r.text], { type: "application/x-ndjson" }));
    a.download = file;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    status("Exported " + r.text.split("\n").filter(Boolean).length + " lines to " + file + ".", "ok");
  }

  async function refresh() {
    clearTimeout(timer);
    if (!token()) return;
    const r = await api("GET", "/api/v1/admin/overview");
    if (r.status === 200) render(r.data);
    else if (token()) status(errorText(r), "bad");
    if (token()) timer = setTimeout(refresh, 10000);
  }

  $("add-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("add-name").value.trim();
    if (!name) return;
    const r = await api("POST", "/api/v1/admin/raters", { name });
    if (r.status === 201) { showToken(r.data.name, r.data.token); $("add-name").value = ""; status(name + " added.", "ok"); }
    else status("Not added: " + errorText(r), "bad");
    refresh();
  });
  $("guideline-name").addEventListener("change", showGuideline);
  $("guideline-save").addEventListener("click", saveGuideline);
  $("export-preferences").addEventListener("click", () => download("format=preferences" + ($("export-ties").checked ? "&ties=half&both-bad=half" : ""), "preferences.jsonl"));
  $("export-scores").addEventListener("click", () => download("format=scores", "scores.jsonl"));
  $("export-aside").addEventListener("click", () => download("format=set-aside", "set-aside.jsonl"));
  $("refresh").addEventListener("click", refresh);
  $("signout").addEventListener("click", () => { sessionStorage.removeItem(KEY); signedOut(); });
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = $("token").value.trim();
    if (!value) return;
    sessionStorage.setItem(KEY, value);
    $("token").value = "";
    await start();
  });

  async function start() {
    if (!token()) { signedOut(); return; }
    const r = await api("GET", "/api/v1/admin/overview");
    if (r.status !== 200) { if (token()) status(errorText(r), "bad"); return; }
    $("login").hidden = true; $("dash").hidden = false; $("signout").hidden = false; $("refresh").hidden = false;
    status("", "");
    render(r.data);
    await loadGuidelines();
    timer = setTimeout(refresh, 10000);
  }

  start();
})();

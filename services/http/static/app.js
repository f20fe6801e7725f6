// lifeline live page: the whole state arrives as the first event of /events ("status"),
// then every change as it happens ("entry", "transition", "replicas"); EventSource
// reconnects by itself and the server starts every stream with the whole state again.
"use strict";

const page = { node: "", bus: false, entries: new Map(), transitions: [], replicas: [] };

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function when(ts) {
  return ts ? new Date(ts / 1e6).toLocaleTimeString() : "";
}

function age(ts) {
  const s = Math.max(0, Date.now() / 1000 - ts / 1e9);
  if (s < 120) return `${s.toFixed(0)}s`;
  if (s < 7200) return `${(s / 60).toFixed(0)}m`;
  return `${(s / 3600).toFixed(0)}h`;
}

function fill(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  const cols = document.querySelectorAll(`#${id} thead th`).length;
  body.innerHTML = rows.length ? rows.join("") : `<tr><td class="none" colspan="${cols}">none</td></tr>`;
}

function rowsOf(kind) {
  return [...page.entries.values()].filter((r) => r.kind === kind);
}

function render() {
  document.getElementById("node").textContent = page.node;
  const bus = document.getElementById("bus");
  bus.textContent = page.bus ? "bus connected" : "bus down";
  bus.className = `badge ${page.bus ? "ok" : "bad"}`;

  const instances = rowsOf("instance").sort((a, b) => a.name.localeCompare(b.name) || a.node.localeCompare(b.node));
  fill("instances", instances.map((r) => {
    const e = r.event;
    return `<tr data-node="${esc(r.node)}" data-instance="${esc(r.name)}"><td>${esc(r.node)}</td><td>${esc(r.name)}</td>` +
      `<td class="${esc(e.state)}">${esc(e.state)}${r.stale ? ' <span class="stale">stale</span>' : ""}</td>` +
      `<td>${esc(e.effective_priority)}/${esc(e.base_priority)}</td><td class="wrap">${esc((e.vips || []).join(" "))}</td>` +
      `<td>${esc(when(e.ts))} <span class="none">${esc(e.reason)}</span></td></tr>`;
  }));

  const vips = new Map();
  for (const r of instances) {
    for (const vip of r.event.vips || []) {
      const key = `${vip}\u0000${r.name}`;
      const seen = vips.get(key) || { vip, instance: r.name, holders: [] };
      if (r.event.state === "MASTER") seen.holders.push(r.node);
      vips.set(key, seen);
    }
  }
  fill("vips", [...vips.values()].map((v) => {
    const holder = v.holders.join(" ");
    const cls = v.holders.length === 1 ? "ok" : "bad";
    const text = v.holders.length ? holder + (v.holders.length > 1 ? " (more than one!)" : "") : "nobody";
    return `<tr data-vip="${esc(v.vip)}" data-holder="${esc(holder)}"><td>${esc(v.vip)}</td><td>${esc(v.instance)}</td>` +
      `<td class="${cls} wrap">${esc(text)}</td></tr>`;
  }));

  fill("transitions", page.transitions.map((t) =>
    `<tr><td>${esc(when(t.ts))}</td><td>${esc(t.node)}</td><td>${esc(t.name)}</td>` +
    `<td>${esc(t.previous || "")} &rarr; <span class="${esc(t.state)}">${esc(t.state)}</span></td>` +
    `<td class="wrap">${esc(t.reason)}${t.detail ? ": " + esc(t.detail) : ""}</td></tr>`));

  const status = (r) => `<td class="${r.stale ? "stale" : /FAILED|DOWN|QUORUM DOWN/.test(r.state) ? "bad" : "ok"}">${esc(r.state)}</td>`;
  fill("trackers", rowsOf("tracker").map((r) =>
    `<tr><td>${esc(r.node)}</td><td>${esc(r.name)}</td>${status(r)}<td>${esc(age(r.ts))}</td></tr>`));
  fill("reals", [...rowsOf("real"), ...rowsOf("pool")].map((r) =>
    `<tr><td>${esc(r.node)}</td><td>${esc(r.kind)}</td><td>${esc(r.name)}</td>${status(r)}<td>${esc(age(r.ts))}</td></tr>`));
  fill("services", page.replicas.map((r) =>
    `<tr><td>${esc(r.node)}</td><td>${esc(r.service)}</td><td>${esc(r.version)}</td><td>${esc(r.id.slice(0, 8))}</td></tr>`));
}

function connect() {
  const link = document.getElementById("link");
  const source = new EventSource("/events");
  source.addEventListener("open", () => { link.textContent = "live"; link.className = "badge ok"; });
  source.addEventListener("error", () => { link.textContent = "reconnecting"; link.className = "badge bad"; });
  source.addEventListener("status", (msg) => {
    const view = JSON.parse(msg.data);
    page.node = view.node;
    page.bus = view.bus_up;
    page.entries = new Map(view.entries.map((r) => [r.key, r]));
    page.transitions = view.transitions;
    page.replicas = view.replicas;
    render();
  });
  source.addEventListener("entry", (msg) => {
    const row = JSON.parse(msg.data);
    page.entries.set(row.key, row);
    render();
  });
  source.addEventListener("transition", (msg) => {
    const t = JSON.parse(msg.data);
    if (!page.transitions.some((o) => o.ts === t.ts && o.node === t.node && o.name === t.name)) {
      page.transitions = [t, ...page.transitions].slice(0, 50);
    }
    render();
  });
  source.addEventListener("replicas", (msg) => {
    page.replicas = JSON.parse(msg.data);
    render();
  });
}

connect();
setInterval(render, 5000); // ages move on between events

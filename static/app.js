// The page: list Harvester Upgrades through the BFF, dismiss or cancel them with the
// v1.0.5 actions, or send the legacy v1.0.4 PUT, and show what each action changed.
// Plain script under a strict CSP: no inline code, no third-party resources, and
// every URL relative so the page works under any base path.
"use strict";

(function () {
  const TOKEN_KEY = "harvester-upgrade-bff.token";
  const CURRENT = "api/v1.0.5/upgrades";
  const LEGACY = "api/v1.0.4/upgrades";
  const STATE = "harvesterhci.io/upgradeState";
  const READ = "harvesterhci.io/read-message";
  // What extension v1.0.2-v1.0.4 drops from the Steve model before its PUT.
  const LEGACY_DROPPED_METADATA = [
    "finalizers", "uid", "creationTimestamp", "generation", "managedFields", "ownerReferences",
  ];

  const $ = (selector, root) => (root || document).querySelector(selector);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // --- credentials ---------------------------------------------------------------------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  }

  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const [key, ...rest] = part.trim().split("=");
      if (key === name) return decodeURIComponent(rest.join("="));
    }
    return "";
  }

  async function call(method, url, body) {
    const headers = { Accept: "application/json" };
    const bearer = token();
    if (bearer) {
      headers.Authorization = "Bearer " + bearer;
    } else if (method !== "GET") {
      // Without a token the R_SESS cookie is the credential: Rancher's double submit.
      const csrf = cookie("CSRF");
      if (csrf) headers["X-API-CSRF"] = csrf;
    }
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      return { ok: false, status: 0, statusText: "network error", headers: new Headers(), data: null };
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    return {
      ok: response.ok, status: response.status, statusText: response.statusText,
      headers: response.headers, data,
    };
  }

  function errorText(result) {
    const data = result.data;
    if (data && data.type === "error") return `${data.status} ${data.code}: ${data.message}`;
    if (result.status === 0) return "The BFF could not be reached.";
    return `${result.status} ${result.statusText}`;
  }

  function notice(text, kind) {
    const node = $("#notice");
    node.textContent = text || "";
    node.className = "notice" + (kind ? " " + kind : "");
  }

  // --- the list ------------------------------------------------------------------------

  const labelsOf = (obj) => (obj && obj.metadata && obj.metadata.labels) || {};
  const path = (obj) => `${encodeURIComponent(obj.metadata.namespace)}/${encodeURIComponent(obj.metadata.name)}`;

  function stateBadge(state) {
    const kind = state === "Succeeded" ? "ok" : state === "Failed" ? "bad" : state ? "busy" : "none";
    return el("span", { class: "badge " + kind }, state || "none");
  }

  function conditionList(obj) {
    const conditions = (obj.status && obj.status.conditions) || [];
    if (!conditions.length) return el("span", { class: "muted" }, "none");
    return el("ul", { class: "conditions" }, conditions.map((c) =>
      el("li", { class: "cond " + String(c.status).toLowerCase(), title: c.message || c.reason || "" },
        `${c.type}: ${c.status}`)));
  }

  function row(obj) {
    const labels = labelsOf(obj);
    const read = labels[READ] === "true";
    const id = `${obj.metadata.namespace}/${obj.metadata.name}`;
    const button = (label, kind, title) => el("button", {
      type: "button", class: kind === "legacy" ? "quiet" : "", title,
      dataset: { action: kind, target: id },
    }, label);
    return el("tr", { dataset: { name: obj.metadata.name, namespace: obj.metadata.namespace } },
      el("td", { class: "name" }, el("strong", {}, obj.metadata.name),
        el("div", { class: "muted" }, obj.metadata.namespace,
          obj.spec && obj.spec.version ? ` · ${obj.spec.version}` : "")),
      el("td", { "data-field": "state" }, stateBadge(labels[STATE])),
      el("td", {}, conditionList(obj)),
      el("td", { "data-field": "read", class: read ? "read yes" : "read no" }, read ? "read" : "not read"),
      el("td", { class: "actions" }, el("div", { class: "buttons" },
        button("Dismiss", "dismiss", "POST ?action=dismiss (v1.0.5)"),
        button("Cancel", "cancel", "POST ?action=cancel (v1.0.5)"),
        button("Legacy v1.0.4 PUT", "legacy", "PUT the object without status, as extension v1.0.4 does"))));
  }

  let known = new Map();

  async function load() {
    const result = await call("GET", CURRENT);
    const body = $("#upgrades tbody");
    if (!result.ok) {
      body.replaceChildren();
      known = new Map();
      $("#empty").hidden = true;
      if (result.status === 401 && !token()) notice("Enter a bearer token to see the upgrades.", "info");
      else notice(errorText(result), "bad");
      return false;
    }
    const items = (result.data && result.data.data) || [];
    known = new Map(items.map((obj) => [`${obj.metadata.namespace}/${obj.metadata.name}`, obj]));
    body.replaceChildren(...items.map(row));
    $("#empty").hidden = items.length > 0;
    notice(`${items.length} upgrade${items.length === 1 ? "" : "s"} in ${items.length ? items[0].metadata.namespace : "the namespace"}.`);
    return true;
  }

  // --- what changed --------------------------------------------------------------------

  function flatten(value, prefix, out) {
    if (value !== null && typeof value === "object") {
      const keys = Object.keys(value);
      if (!keys.length) out.set(prefix, Array.isArray(value) ? "[]" : "{}");
      for (const key of keys) flatten(value[key], prefix ? `${prefix}.${key}` : key, out);
    } else {
      out.set(prefix, JSON.stringify(value));
    }
    return out;
  }

  // Lines like "+ key = value", "- key = value", "~ key: before → after"; empty when equal.
  function diff(before, after) {
    const a = flatten(before === undefined ? null : before, "", new Map());
    const b = flatten(after === undefined ? null : after, "", new Map());
    const lines = [];
    for (const [key, value] of b) {
      if (!a.has(key)) lines.push({ kind: "added", text: `+ ${key || "(all)"} = ${value}` });
      else if (a.get(key) !== value) lines.push({ kind: "changed", text: `~ ${key || "(all)"}: ${a.get(key)} → ${value}` });
    }
    for (const [key, value] of a) {
      if (!b.has(key)) lines.push({ kind: "removed", text: `- ${key || "(all)"} = ${value}` });
    }
    return lines;
  }

  function showDiff(node, lines, unchangedText) {
    if (!lines.length) {
      node.replaceChildren(el("span", { class: "same" }, unchangedText));
      return;
    }
    node.replaceChildren(el("ul", { class: "diff" }, lines.map((l) => el("li", { class: l.kind }, l.text))));
  }

  function warnings(headers) {
    const raw = headers.get("Warning") || "";
    const found = [...raw.matchAll(/\d{3} [^ ]+ "((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]);
    return found.length ? found : raw ? [raw] : [];
  }

  function report(request, before, result) {
    const panel = $("#result");
    const field = (name) => $(`[data-field="${name}"]`, panel);
    panel.hidden = false;
    panel.classList.toggle("failed", !result.ok);
    field("request").textContent = request;
    field("response").textContent = `${result.status} ${result.statusText}`.trim();
    const changed = result.headers.get("X-Upgrade-Bff-Changed");
    field("changed").textContent = changed === null ? "—" : changed;
    const warned = warnings(result.headers);
    field("warnings").replaceChildren(warned.length
      ? el("ul", { class: "warnings" }, warned.map((w) => el("li", {}, w)))
      : el("span", { class: "muted" }, "none"));
    const error = field("error");
    if (result.ok && result.data) {
      error.hidden = true;
      error.textContent = "";
      showDiff(field("labels"), diff(labelsOf(before), labelsOf(result.data)), "unchanged");
      showDiff(field("status-diff"), diff(before && before.status, result.data.status), "unchanged");
    } else {
      error.hidden = false;
      error.textContent = errorText(result);
      field("labels").replaceChildren(el("span", { class: "muted" }, "no change"));
      field("status-diff").replaceChildren(el("span", { class: "muted" }, "no change"));
    }
  }

  // --- actions -------------------------------------------------------------------------

  // The body extension v1.0.2-v1.0.4 sends on "Dismiss it": its Steve model without
  // status and server-owned metadata, plus the label.
  function legacyBody(obj) {
    const body = JSON.parse(JSON.stringify(obj));
    delete body.status;
    delete body.links;
    delete body.actions;
    for (const key of LEGACY_DROPPED_METADATA) delete body.metadata[key];
    body.metadata.labels = Object.assign({}, body.metadata.labels, { [READ]: "true" });
    return body;
  }

  async function act(kind, id) {
    const known_ = known.get(id);
    if (!known_) return;
    const base = kind === "legacy" ? LEGACY : CURRENT;
    const url = `${base}/${path(known_)}`;
    // Read the object fresh, so "before" is what the server had just before the action.
    const fresh = await call("GET", url);
    const before = fresh.ok ? fresh.data : known_;
    let request;
    let result;
    if (kind === "legacy") {
      request = `PUT ${url}`;
      result = await call("PUT", url, legacyBody(before));
    } else {
      request = `POST ${url}?action=${kind}`;
      result = await call("POST", `${url}?action=${kind}`);
    }
    report(request, before, result);
    await load();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const input = $("#token");
    const forget = $("#forget");
    forget.hidden = !token();

    $("#login").addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      input.value = "";
      forget.hidden = !token();
      await load();
    });

    forget.addEventListener("click", async () => {
      sessionStorage.removeItem(TOKEN_KEY);
      forget.hidden = true;
      $("#result").hidden = true;
      await load();
    });

    $("#refresh").addEventListener("click", () => load());

    $("#upgrades").addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const buttons = document.querySelectorAll("#upgrades button");
      buttons.forEach((b) => { b.disabled = true; });
      try {
        await act(button.dataset.action, button.dataset.target);
      } finally {
        document.querySelectorAll("#upgrades button").forEach((b) => { b.disabled = false; });
      }
    });

    load();
  });
})();

// The page: list Harvester Upgrades through the BFF, dismiss or cancel them with the
// v1.0.5 actions, or send the legacy v1.0.4 PUT, and show what each action changed.
// The list keeps itself current (see "keeping the list current" below): server-sent
// events from the BFF's read cache, or polling when there is no stream. In the sandbox only, the page
// also offers the sandbox tokens and a button that sends the v1.0.4 body straight to
// the API emulator: the bug the BFF prevents.
// Plain script under a strict CSP: no inline code, no third-party resources, and
// every URL relative so the page works under any base path.
"use strict";

(function () {
  const TOKEN_KEY = "harvester-upgrade-bff.token";
  const CURRENT = "api/v1.0.5/upgrades";
  const LEGACY = "api/v1.0.4/upgrades";
  const STATE = "harvesterhci.io/upgradeState";
  const READ = "harvesterhci.io/read-message";
  const FINISHED = ["Succeeded", "Failed"];
  const EVENTS = "api/v1.0.5/upgrades/events";
  // Whether this caller may patch Upgrades (the BFF asks the API server): every action
  // of the page's is such a patch, so a caller who may not gets them disabled.
  const ACCESS = "api/v1.0.5/upgrades/access";
  const POLL_MS = 2000;
  // After a stream that was open ends (the BFF restarted, the connection broke), poll
  // meanwhile and open it again this much later.
  const STREAM_RETRY_MS = 5000;
  const CLOCK_MS = 30000;
  // What extension v1.0.2-v1.0.4 drops from the Steve model before its PUT.
  const LEGACY_DROPPED_METADATA = [
    "finalizers", "uid", "creationTimestamp", "generation", "managedFields", "ownerReferences",
  ];

  const $ = (selector, root) => (root || document).querySelector(selector);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (value === true) node.setAttribute(key, "");
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

  // A bearer token, or Rancher's session (whose CSRF cookie the page can see).
  const signedIn = () => Boolean(token() || cookie("CSRF"));

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
    const className = "notice" + (kind ? " " + kind : "");
    // Only when it changes: the region is live, and the list refreshes itself.
    if (node.textContent !== (text || "")) node.textContent = text || "";
    if (node.className !== className) node.className = className;
  }

  // --- time ----------------------------------------------------------------------------

  const relativeFormat = new Intl.RelativeTimeFormat("en", { numeric: "always" });
  const UNITS = [
    ["year", 365 * 24 * 3600], ["month", 30 * 24 * 3600], ["week", 7 * 24 * 3600],
    ["day", 24 * 3600], ["hour", 3600], ["minute", 60],
  ];

  function relative(iso, now) {
    const seconds = (Date.parse(iso) - now) / 1000;
    if (Math.abs(seconds) < 60) return "just now";
    for (const [unit, size] of UNITS) {
      if (Math.abs(seconds) >= size) return relativeFormat.format(Math.trunc(seconds / size), unit);
    }
    return "just now";
  }

  function absolute(iso) {
    return new Date(Date.parse(iso)).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function timeEl(iso) {
    return el("time", { datetime: iso, title: absolute(iso) }, relative(iso, Date.now()));
  }

  function tickClock() {
    const now = Date.now();
    for (const node of document.querySelectorAll("#upgrades time[datetime]")) {
      const text = relative(node.getAttribute("datetime"), now);
      if (node.textContent !== text) node.textContent = text;
    }
  }

  // When the upgrade finished, or last moved on, or (failing both) was created.
  function when(obj) {
    const conditions = (obj.status && obj.status.conditions) || [];
    const completed = conditions.find((c) => c.type === "Completed");
    if (completed && completed.lastUpdateTime && completed.status !== "Unknown") {
      return ["finished", completed.lastUpdateTime];
    }
    const times = conditions.map((c) => c.lastUpdateTime).filter(Boolean).sort();
    if (times.length) return ["last step", times[times.length - 1]];
    if (obj.metadata.creationTimestamp) return ["created", obj.metadata.creationTimestamp];
    return null;
  }

  // --- the list ------------------------------------------------------------------------

  const labelsOf = (obj) => (obj && obj.metadata && obj.metadata.labels) || {};
  const keyOf = (obj) => `${obj.metadata.namespace}/${obj.metadata.name}`;
  const path = (obj) => `${encodeURIComponent(obj.metadata.namespace)}/${encodeURIComponent(obj.metadata.name)}`;
  const isFinished = (obj) => FINISHED.includes(labelsOf(obj)[STATE]);

  function stateBadge(state) {
    const kind = state === "Succeeded" ? "ok" : state === "Failed" ? "bad" : state ? "busy" : "none";
    return el("span", { class: "badge " + kind }, state || "none");
  }

  function conditionList(obj) {
    const conditions = (obj.status && obj.status.conditions) || [];
    if (!conditions.length) return el("span", { class: "muted" }, "none");
    return el("ul", { class: "conditions" }, conditions.map((c) => {
      const about = [c.reason, c.message].filter(Boolean).join(": ");
      const at = c.lastUpdateTime ? `${about ? about + "; " : ""}updated ${absolute(c.lastUpdateTime)}` : about;
      return el("li", { class: "cond " + String(c.status).toLowerCase(), title: at || null },
        `${c.type}: ${c.status}`);
    }));
  }

  function versions(obj) {
    const to = obj.spec && obj.spec.version;
    const from = obj.status && obj.status.previousVersion;
    if (!to && !from) return null;
    return el("span", { class: "versions", "data-field": "versions" },
      from ? `${from} → ${to || "?"}` : `→ ${to}`);
  }

  // Why Dismiss, Cancel and the legacy PUT would change nothing now, or null when they
  // would mark the message read. Each is one label patch with the caller's credential,
  // which the BFF writes only on a finished, unread upgrade (CONTRACT: semantics of a
  // write): the caller's permission first, then the message, then the upgrade's state.
  function blocked(obj) {
    const labels = labelsOf(obj);
    if (access && access.patch === false) {
      return {
        kind: "permission",
        text: `You may only read Upgrades in ${access.namespace || obj.metadata.namespace}: ` +
          "your credential may not patch them, so Dismiss and Cancel would be refused (403).",
      };
    }
    if (labels[READ] === "true") {
      return { kind: "read", text: "Already read: Dismiss and Cancel would change nothing." };
    }
    if (!isFinished(obj)) {
      const state = labels[STATE] || "no state yet";
      return {
        kind: "in-progress",
        text: `Dismiss once the upgrade has Succeeded or Failed; it is ${state}. ` +
          "Cancel would change nothing: Harvester cannot cancel an upgrade in progress.",
      };
    }
    return null;
  }

  function row(obj) {
    const labels = labelsOf(obj);
    const read = labels[READ] === "true";
    const id = keyOf(obj);
    const whyId = `why-${obj.metadata.namespace}-${obj.metadata.name}`;
    const why = blocked(obj);
    const button = (label, kind, title, disabled) => el("button", {
      type: "button", class: { cancel: "quiet", legacy: "quiet", direct: "danger" }[kind] || "", title,
      disabled: disabled || busy, "aria-describedby": disabled ? whyId : null,
      dataset: { action: kind, target: id },
    }, label);
    const stamp = when(obj);
    return el("tr", { dataset: { name: obj.metadata.name, namespace: obj.metadata.namespace, rv: obj.metadata.resourceVersion || "" } },
      el("td", { class: "name", "data-label": "Name" }, el("strong", {}, obj.metadata.name),
        el("div", { class: "muted" }, obj.metadata.namespace, " · ", versions(obj)),
        stamp ? el("div", { class: "muted when" }, `${stamp[0]} `, timeEl(stamp[1])) : null),
      el("td", { "data-field": "state", "data-label": "State" }, stateBadge(labels[STATE])),
      el("td", { "data-label": "Conditions" }, conditionList(obj)),
      el("td", { "data-field": "read", "data-label": "Message read", class: read ? "read yes" : "read no" },
        read ? "read" : "not read"),
      el("td", { class: "actions", "data-label": "Actions" },
        el("div", { class: "buttons" },
          button("Dismiss", "dismiss", "POST ?action=dismiss (v1.0.5)", Boolean(why)),
          button("Cancel", "cancel", "POST ?action=cancel (v1.0.5): on a finished upgrade, marks the message read", Boolean(why)),
          button("Legacy v1.0.4 PUT", "legacy", "PUT the object without status through the BFF, as extension v1.0.4 does", Boolean(why)),
          sandbox ? button("Direct PUT to the cluster (the bug)", "direct",
            "PUT the same v1.0.4 body straight to the API emulator, bypassing the BFF", false) : null),
        why ? el("p", { class: "why", id: whyId, "data-field": "why", "data-reason": why.kind }, why.text) : null));
  }

  let known = new Map();
  let items = [];
  let shown = "";
  let busy = false;
  // What the BFF said this caller may do ({namespace, patch}), and for which credential.
  let access = null;
  let accessFor = null;

  // Re-render only when something changed, keeping focus on the same button.
  function render(force) {
    const fingerprint = items.map((obj) => `${keyOf(obj)}@${obj.metadata.resourceVersion}`).join(" ") +
      (busy ? " busy" : "") + ` patch=${access ? access.patch : "?"}`;
    if (!force && fingerprint === shown) return;
    shown = fingerprint;
    const focused = document.activeElement && document.activeElement.closest
      ? document.activeElement.closest("#upgrades button[data-action]") : null;
    const refocus = focused ? [focused.dataset.action, focused.dataset.target] : null;
    $("#upgrades tbody").replaceChildren(...items.map(row));
    $("#empty").hidden = items.length > 0;
    if (refocus) {
      const again = [...document.querySelectorAll("#upgrades button[data-action]")]
        .find((b) => b.dataset.action === refocus[0] && b.dataset.target === refocus[1]);
      if (again && !again.disabled) again.focus();
    }
  }

  // Signed out (the first load, or after "Forget token"): no table, but what to do.
  function signedOut() {
    items = [];
    known = new Map();
    access = null;
    accessFor = null;
    render(true);
    $("#empty").hidden = true;
    $("#upgrades").hidden = true;
    $("#signin").hidden = false;
    notice("");
  }

  const credential = () => (token() ? "token " + token() : "session");

  async function load() {
    if (!signedIn()) {
      signedOut();
      return false;
    }
    $("#signin").hidden = true;
    $("#upgrades").hidden = false;
    const result = await call("GET", CURRENT);
    // The caller's permission: asked once per credential (and on Refresh), not per poll,
    // and only of a caller the list admitted (a refused token is refused once), before
    // the rows are drawn, so no button is ever offered that the caller may not use.
    const asking = accessFor === credential() ? null : credential();
    if (result.ok && asking) {
      const allowed = await call("GET", ACCESS);
      // Not known (a failed review, a BFF without the endpoint): the write decides.
      access = allowed.ok && allowed.data ? allowed.data : null;
      accessFor = allowed.ok || allowed.status === 404 ? asking : null;
    }
    if (!result.ok) {
      items = [];
      known = new Map();
      render(true);
      $("#empty").hidden = true;
      notice(errorText(result), "bad");
      // A token the server refuses stays refused: stop asking until a new one is given.
      if (result.status === 401 || result.status === 403) changes.stop();
      return false;
    }
    items = (result.data && result.data.data) || [];
    known = new Map(items.map((obj) => [keyOf(obj), obj]));
    render(false);
    notice(`${items.length} upgrade${items.length === 1 ? "" : "s"} in ${items.length ? items[0].metadata.namespace : "the namespace"}.`);
    return true;
  }

  // --- keeping the list current --------------------------------------------------------

  // Two sources of "something changed". The stream: server-sent events fed by the BFF's
  // read cache (a snapshot, then each change), read with fetch because EventSource cannot
  // send the Authorization header. Polling the list: the fallback when the BFF has no
  // stream (404 without the read cache) or while a broken stream is being reopened.
  function pollingSource(intervalMs) {
    let timer = null;
    return {
      start(onChange) {
        this.stop();
        timer = setInterval(() => { if (!document.hidden) onChange(); }, intervalMs);
      },
      stop() {
        if (timer !== null) clearInterval(timer);
        timer = null;
      },
      get running() { return timer !== null; },
    };
  }

  // One server-sent event block ("event: x\ndata: y") as [kind, parsed data], or null.
  function parseEvent(block) {
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;  // a keepalive comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") kind = value;
      else if (field === "data") data.push(value);
    }
    return data.length ? [kind, JSON.parse(data.join("\n"))] : null;
  }

  async function readStream(signal, onEvent) {
    const headers = { Accept: "text/event-stream" };
    const bearer = token();
    if (bearer) headers.Authorization = "Bearer " + bearer;
    let response;
    try {
      response = await fetch(EVENTS, { headers, credentials: "same-origin", cache: "no-store", signal });
    } catch (err) {
      return { opened: false, status: 0 };
    }
    if (!response.ok || !response.body) {
      try { await response.text(); } catch (err) { /* already gone */ }
      return { opened: false, status: response.status };
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event) onEvent(...event);
        }
      }
    } catch (err) {
      // Stopped by the page, or the connection broke: either way the stream has ended.
    }
    return { opened: true, status: response.status };
  }

  function streamSource() {
    let current = null;
    return {
      start(onEvent, onEnd) {
        this.stop();
        const controller = new AbortController();
        current = controller;
        readStream(controller.signal, onEvent).then((outcome) => {
          if (current !== controller) return;  // stopped (or restarted) meanwhile
          current = null;
          onEnd(outcome);
        });
      },
      stop() {
        if (current !== null) current.abort();
        current = null;
      },
      get running() { return current !== null; },
    };
  }

  const polling = pollingSource(POLL_MS);
  const stream = streamSource();
  let reopen = null;
  const changes = {
    stop() {
      polling.stop();
      stream.stop();
      clearTimeout(reopen);
      reopen = null;
    },
  };
  let loading = null;

  // One list request at a time; none while an action is in flight.
  function refresh() {
    if (busy || loading) return loading;
    loading = load().finally(() => { loading = null; });
    return loading;
  }

  function showList(list) {
    items = list;
    known = new Map(items.map((obj) => [keyOf(obj), obj]));
    render(false);
  }

  function applyChange(change) {
    const rest = items.filter((obj) => keyOf(obj) !== change.id);
    if (change.type !== "DELETED" && change.object) rest.push(change.object);
    rest.sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
    showList(rest);
  }

  function source(kind) {
    $("#live").dataset.source = kind;
    $("#live").title = kind === "events"
      ? "Changes arrive as they happen (server-sent events)"
      : `Asks for the list every ${POLL_MS / 1000} s`;
  }

  function live() {
    clearTimeout(reopen);
    reopen = null;
    stream.start((kind, data) => {
      if (kind === "snapshot") {
        polling.stop();
        source("events");
        showList((data && data.data) || []);
      } else if (kind === "change") {
        applyChange(data);
      }
    }, (outcome) => {
      if (outcome.status === 401 || outcome.status === 403) {
        changes.stop();
        refresh();  // shows why, as a list request would
        return;
      }
      source("polling");
      polling.start(refresh);
      // 404: this BFF has no stream (no read cache); poll for as long as the page is open.
      if (outcome.status !== 404) reopen = setTimeout(live, STREAM_RETRY_MS);
    });
  }

  function follow() {
    $("#live").hidden = false;
    live();
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

  function panel() {
    const node = $("#result");
    return { node, field: (name) => $(`[data-field="${name}"]`, node) };
  }

  function showController(lines) {
    const { field } = panel();
    field("controller-title").hidden = !lines;
    field("controller").hidden = !lines;
    field("controller").replaceChildren(...(lines || []).map((l) => el("div", { class: l.kind || "" }, l.text)));
  }

  // Why an answer that wrote nothing wrote nothing (the BFF answers 200 either way).
  function unchangedWhy(kind, before) {
    if (!before) return null;
    if (labelsOf(before)[READ] === "true") return "the message was already read";
    if (kind === "cancel" && !isFinished(before)) {
      const state = labelsOf(before)[STATE] || "no state yet";
      return `Harvester cannot cancel an upgrade in progress (it is ${state}); ` +
        "Cancel marks the message read only once the upgrade has Succeeded or Failed";
    }
    return null;
  }

  function report(request, before, result, kind) {
    const { node, field } = panel();
    node.hidden = false;
    node.classList.toggle("failed", !result.ok);
    field("request").textContent = request;
    field("response").textContent = `${result.status} ${result.statusText}`.trim();
    const changed = result.headers.get("X-Upgrade-Bff-Changed");
    const why = changed === "false" && result.ok ? unchangedWhy(kind, before) : null;
    field("changed").textContent = changed === null ? "—" : why ? `false: nothing was written; ${why}.` : changed;
    const warned = warnings(result.headers);
    field("warnings").replaceChildren(warned.length
      ? el("ul", { class: "warnings" }, warned.map((w) => el("li", {}, w)))
      : el("span", { class: "muted" }, "none"));
    showController(null);
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

  // The sandbox's direct PUT: what the cluster stored, then what its controller did.
  function reportDirect(result) {
    const { field } = panel();
    const answer = result.data || {};
    report(`${answer.request || "PUT"} (straight to the API emulator, bypassing the BFF)`,
      answer.before, { ...result, data: result.ok ? answer.after : result.data });
    if (!result.ok) return;
    field("changed").textContent = "true: the whole object was replaced";
    const relayed = (answer.warnings || []).map((w) => w.replace(/^\d{3} [^ ]+ "(.*)"$/, "$1"));
    field("warnings").replaceChildren(relayed.length
      ? el("ul", { class: "warnings" }, relayed.map((w) => el("li", {}, w)))
      : el("span", { class: "muted" }, "none"));
    const wiped = !(answer.stored && answer.stored.status);
    const counts = answer.reinitialisations || {};
    const reinitialised = counts.after > counts.before;
    const lines = [];
    if (answer.guard && !wiped) {
      lines.push({ kind: "ok", text: "The cluster guard restored status in the PUT: nothing was wiped." });
    } else if (wiped) {
      lines.push({ kind: "bad", text: "The PUT wiped status: the CRD has no status subresource." });
    }
    lines.push({
      kind: reinitialised ? "bad" : "ok",
      text: reinitialised
        ? `Re-initialised the upgrade: it starts over (re-initialisations ${counts.before} → ${counts.after}).`
        : `Re-initialised nothing (re-initialisations ${counts.before} → ${counts.after}).`,
    });
    for (const line of answer.controller || []) lines.push({ kind: "log", text: `log: ${line}` });
    showController(lines);
  }

  // The sandbox's v1.0.4 IPPool edit: what the cluster stored, allocations kept or lost.
  function reportIppool(result) {
    const { field } = panel();
    const answer = result.data || {};
    report(`${answer.request || "PUT"} (extension v1.0.4's IPPool edit, straight to the API emulator)`,
      answer.before, { ...result, data: result.ok ? answer.after : result.data });
    if (!result.ok) return;
    field("changed").textContent = "true: the whole object was replaced";
    const relayed = (answer.warnings || []).map((w) => w.replace(/^\d{3} [^ ]+ "(.*)"$/, "$1"));
    field("warnings").replaceChildren(relayed.length
      ? el("ul", { class: "warnings" }, relayed.map((w) => el("li", {}, w)))
      : el("span", { class: "muted" }, "none"));
    const kept = Boolean(answer.after && answer.after.status);
    showController([kept
      ? { kind: "ok", text: "The cluster guard kept the pool's IP allocations; the description changed." }
      : { kind: "bad", text: "The save wiped the pool's IP allocations: addresses in use can be handed out again." }]);
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
    const base = kind === "legacy" || kind === "direct" ? LEGACY : CURRENT;
    const url = `${base}/${path(known_)}`;
    // Read the object fresh, so "before" is what the server had just before the action.
    const fresh = await call("GET", url);
    const before = fresh.ok ? fresh.data : known_;
    if (kind === "direct") {
      reportDirect(await call("POST", `${sandbox.directPut}/${path(known_)}`, legacyBody(before)));
    } else if (kind === "legacy") {
      report(`PUT ${url}`, before, await call("PUT", url, legacyBody(before)), kind);
    } else {
      report(`POST ${url}?action=${kind}`, before, await call("POST", `${url}?action=${kind}`), kind);
    }
  }

  // --- the sandbox ---------------------------------------------------------------------

  // Set only when the page is served by `harvester-upgrade-bff sandbox`, which marks it.
  let sandbox = null;

  async function discoverSandbox() {
    const marker = document.querySelector('meta[name="harvester-upgrade-bff-sandbox"]');
    if (!marker) return;
    const result = await call("GET", marker.getAttribute("content"));
    if (!result.ok || !result.data) return;
    sandbox = { ...result.data, directPut: "sandbox/direct-put" };
    const choices = $("#sandbox-tokens");
    for (const choice of sandbox.tokens || []) {
      choices.append(el("button", {
        type: "button", class: "quiet", title: choice.can, "aria-label": `Use ${choice.token} (${choice.can})`,
        dataset: { token: choice.token },
      }, choice.token));
    }
    choices.hidden = false;
    const offered = (sandbox.tokens || []).map((c) => `${c.token} (${c.can})`);
    $("#signin-how").textContent = offered.length
      ? `Choose a sandbox token above: ${offered.join(" or ")}. Or paste a bearer token.`
      : $("#signin-how").textContent;
    $("#sandbox-foot").hidden = false;
    $("#ippool-edit").addEventListener("click", async () => {
      reportIppool(await call("POST", "sandbox/ippool-edit"));
    });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const input = $("#token");
    const forget = $("#forget");
    forget.hidden = !token();

    async function useToken(value) {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      input.value = "";
      forget.hidden = !token();
      if (await load()) follow();
    }

    $("#login").addEventListener("submit", async (event) => {
      event.preventDefault();
      await useToken(input.value.trim());
    });

    $("#sandbox-tokens").addEventListener("click", async (event) => {
      const choice = event.target.closest("button[data-token]");
      if (choice) await useToken(choice.dataset.token);
    });

    forget.addEventListener("click", async () => {
      sessionStorage.removeItem(TOKEN_KEY);
      forget.hidden = true;
      changes.stop();
      $("#live").hidden = true;
      $("#result").hidden = true;
      await load();
    });

    $("#refresh").addEventListener("click", () => {
      accessFor = null;  // ask the caller's permission again too
      load();
    });

    $("#upgrades").addEventListener("click", async (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button || button.disabled) return;
      busy = true;
      if (loading) await loading;
      render(true);
      try {
        await act(button.dataset.action, button.dataset.target);
      } finally {
        busy = false;
        await load();
        render(true);
      }
    });

    setInterval(tickClock, CLOCK_MS);
    await discoverSandbox();
    if (await load()) follow();
  });
})();

// A readable rendering of ../openapi.json: operations grouped by tag, with their
// parameters, request bodies and responses, then the schemas. Plain script, no
// third-party code, so it works under the BFF's strict CSP.
"use strict";

(function () {
  const METHODS = ["get", "put", "post", "patch", "delete", "head", "options", "trace"];
  let doc = null;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Follow a local "$ref" ("#/components/...") to what it names.
  function deref(node) {
    let seen = 0;
    while (node && typeof node === "object" && typeof node.$ref === "string" && seen++ < 10) {
      const parts = node.$ref.replace(/^#\//, "").split("/")
        .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
      node = parts.reduce((at, key) => (at ? at[key] : undefined), doc);
    }
    return node;
  }

  // Descriptions are CommonMark; inline code is the only markup they use.
  function prose(text) {
    return String(text || "").split("`").map((part, i) => (i % 2 ? el("code", {}, part) : part));
  }

  const refName = (node) => (node && typeof node.$ref === "string" ? node.$ref.split("/").pop() : null);
  const slug = (text) => text.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, "");

  // A short description of a schema: "UpgradeResource", "string, one of a | b", ...
  function describe(schema) {
    if (!schema) return "";
    const name = refName(schema);
    if (name) return el("a", { href: "#schema-" + slug(name) }, name);
    if (schema.allOf) return el("span", {}, schema.allOf.map((s, i) => [i ? " & " : "", describe(s)]));
    const bits = [];
    if ("const" in schema) bits.push(`= ${JSON.stringify(schema.const)}`);
    if (schema.enum) bits.push(`one of ${schema.enum.map((v) => JSON.stringify(v)).join(" | ")}`);
    if (schema.type === "array") return el("span", {}, "array of ", describe(schema.items));
    if (!schema.type && schema.properties) {
      // A refinement inside allOf, e.g. the error status for one response.
      return el("span", {}, Object.entries(schema.properties).map(([k, v], i) =>
        [i ? ", " : "", `${k} `, describe(v)]));
    }
    if (schema.type && !schema.enum && !("const" in schema)) bits.unshift(schema.type);
    if (schema.type === "object" && schema.additionalProperties && typeof schema.additionalProperties === "object") {
      bits.push(`map of ${schema.additionalProperties.type || "values"}`);
    }
    if (schema.pattern) bits.push(`pattern ${schema.pattern}`);
    if (schema.maxLength !== undefined) bits.push(`max length ${schema.maxLength}`);
    if (schema.minimum !== undefined) bits.push(`≥ ${schema.minimum}`);
    if (schema.format) bits.push(`format ${schema.format}`);
    return bits.join(", ") || "any";
  }

  function table(headings, rows) {
    return el("table", {},
      el("thead", {}, el("tr", {}, headings.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))));
  }

  function parameters(pathItem, op) {
    const all = [...(pathItem.parameters || []), ...(op.parameters || [])].map(deref);
    if (!all.length) return null;
    return [
      el("h4", {}, "Parameters"),
      table(["Name", "In", "Required", "Schema", "Description"], all.map((p) => [
        el("code", {}, p.name), p.in, p.required ? "yes" : "no", describe(p.schema), prose(p.description),
      ])),
    ];
  }

  function examples(media) {
    const entries = Object.entries(media.examples || {});
    return entries.map(([name, example]) => {
      const value = deref(example);
      return el("details", {},
        el("summary", {}, `Example ${name}${value.summary ? ": " + value.summary : ""}`),
        el("pre", {}, JSON.stringify(value.value, null, 2)));
    });
  }

  function requestBody(op) {
    const body = deref(op.requestBody);
    if (!body) return null;
    return [
      el("h4", {}, "Request body" + (body.required ? " (required)" : "")),
      body.description ? el("p", {}, prose(body.description)) : null,
      Object.entries(body.content || {}).map(([type, media]) => [
        el("p", {}, el("code", {}, type), " ", describe(media.schema)),
        examples(media),
      ]),
    ];
  }

  function responses(op) {
    const rows = Object.entries(op.responses || {}).map(([status, raw]) => {
      const response = deref(raw);
      const content = Object.entries(response.content || {});
      const codes = content.flatMap(([, media]) => Object.keys(media.examples || {}));
      return [
        el("span", { class: `status-code s${status[0]}` }, status),
        el("span", {}, prose(response.description),
          codes.length ? el("div", { class: "muted" }, "codes: ", codes.join(", ")) : null),
        content.map(([type, media], i) => [i ? el("br") : null, el("code", {}, type), " ", describe(media.schema)]),
        Object.keys(response.headers || {}).map((h, i) => [i ? ", " : "", el("code", {}, h)]),
      ];
    });
    return [el("h4", {}, "Responses"), table(["Status", "Meaning", "Body", "Headers"], rows)];
  }

  function security(op) {
    if (!op.security) return el("p", { class: "muted" }, "No credential needed.");
    const options = op.security.map((req) => Object.keys(req).join(" + "));
    return el("p", { class: "muted" }, "Credential: ", options.join(" or "));
  }

  function operation(path, method, pathItem, op) {
    const id = op.operationId || slug(`${method} ${path}`);
    return el("section", { class: "op", id: "op-" + id, "data-operation": `${method.toUpperCase()} ${path}` },
      el("h3", {}, el("span", { class: "method " + method }, method.toUpperCase()), el("code", {}, path)),
      op.summary ? el("p", {}, el("strong", {}, op.summary)) : null,
      op.description ? el("p", {}, prose(op.description)) : null,
      security(op),
      parameters(pathItem, op),
      requestBody(op),
      responses(op));
  }

  function schemas() {
    const entries = Object.entries((doc.components && doc.components.schemas) || {});
    return el("section", { class: "tag", id: "schemas" },
      el("h2", {}, "Schemas"),
      entries.map(([name, schema]) => {
        const parts = schema.allOf ? schema.allOf : [schema];
        const rows = [];
        const required = new Set(parts.flatMap((p) => deref(p).required || []));
        for (const part of parts) {
          if (refName(part)) { rows.push([el("em", {}, "all of"), "", describe(part), ""]); continue; }
          for (const [prop, sub] of Object.entries(part.properties || {})) {
            rows.push([el("code", {}, prop), required.has(prop) ? "yes" : "no", describe(sub), prose(sub.description)]);
          }
        }
        return el("section", { class: "op", id: "schema-" + slug(name) },
          el("h3", {}, name),
          schema.description ? el("p", {}, prose(schema.description)) : null,
          rows.length ? table(["Field", "Required", "Schema", "Description"], rows) : el("p", {}, describe(schema)));
      }));
  }

  function render() {
    const main = document.getElementById("doc");
    const info = doc.info || {};
    document.getElementById("title").textContent = `${info.title} ${info.version} API`;
    document.title = `${info.title} API`;
    const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        if (!item[method]) continue;
        const tag = (item[method].tags || ["other"])[0];
        if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
        byTag.get(tag).ops.push([path, method, item, item[method]]);
      }
    }
    const servers = (doc.servers || []).map((s) => s.url);
    main.replaceChildren(
      el("p", {}, prose(info.description)),
      el("p", { class: "muted" }, `OpenAPI ${doc.openapi}. Paths are relative to `,
        el("code", {}, servers[0] || "/"), "."),
      el("ul", { class: "toc" }, [...byTag.values()].flatMap(({ ops }) => ops.map(([path, method, , op]) =>
        el("li", {}, el("a", { href: "#op-" + (op.operationId || slug(`${method} ${path}`)) },
          `${method.toUpperCase()} ${path}`))))),
      ...[...byTag.values()].map(({ tag, ops }) => el("section", { class: "tag", id: "tag-" + slug(tag.name) },
        el("h2", {}, tag.name),
        tag.description ? el("p", { class: "muted" }, prose(tag.description)) : null,
        ops.map(([path, method, item, op]) => operation(path, method, item, op)))),
      schemas());
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const main = document.getElementById("doc");
    try {
      const response = await fetch("../openapi.json", { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      doc = await response.json();
      render();
    } catch (err) {
      main.replaceChildren(el("p", { class: "notice bad" }, `Could not load openapi.json: ${err.message}`));
    }
  });
})();

// The Sluice side of the CORS example: the exports of the `sluice:plugin@0.1.5` world, which
// componentize-js maps to JavaScript as camelCase functions, records as objects with camelCase
// fields, variants as `{ tag, val }`, `list<u8>` as Uint8Array and enums as strings.

import { write } from "sluice:plugin/log@0.1.5";
import { counterAdd } from "sluice:plugin/metrics@0.1.5";
import { decide, parsePolicy, responseHeaders } from "./policy.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The route's policy, set by `init` (each instance serves one route entry). */
let policy = null;

/** Runs once when the plugin loads: its name, version and the hooks the host should call. */
export function describe() {
  return {
    name: "cors",
    version: "0.1.0",
    hooks: ["request-headers", "response-headers"],
    maxBodyBytes: undefined,
  };
}

/** Runs once per instance with the route's config as JSON; a throw rejects the config. */
export function init(config) {
  policy = parsePolicy(config);
}

/** Answers preflights, refuses disallowed origins, lets everything else through. */
export function onRequestHeaders(req) {
  const verdict = decide(policy, req.method, headerMap(req.headers));
  switch (verdict.kind) {
    case "preflight":
      count("preflights_total");
      return respond(204, verdict.headers, new Uint8Array());
    case "refuse":
      count("refused_total");
      write("info", `${verdict.code}: ${verdict.message} (request ${req.requestId})`);
      return respond(
        403,
        [["content-type", "application/json"]],
        encoder.encode(JSON.stringify({ error: verdict.code, message: verdict.message })),
      );
    default:
      return { tag: "continue" };
  }
}

/** Not used (the plugin never asks for the body); the world requires the export. */
export function onRequestBody(_req, _body) {
  return { tag: "continue" };
}

/** Adds the CORS headers to the response of an allowed cross-origin request. */
export function onResponseHeaders(req, _resp) {
  const verdict = decide(policy, req.method, headerMap(req.headers));
  if (verdict.kind !== "allowed") return { tag: "continue" };
  return {
    tag: "edit",
    val: {
      set: responseHeaders(policy, verdict.origin).map(([name, value]) => [name, encoder.encode(value)]),
      append: [["vary", encoder.encode("origin")]],
      remove: [],
      context: [],
    },
  };
}

/** Not used; the world requires the export. */
export function onLog(_entry) {}

/** Not used; the world requires the export. */
export function onMessage(_channel, _message) {}

/** Not used; the world requires the export. */
export function onTick() {}

function respond(status, headers, body) {
  return {
    tag: "respond",
    val: { status, headers: headers.map(([name, value]) => [name, encoder.encode(value)]), body },
  };
}

function headerMap(headers) {
  const map = new Map();
  for (const [name, value] of headers) {
    if (!map.has(name)) map.set(name.toLowerCase(), decoder.decode(value));
  }
  return map;
}

function count(name) {
  // A metrics failure (series cap) must not change the request's outcome.
  try {
    counterAdd(name, 1n);
  } catch (_) {}
}

// The CORS policy itself: parsing the route's config and deciding what a request gets.
// Pure JavaScript with no Sluice imports, so `npm test` runs it under Node.

const KNOWN_KEYS = new Set([
  "allow_origins",
  "allow_methods",
  "allow_headers",
  "expose_headers",
  "allow_credentials",
  "max_age_s",
  "reject_disallowed",
]);

const DEFAULT_METHODS = ["GET", "HEAD", "POST"];

/** Parses and validates the route's config (a JSON string); throws a one-line message. */
export function parsePolicy(json) {
  let raw;
  try {
    raw = json.trim() === "" ? {} : JSON.parse(json);
  } catch (e) {
    throw `config is not JSON: ${e.message}`;
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw "config must be a table";
  }
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS.has(key)) {
      throw `unknown config key \`${key}\` (known: ${[...KNOWN_KEYS].join(", ")})`;
    }
  }
  const origins = raw.allow_origins;
  if (origins === undefined) {
    throw "`allow_origins` is required: a list of origins (`https://app.example.com`, `https://*.example.com`) or \"*\"";
  }
  const anyOrigin = origins === "*";
  if (!anyOrigin && !isStringList(origins)) {
    throw "`allow_origins` must be \"*\" or a list of strings";
  }
  const patterns = anyOrigin ? [] : origins.map(parseOrigin);
  const credentials = optional(raw, "allow_credentials", "boolean", false);
  if (anyOrigin && credentials) {
    throw "`allow_origins = \"*\"` cannot be combined with `allow_credentials = true` (browsers refuse it); list the origins";
  }
  const maxAge = optional(raw, "max_age_s", "number", 600);
  if (!Number.isInteger(maxAge) || maxAge < 0 || maxAge > 86400) {
    throw "`max_age_s` must be a whole number of seconds from 0 to 86400";
  }
  return {
    anyOrigin,
    patterns,
    methods: stringList(raw, "allow_methods", DEFAULT_METHODS).map((m) => m.toUpperCase()),
    headers: stringList(raw, "allow_headers", []).map((h) => h.toLowerCase()),
    expose: stringList(raw, "expose_headers", []).map((h) => h.toLowerCase()),
    credentials,
    maxAge,
    rejectDisallowed: optional(raw, "reject_disallowed", "boolean", true),
  };
}

/** Whether `origin` (the request's `Origin` header) may use the API. */
export function originAllowed(policy, origin) {
  if (policy.anyOrigin) return true;
  const lower = origin.toLowerCase();
  return policy.patterns.some((p) =>
    p.wildcard ? lower.startsWith(p.prefix) && lower.endsWith(p.suffix) && lower.length > p.prefix.length + p.suffix.length : lower === p.exact,
  );
}

/**
 * What a request gets, from its method and headers (a Map of lower-case name → string):
 * `{ kind: "pass" }` (not a CORS request), `{ kind: "preflight", headers }` (answer it now with
 * 204), `{ kind: "refuse", code, message }` (403) or `{ kind: "allowed", origin }` (forward it and
 * add the CORS response headers).
 */
export function decide(policy, method, headers) {
  const origin = headers.get("origin");
  if (origin === undefined) return { kind: "pass" };
  const allowed = originAllowed(policy, origin);
  const requestedMethod = headers.get("access-control-request-method");
  if (method === "OPTIONS" && requestedMethod !== undefined) {
    if (!allowed) {
      return refuse("cors_origin_refused", `origin ${origin} is not allowed`);
    }
    const wanted = requestedMethod.trim().toUpperCase();
    if (!policy.methods.includes(wanted)) {
      return refuse("cors_method_refused", `method ${wanted} is not allowed (allowed: ${policy.methods.join(", ")})`);
    }
    const requested = (headers.get("access-control-request-headers") ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h !== "");
    const refused = requested.filter((h) => !policy.headers.includes(h));
    if (refused.length > 0) {
      return refuse("cors_headers_refused", `headers not allowed: ${refused.join(", ")}`);
    }
    const out = [
      ["access-control-allow-origin", allowOriginValue(policy, origin)],
      ["access-control-allow-methods", policy.methods.join(", ")],
      ["access-control-max-age", String(policy.maxAge)],
      ["vary", "origin, access-control-request-method, access-control-request-headers"],
    ];
    if (requested.length > 0) out.push(["access-control-allow-headers", requested.join(", ")]);
    if (policy.credentials) out.push(["access-control-allow-credentials", "true"]);
    return { kind: "preflight", headers: out };
  }
  if (!allowed) {
    return policy.rejectDisallowed
      ? refuse("cors_origin_refused", `origin ${origin} is not allowed`)
      : { kind: "pass" };
  }
  return { kind: "allowed", origin };
}

/** The headers an allowed request's response gets. */
export function responseHeaders(policy, origin) {
  const out = [["access-control-allow-origin", allowOriginValue(policy, origin)]];
  if (policy.expose.length > 0) out.push(["access-control-expose-headers", policy.expose.join(", ")]);
  if (policy.credentials) out.push(["access-control-allow-credentials", "true"]);
  return out;
}

function allowOriginValue(policy, origin) {
  return policy.anyOrigin ? "*" : origin;
}

function refuse(code, message) {
  return { kind: "refuse", code, message };
}

function parseOrigin(text) {
  const lower = text.toLowerCase();
  const scheme = lower.match(/^(https?):\/\/(.+)$/);
  if (scheme === null || scheme[2].includes("/")) {
    throw `\`${text}\` is not an origin: write scheme://host[:port], e.g. https://app.example.com`;
  }
  const star = lower.indexOf("*");
  if (star === -1) return { wildcard: false, exact: lower };
  if (lower.slice(star, star + 2) !== "*." || lower.indexOf("*", star + 1) !== -1 || star !== scheme[1].length + 3) {
    throw `\`${text}\`: a wildcard may only stand for the leftmost labels, as in https://*.example.com`;
  }
  return { wildcard: true, prefix: lower.slice(0, star), suffix: lower.slice(star + 1) };
}

function isStringList(value) {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

function stringList(raw, key, fallback) {
  const value = raw[key];
  if (value === undefined) return fallback;
  if (!isStringList(value)) throw `\`${key}\` must be a list of strings`;
  return value;
}

function optional(raw, key, type, fallback) {
  const value = raw[key];
  if (value === undefined) return fallback;
  if (typeof value !== type) throw `\`${key}\` must be a ${type}`;
  return value;
}

// Unit tests of the policy under Node (`npm test`); the gateway test builds the component.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decide, originAllowed, parsePolicy, responseHeaders } from "../src/policy.js";

const policy = parsePolicy(
  JSON.stringify({
    allow_origins: ["https://app.example.com", "https://*.example.org"],
    allow_methods: ["GET", "put"],
    allow_headers: ["Content-Type", "authorization"],
    expose_headers: ["x-request-id"],
    allow_credentials: true,
  }),
);

const headers = (pairs) => new Map(Object.entries(pairs));

test("exact and wildcard origins", () => {
  assert.ok(originAllowed(policy, "https://app.example.com"));
  assert.ok(originAllowed(policy, "https://APP.example.com"));
  assert.ok(originAllowed(policy, "https://a.b.example.org"));
  assert.ok(!originAllowed(policy, "https://example.org"), "the wildcard needs a label");
  assert.ok(!originAllowed(policy, "http://app.example.com"), "the scheme counts");
  assert.ok(!originAllowed(policy, "https://evil-example.org"));
});

test("a request without Origin is not a CORS request", () => {
  assert.deepEqual(decide(policy, "GET", headers({})), { kind: "pass" });
});

test("a preflight for an allowed method and headers is answered", () => {
  const verdict = decide(
    policy,
    "OPTIONS",
    headers({
      origin: "https://app.example.com",
      "access-control-request-method": "PUT",
      "access-control-request-headers": "content-type, Authorization",
    }),
  );
  assert.equal(verdict.kind, "preflight");
  const got = new Map(verdict.headers);
  assert.equal(got.get("access-control-allow-origin"), "https://app.example.com");
  assert.equal(got.get("access-control-allow-methods"), "GET, PUT");
  assert.equal(got.get("access-control-allow-headers"), "content-type, authorization");
  assert.equal(got.get("access-control-allow-credentials"), "true");
  assert.equal(got.get("access-control-max-age"), "600");
});

test("preflights are refused with the reason", () => {
  const base = { origin: "https://app.example.com", "access-control-request-method": "DELETE" };
  assert.equal(decide(policy, "OPTIONS", headers(base)).code, "cors_method_refused");
  const badHeader = { ...base, "access-control-request-method": "GET", "access-control-request-headers": "x-admin" };
  const refused = decide(policy, "OPTIONS", headers(badHeader));
  assert.equal(refused.code, "cors_headers_refused");
  assert.match(refused.message, /x-admin/);
  const badOrigin = { ...base, origin: "https://evil.test" };
  assert.equal(decide(policy, "OPTIONS", headers(badOrigin)).code, "cors_origin_refused");
});

test("actual requests: allowed ones get headers, others are refused or passed", () => {
  assert.deepEqual(decide(policy, "GET", headers({ origin: "https://x.example.org" })), {
    kind: "allowed",
    origin: "https://x.example.org",
  });
  assert.equal(decide(policy, "GET", headers({ origin: "https://evil.test" })).code, "cors_origin_refused");
  const lenient = parsePolicy('{"allow_origins": ["https://a.test"], "reject_disallowed": false}');
  assert.deepEqual(decide(lenient, "GET", headers({ origin: "https://evil.test" })), { kind: "pass" });
  assert.deepEqual(new Map(responseHeaders(policy, "https://x.example.org")), new Map([
    ["access-control-allow-origin", "https://x.example.org"],
    ["access-control-expose-headers", "x-request-id"],
    ["access-control-allow-credentials", "true"],
  ]));
  const any = parsePolicy('{"allow_origins": "*"}');
  assert.equal(new Map(responseHeaders(any, "https://z.test")).get("access-control-allow-origin"), "*");
});

test("bad configs are refused in one line", () => {
  const cases = [
    ["", /allow_origins` is required/],
    ["[1]", /must be a table/],
    ["{", /not JSON/],
    ['{"allow_origins": "*", "allow_credentials": true}', /cannot be combined/],
    ['{"allow_origins": ["app.example.com"]}', /not an origin/],
    ['{"allow_origins": ["https://a.*.example.com"]}', /leftmost labels/],
    ['{"allow_origins": "*", "max_age": 5}', /unknown config key `max_age`/],
    ['{"allow_origins": "*", "max_age_s": -1}', /max_age_s/],
  ];
  for (const [config, message] of cases) {
    assert.throws(() => parsePolicy(config), (e) => typeof e === "string" && message.test(e), config);
  }
});

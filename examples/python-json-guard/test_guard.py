"""Unit tests of the guard's policy: `python3 -m unittest` (no toolchain needed)."""

import json
import unittest

from guard import ConfigError, check_body, check_content_type, parse_config

GUARD = parse_config(json.dumps({"fields": {"customer": "string", "quantity": "integer", "note": "string?"}}))


class ConfigTests(unittest.TestCase):
    def test_defaults(self):
        self.assertTrue(GUARD.applies_to("post"))
        self.assertFalse(GUARD.applies_to("GET"))
        self.assertEqual(GUARD.max_body_bytes, 65536)
        self.assertTrue(GUARD.allow_extra_fields)

    def test_bad_configs_say_why(self):
        cases = [
            ("", "`fields` is required"),
            ("[]", "must be a table"),
            ("{", "not JSON"),
            ('{"fields": {"a": "text"}}', "unknown type `text`"),
            ('{"fields": {"a": "string"}, "limit": 1}', "unknown config key `limit`"),
            ('{"fields": {"a": "string"}, "max_body_bytes": 0}', "`max_body_bytes`"),
            ('{"fields": {"a": "string"}, "methods": []}', "`methods`"),
        ]
        for text, message in cases:
            with self.assertRaises(ConfigError, msg=text) as caught:
                parse_config(text)
            self.assertIn(message, str(caught.exception))


class BodyTests(unittest.TestCase):
    def test_a_valid_body_passes(self):
        self.assertIsNone(check_body(GUARD, b'{"customer": "c-1", "quantity": 2, "extra": true}'))

    def test_missing_and_mistyped_fields_are_all_named(self):
        rejection = check_body(GUARD, b'{"quantity": "2", "note": 5}')
        self.assertEqual((rejection.status, rejection.code), (400, "invalid_body"))
        self.assertEqual(rejection.fields, ("customer", "quantity", "note"))
        self.assertIn("`quantity` must be integer, not string", rejection.message)
        self.assertEqual(json.loads(rejection.body())["fields"], ["customer", "quantity", "note"])

    def test_booleans_are_not_numbers(self):
        self.assertEqual(check_body(GUARD, b'{"customer": "c", "quantity": true}').fields, ("quantity",))

    def test_not_json_or_not_an_object(self):
        self.assertEqual(check_body(GUARD, b"{nope").code, "invalid_json")
        self.assertEqual(check_body(GUARD, b"\xff\xfe").code, "invalid_json")
        self.assertIn("not array", check_body(GUARD, b"[1]").message)

    def test_extra_fields_when_refused(self):
        strict = parse_config('{"fields": {"id": "integer"}, "allow_extra_fields": false}')
        self.assertEqual(check_body(strict, b'{"id": 1, "admin": true}').fields, ("admin",))

    def test_content_types(self):
        self.assertIsNone(check_content_type("application/json; charset=utf-8"))
        self.assertIsNone(check_content_type("application/merge-patch+json"))
        self.assertEqual(check_content_type("text/plain").status, 415)
        self.assertIn("(the request said none)", check_content_type(None).message)


if __name__ == "__main__":
    unittest.main()

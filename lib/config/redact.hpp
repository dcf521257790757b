#pragma once

#include <string>
#include <string_view>

#include <blitz/result.hpp>

/// The configuration as the admin listener's `GET /config` shows it: the file's JSON with the
/// value of every secret key replaced, so an operator can read what runs without the admin API
/// handing out credentials.
namespace blitz::config {

/// The text that stands in for a secret value.
inline constexpr std::string_view kRedacted = "[redacted]";

/// Whether the value of an object member named `key` is a secret.
///
/// The rule, compared case-insensitively and with '-' read as '_' (so header names given as
/// object keys, like "X-Auth-Token" in a header edit's "set", follow it too):
///   - exactly one of token, password, secret, secrets, api_key, api_keys, private_key,
///     key_pem, hmac_key, authorization, proxy_authorization;
///   - or ending in "_secret", "_token", "_password" or "_api_key".
/// Keys that name a file holding a secret are not secrets: a TLS "key" (a PEM file on disk, see
/// docs/config.schema.json) or a "key_file" is a path, and a path tells nothing of its contents.
///
/// Thread: any. Lifetime: no state.
bool is_secret_key(std::string_view key) noexcept;

/// `json_text` (a whole JSON document, an object or an array at the top level) pretty-printed
/// with the value of every member whose key is_secret_key() replaced, whatever its type
/// (string, number, array, object), by the string "[redacted]", at any depth and inside arrays.
///
/// The output keeps the keys in the file's order, indents by 2 spaces, writes `"key": value`,
/// `{}` and `[]` for empty containers, and ends with a newline. Numbers are copied as written
/// (`1e3`, `0.10` and 20-digit integers stay exactly so); strings are re-escaped per RFC 8259
/// §7 (quote, backslash and control characters escaped; other characters, non-ASCII UTF-8
/// included, written as themselves, so "\u00e9" comes out as "é"). `${VAR}` references are
/// shown as written, not expanded: expanding them could reveal a secret held in the
/// environment under a key the rule does not name.
///
/// A malformed document (the config loader's strict syntax check: RFC 8259, no duplicate keys,
/// at most 64 levels deep) or a scalar at the top level is refused with a message
/// "line:column: JSON path: what is wrong".
///
/// Thread: any; no shared state. Lifetime: the result owns its text; `json_text` is read
/// during the call only.
Result<std::string, std::string> redacted_json(std::string_view json_text);

}  // namespace blitz::config

#pragma once

#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include <re2/re2.h>

#include <blitz/filter.hpp>
#include <blitz/http.hpp>
#include <blitz/router.hpp>

namespace blitz::router {

/// What Router::freeze() compiles for one route, reached through Route::compiled so that
/// request-time code (the table, rewrite_path) never looks anything up by name.
///
/// Thread: immutable once built; RE2 objects are safe to match from any number of threads.
/// Lifetime: shared by the route copies that came out of one freeze().
struct CompiledRoute {
    std::unique_ptr<const RE2> path_regex;  ///< when Route::path_regex is set
    /// By index into Route::headers / Route::query: the pattern of a MatchKind::Regex matcher,
    /// null for other kinds.
    std::vector<std::unique_ptr<const RE2>> header_regexes;
    std::vector<std::unique_ptr<const RE2>> query_regexes;
    /// The patterns of Regex client_cert subject / san matchers, null otherwise.
    std::unique_ptr<const RE2> subject_regex;
    std::unique_ptr<const RE2> san_regex;
    std::unique_ptr<const RE2> rewrite;  ///< ProxyAction::regex_rewrite
    /// The highest \N group ProxyAction::regex_substitution uses (0 when none).
    int rewrite_groups = 0;
    /// The filters::Headers freeze() put first in Route::filters for the route's header edits,
    /// or null; a route frozen again is recognised by it and gets it only once.
    std::shared_ptr<Filter> header_edits;
};

/// RE2 options for every pattern in routes: case-sensitive UTF-8, errors returned rather
/// than logged.
RE2::Options regex_options() noexcept;

/// Whether `re` matches all of `text` (linear in its length).
inline bool full_match(const RE2& re, std::string_view text) noexcept {
    return re.Match(re2::StringPiece(text.data(), text.size()), 0, text.size(), RE2::ANCHOR_BOTH,
                    nullptr, 0);
}

/// Whether `route` has header, query or client-certificate matchers.
inline bool has_matchers(const Route& route) noexcept {
    return !route.headers.empty() || !route.query.empty() || route.client_cert.has_value();
}

/// One header or query matcher as the checks below read it. The views point at the route's
/// (or a table's copy of its) strings.
struct MatcherView {
    MatchKind kind = MatchKind::Exact;
    std::string_view name;
    std::string_view value;
    const RE2* regex = nullptr;  ///< the compiled `value` of a Regex matcher
};

/// Whether a header matcher holds for `headers` (see matchers_hold()).
bool header_holds(const MatcherView& m, const Headers& headers) noexcept;

/// Whether a query matcher holds for `query` (see matchers_hold()).
bool query_holds(const MatcherView& m, std::string_view query) noexcept;

/// Whether every header and query matcher of `route` holds for `request`. Header names are
/// compared case-insensitively; each field line is one value (a list value is not split on
/// commas). The query is split on '&' into name[=value] pairs, both percent-decoded ("+" is
/// left as "+": RFC 3986 §3.4 gives it no meaning, only HTML form encoding does); a name
/// without '=' has the empty value. A Regex query matcher needs the decoded value contiguous,
/// which takes a stack buffer of kMaxDecodedQueryValue bytes: a longer value that needs
/// decoding fails the matcher. Allocates nothing (RE2 may, in its own caches).
///
/// Thread: any. Lifetime: nothing kept. Requires route.compiled when a matcher is a Regex.
bool matchers_hold(const Route& route, const Request& request) noexcept;

/// Whether `route`'s client_cert matcher (which it must have) holds for the connection's
/// `tls` (null: plaintext, no certificate). Subject and SAN conditions need a presented
/// certificate. Allocates nothing.
///
/// Thread: any. Lifetime: nothing kept. Requires route.compiled for Regex texts.
bool client_cert_holds(const ClientCertMatcher& m, const CompiledRoute* compiled,
                       const TlsInfo* tls) noexcept;

/// See matchers_hold().
inline constexpr std::size_t kMaxDecodedQueryValue = 4096;

}  // namespace blitz::router

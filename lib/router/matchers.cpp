#include <algorithm>
#include <array>
#include <cstddef>
#include <span>
#include <string_view>

#include <blitz/tls.hpp>

#include "core/hex.hpp"
#include "router/compiled_route.hpp"

namespace blitz::router {
namespace {

/// Calls take(byte) for each byte of `raw` percent-decoded (RFC 3986 §2.1), until take returns
/// false; returns whether it never did. A '%' without two hex digits after it stays a literal
/// '%' (the HTTP/1.1 codec rejects such queries, other callers may not).
template <class Take>
bool for_each_decoded(std::string_view raw, Take&& take) noexcept {
    for (std::size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (c == '%' && i + 2 < raw.size()) {
            const int hi = blitz::detail::hex_value(raw[i + 1]);
            const int lo = blitz::detail::hex_value(raw[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = static_cast<char>(hi * 16 + lo);
                i += 2;
            }
        }
        if (!take(c)) {
            return false;
        }
    }
    return true;
}

/// Whether `raw` decodes to `want` (exactly, or as a prefix of the decoded bytes).
bool decoded_equals(std::string_view raw, std::string_view want, bool prefix_only) noexcept {
    std::size_t at = 0;
    bool differs = false;
    const bool whole = for_each_decoded(raw, [&](char c) {
        if (at == want.size()) {
            return false;  // longer than `want`
        }
        if (c != want[at]) {
            differs = true;
            return false;
        }
        ++at;
        return true;
    });
    return !differs && at == want.size() && (whole || prefix_only);
}

bool value_holds(const MatcherView& m, std::string_view raw) noexcept {
    switch (m.kind) {
        case MatchKind::Present:
        case MatchKind::Absent:
            return true;
        case MatchKind::Exact:
            return decoded_equals(raw, m.value, false);
        case MatchKind::Prefix:
            return decoded_equals(raw, m.value, true);
        case MatchKind::Suffix:
        case MatchKind::Regex:
            break;
    }
    if (m.kind == MatchKind::Regex && m.regex == nullptr) {
        return false;
    }
    auto compare = [&m](std::string_view decoded) {
        return m.kind == MatchKind::Suffix ? decoded.ends_with(m.value)
                                           : full_match(*m.regex, decoded);
    };
    if (raw.find('%') == std::string_view::npos) {
        return compare(raw);
    }
    std::array<char, kMaxDecodedQueryValue> buf;
    std::size_t n = 0;
    const bool fits = for_each_decoded(raw, [&](char c) {
        if (n == buf.size()) {
            return false;
        }
        buf[n++] = c;
        return true;
    });
    return fits && compare(std::string_view(buf.data(), n));
}

bool text_holds(MatchKind kind, std::string_view want, const RE2* regex,
                std::string_view text) noexcept {
    switch (kind) {
        case MatchKind::Exact:
            return text == want;
        case MatchKind::Prefix:
            return text.starts_with(want);
        case MatchKind::Suffix:
            return text.ends_with(want);
        case MatchKind::Regex:
            return regex != nullptr && full_match(*regex, text);
        case MatchKind::Present:
            return !text.empty();
        case MatchKind::Absent:
            return text.empty();
    }
    return false;
}

}  // namespace

bool header_holds(const MatcherView& m, const Headers& headers) noexcept {
    for (const Header& h : headers) {
        if (!iequals(h.name, m.name)) {
            continue;
        }
        switch (m.kind) {
            case MatchKind::Present:
                return true;
            case MatchKind::Absent:
                return false;
            case MatchKind::Exact:
                if (h.value == m.value) {
                    return true;
                }
                break;
            case MatchKind::Prefix:
                if (h.value.starts_with(m.value)) {
                    return true;
                }
                break;
            case MatchKind::Suffix:
                if (h.value.ends_with(m.value)) {
                    return true;
                }
                break;
            case MatchKind::Regex:
                if (m.regex != nullptr && full_match(*m.regex, h.value)) {
                    return true;
                }
                break;
        }
    }
    return m.kind == MatchKind::Absent;
}

bool query_holds(const MatcherView& m, std::string_view query) noexcept {
    // RFC 3986 §3.4 leaves the query's structure to the application; '&'-separated
    // name=value pairs is what HTML forms and nearly every API use.
    while (!query.empty()) {
        const std::size_t amp = query.find('&');
        std::string_view pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
        const std::size_t eq = pair.find('=');
        const std::string_view name = pair.substr(0, eq);
        const std::string_view value =
            eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        if (pair.empty() || !decoded_equals(name, m.name, false)) {
            continue;
        }
        if (m.kind == MatchKind::Absent) {
            return false;
        }
        if (value_holds(m, value)) {
            return true;
        }
    }
    return m.kind == MatchKind::Absent;
}

RE2::Options regex_options() noexcept {
    RE2::Options options;
    options.set_log_errors(false);
    return options;
}

bool client_cert_holds(const ClientCertMatcher& m, const CompiledRoute* compiled,
                       const TlsInfo* tls) noexcept {
    const bool presented = tls != nullptr && tls->client_presented;
    if (m.presented && *m.presented != presented) {
        return false;
    }
    if (m.verified && *m.verified != (tls != nullptr && tls->client_verified)) {
        return false;
    }
    if (m.subject && (!presented || !text_holds(m.subject->kind, m.subject->value,
                                                compiled ? compiled->subject_regex.get() : nullptr,
                                                tls->client_subject))) {
        return false;
    }
    if (!m.san) {
        return true;
    }
    if (!presented) {
        return false;
    }
    // Envoy's SAN matchers hold when any of the certificate's names matches; Present and
    // Absent ask whether there is any name at all.
    const std::span<const std::string_view> sans = tls->client_sans;
    if (m.san->kind == MatchKind::Present || m.san->kind == MatchKind::Absent) {
        return (m.san->kind == MatchKind::Present) != sans.empty();
    }
    const RE2* regex = compiled ? compiled->san_regex.get() : nullptr;
    return std::any_of(sans.begin(), sans.end(), [&](std::string_view san) {
        return text_holds(m.san->kind, m.san->value, regex, san);
    });
}

bool matchers_hold(const Route& route, const Request& request) noexcept {
    const CompiledRoute* compiled = route.compiled.get();
    auto regex = [](const std::vector<std::unique_ptr<const RE2>>* regexes, std::size_t i) {
        return regexes != nullptr && i < regexes->size() ? (*regexes)[i].get() : nullptr;
    };
    for (std::size_t i = 0; i < route.headers.size(); ++i) {
        const HeaderMatcher& m = route.headers[i];
        const MatcherView view{m.kind, m.name, m.value,
                               regex(compiled ? &compiled->header_regexes : nullptr, i)};
        if (!header_holds(view, request.headers)) {
            return false;
        }
    }
    for (std::size_t i = 0; i < route.query.size(); ++i) {
        const QueryMatcher& m = route.query[i];
        const MatcherView view{m.kind, m.name, m.value,
                               regex(compiled ? &compiled->query_regexes : nullptr, i)};
        if (!query_holds(view, request.query)) {
            return false;
        }
    }
    return true;
}

}  // namespace blitz::router

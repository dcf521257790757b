#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <blitz/http.hpp>
#include <blitz/tls.hpp>

#include "config/parts.hpp"
#include "config/syntax.hpp"
#include "http/token.hpp"
#include "tls/session.hpp"

namespace blitz::config {
namespace {

constexpr std::array<std::string_view, 2> kVersions = {"1.2", "1.3"};
constexpr TlsVersion kVersionValues[] = {TlsVersion::Tls12, TlsVersion::Tls13};
constexpr std::array<std::string_view, 3> kPlaintext = {"serve", "redirect", "reject"};
constexpr PlaintextPolicy kPlaintextValues[] = {PlaintextPolicy::Serve, PlaintextPolicy::Redirect,
                                                PlaintextPolicy::Reject};
constexpr std::array<std::string_view, 3> kClientAuth = {"none", "optional", "required"};
constexpr ClientAuth kClientAuthValues[] = {ClientAuth::None, ClientAuth::Optional,
                                            ClientAuth::Required};
// Key-exchange groups that BoringSSL (SSL_CTX_set1_curves_list) and OpenSSL 3
// (SSL_CTX_set1_groups_list) both know by these names.
constexpr std::array<std::string_view, 4> kGroups = {"X25519", "P-256", "P-384", "P-521"};
// RFC 7301 ALPN protocol ids a listener speaks ("h2": RFC 9113 §3.2) and those blitz can
// offer to an upstream (HTTP/1.1 only: upstream HTTP/2 is not built yet).
constexpr std::array<std::string_view, 2> kListenerAlpn = {"h2", "http/1.1"};
constexpr std::array<std::string_view, 1> kUpstreamAlpn = {"http/1.1"};
constexpr std::string_view kH2 = "h2";
constexpr std::int64_t kMinTicketRotationS = 60;
// A ticket key decrypts for two periods (current, then previous), so 3.5 days keeps a ticket
// within the 7-day lifetime RFC 8446 §4.6.1 allows.
constexpr std::int64_t kMaxTicketRotationS = 302'400;

constexpr std::string_view kNeedsClientAuth = "\"client_auth\": \"optional\" or \"required\"";

// ---- listener certificates -----------------------------------------------------------------

struct CertificateState {
    CertificateOptions options;
    Place cert;
    Place key;
    Place ocsp_staple;
};

/// An SNI name a certificate serves: a host name, or "*." and a host name (the wildcard is the
/// whole leftmost label and stands for exactly one label, RFC 6125 §6.4.3). Not an IP address:
/// SNI carries host names only (RFC 6066 §3), and no top-level domain is all digits.
bool is_server_name(std::string_view s) noexcept {
    const std::string_view host = s.starts_with("*.") ? s.substr(2) : s;
    if (!http::is_hostname(host)) {
        return false;
    }
    const std::string_view last = host.substr(host.rfind('.') + 1);
    return !std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool read_server_names(Walker& w, Node& n, std::vector<std::string>& out) {
    constexpr std::string_view kExpected =
        "a host name (\"api.example.com\") or a wildcard of one label (\"*.example.com\"), not "
        "an IP address";
    std::vector<std::string> paths;
    std::size_t count = 0;
    return w.elements(n, "an array of server names", count, [&](Node& e, std::size_t) {
        Text t;
        if (!w.text(e, kExpected, t)) {
            return false;
        }
        if (!is_server_name(t.value)) {
            return w.mismatch(e, kExpected, t);
        }
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (iequals(out[i], t.value)) {
                return w.fail(
                    e.offset, e.path,
                    "duplicate server name " + quote(t.value) + " (also " + paths[i] + ")");
            }
        }
        paths.push_back(e.path);
        out.push_back(std::move(t.value));
        return true;
    });
}

const std::array<Field<CertificateState>, 4> kCertificateFields = {{
    {"cert",
     [](Walker& w, Node& n, CertificateState& c) { return w.file(n, c.options.cert, c.cert); }},
    {"key",
     [](Walker& w, Node& n, CertificateState& c) { return w.file(n, c.options.key, c.key); }},
    {"ocsp_staple",
     [](Walker& w, Node& n, CertificateState& c) {
         return w.file(n, c.options.ocsp_staple, c.ocsp_staple);
     }},
    {"server_names",
     [](Walker& w, Node& n, CertificateState& c) {
         return read_server_names(w, n, c.options.server_names);
     }},
}};

// ---- values shared by listeners and upstreams ----------------------------------------------

bool read_version(Walker& w, Node& n, TlsVersion& out) {
    std::size_t i = 0;
    if (!w.choice(n, kVersions, i)) {
        return false;
    }
    out = kVersionValues[i];
    return true;
}

/// A value refused with its own message rather than "expected one of ...".
struct Refused {
    std::string_view value;
    std::string_view why;
};

// "h2" is the value people try first toward an upstream; say why it is refused.
constexpr Refused kUpstreamAlpnRefused[] = {
    {kH2,
     "\"h2\" is not chosen by ALPN here: write \"protocol\": \"h2\" on the upstream (its TLS "
     "connections then offer \"h2\" alone)"}};

/// A list of distinct values, each one of `allowed`, at least one; it replaces the default.
/// `what` names one value ("ALPN protocol id"). `places`, when given, gets where each value
/// was.
bool read_names(Walker& w, Node& n, std::string_view what,
                std::span<const std::string_view> allowed, std::span<const Refused> refused,
                std::vector<std::string>& out, std::vector<Place>* places = nullptr) {
    std::string expected = "one of ";
    for (std::size_t i = 0; i < allowed.size(); ++i) {
        expected += (i > 0 ? ", " : "") + quote(allowed[i]);
    }
    out.clear();
    std::vector<std::string> paths;
    std::size_t count = 0;
    const bool ok =
        w.elements(n, "an array of " + std::string(what) + "s", count, [&](Node& e, std::size_t) {
            Text t;
            if (!w.text(e, expected, t)) {
                return false;
            }
            for (const Refused& r : refused) {
                if (t.value == r.value) {
                    return w.fail(e.offset, e.path, std::string(r.why));
                }
            }
            if (std::find(allowed.begin(), allowed.end(), t.value) == allowed.end()) {
                return w.mismatch(e, expected, t);
            }
            for (std::size_t j = 0; j < out.size(); ++j) {
                if (out[j] == t.value) {
                    return w.fail(e.offset, e.path,
                                  "duplicate " + quote(t.value) + " (also " + paths[j] + ")");
                }
            }
            paths.push_back(e.path);
            if (places != nullptr) {
                places->push_back(Walker::place(e));
            }
            out.push_back(std::move(t.value));
            return true;
        });
    if (ok && count == 0) {
        return w.fail(n.offset, n.path,
                      "expected at least one " + std::string(what) + ", found an empty array");
    }
    return ok;
}

constexpr std::string_view kAlpnId = "ALPN protocol id";

// ---- listener tls --------------------------------------------------------------------------

struct TlsState {
    TlsOptions options;
    AlpnWritten alpn;
    std::vector<CertificateState> certificates;
    bool has_certificates = false;
    Place ciphers;
    Place groups;
    Place plaintext;
    Place client_ca;
    Place forward_client_cert;
    Place ticket_key_rotation;
    Place early_data;
};

bool read_certificates(Walker& w, Node& n, TlsState& t) {
    t.has_certificates = true;
    std::size_t count = 0;
    const bool ok =
        w.elements(n, "an array of certificate objects", count, [&](Node& e, std::size_t) {
            const Place at = Walker::place(e);
            CertificateState c;
            if (e.type != od::json_type::object) {
                return w.mismatch(e, "a certificate object ({\"cert\": ..., \"key\": ...})");
            }
            if (!w.object(e, kCertificateFields, c)) {
                return false;
            }
            if (!c.cert.set) {
                return w.fail(at, "missing required key \"cert\" (the PEM certificate chain)");
            }
            if (!c.key.set) {
                return w.fail(at, "missing required key \"key\" (the PEM private key of \"cert\")");
            }
            t.certificates.push_back(std::move(c));
            return true;
        });
    if (ok && count == 0) {
        return w.fail(n.offset, n.path, "expected at least one certificate, found an empty array");
    }
    return ok;
}

/// A TLS 1.2 cipher list in OpenSSL syntax ("ECDHE+AESGCM:!aNULL"): the TLS library judges the
/// names at start; this only refuses characters no such list has.
bool is_cipher_list(std::string_view s) noexcept {
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == ':' || c == '+' || c == '!' || c == '@' || c == '=' ||
               c == ',' || c == '.' || c == ' ';
    });
}

const std::array<Field<TlsState>, 15> kTlsFields = {{
    {"certificates", [](Walker& w, Node& n, TlsState& t) { return read_certificates(w, n, t); }},
    {"min_version",
     [](Walker& w, Node& n, TlsState& t) { return read_version(w, n, t.options.min_version); }},
    {"ciphers",
     [](Walker& w, Node& n, TlsState& t) {
         constexpr std::string_view kExpected =
             "a TLS 1.2 cipher list in OpenSSL syntax (\"ECDHE+AESGCM:ECDHE+CHACHA20\")";
         t.ciphers = Walker::place(n);
         Text text;
         if (!w.text(n, kExpected, text)) {
             return false;
         }
         if (!is_cipher_list(text.value)) {
             return w.mismatch(n, kExpected, text);
         }
         t.options.ciphers = std::move(text.value);
         return true;
     }},
    {"groups",
     [](Walker& w, Node& n, TlsState& t) {
         t.groups = Walker::place(n);
         return read_names(w, n, "key-exchange group", kGroups, {}, t.options.groups);
     }},
    {"alpn",
     [](Walker& w, Node& n, TlsState& t) {
         std::vector<Place> places;
         if (!read_names(w, n, kAlpnId, kListenerAlpn, {}, t.options.alpn, &places)) {
             return false;
         }
         t.alpn.set = true;
         for (std::size_t i = 0; i < places.size(); ++i) {
             if (t.options.alpn[i] == kH2) {
                 t.alpn.h2 = places[i];
             }
         }
         return true;
     }},
    {"alpn_strict",
     [](Walker& w, Node& n, TlsState& t) { return w.boolean(n, t.options.alpn_strict); }},
    {"detect", [](Walker& w, Node& n, TlsState& t) { return w.boolean(n, t.options.detect); }},
    {"plaintext",
     [](Walker& w, Node& n, TlsState& t) {
         t.plaintext = Walker::place(n);
         std::size_t i = 0;
         if (!w.choice(n, kPlaintext, i)) {
             return false;
         }
         t.options.plaintext = kPlaintextValues[i];
         return true;
     }},
    {"handshake_timeout_ms",
     [](Walker& w, Node& n, TlsState& t) {
         return w.milliseconds(n, 1, t.options.handshake_timeout);
     }},
    {"client_auth",
     [](Walker& w, Node& n, TlsState& t) {
         std::size_t i = 0;
         if (!w.choice(n, kClientAuth, i)) {
             return false;
         }
         t.options.client_auth = kClientAuthValues[i];
         return true;
     }},
    {"client_ca",
     [](Walker& w, Node& n, TlsState& t) { return w.file(n, t.options.client_ca, t.client_ca); }},
    {"forward_client_cert",
     [](Walker& w, Node& n, TlsState& t) {
         t.forward_client_cert = Walker::place(n);
         return w.boolean(n, t.options.forward_client_cert);
     }},
    {"session_tickets",
     [](Walker& w, Node& n, TlsState& t) { return w.boolean(n, t.options.session_tickets); }},
    {"ticket_key_rotation_s",
     [](Walker& w, Node& n, TlsState& t) {
         t.ticket_key_rotation = Walker::place(n);
         std::int64_t s = 0;
         if (!w.integer(n, kMinTicketRotationS, kMaxTicketRotationS, s)) {
             return false;
         }
         t.options.ticket_key_rotation = std::chrono::seconds(s);
         return true;
     }},
    {"early_data",
     [](Walker& w, Node& n, TlsState& t) {
         t.early_data = Walker::place(n);
         return w.boolean(n, t.options.early_data);
     }},
}};

/// The checks across keys of a listener's tls object, in the order of the keys.
bool check_listener_tls(Walker& w, const Place& at, const TlsState& t) {
    const TlsOptions& o = t.options;
    if (!t.has_certificates) {
        return w.fail(at, "missing required key \"certificates\"");
    }
    if (!o.ciphers.empty() && o.min_version == TlsVersion::Tls13) {
        return w.fail(t.ciphers,
                      "\"ciphers\" applies to TLS 1.2 only: it is used only with \"min_version\": "
                      "\"1.2\" (TLS 1.3 suites are not configurable)");
    }
    if (t.plaintext.set && !o.detect) {
        return w.fail(t.plaintext,
                      "\"plaintext\" is used only with \"detect\": true (without detection a TLS "
                      "port never serves plain HTTP)");
    }
    if (o.client_auth != ClientAuth::None && !t.client_ca.set) {
        return w.fail(at,
                      "missing required key \"client_ca\" (the CA bundle client certificates "
                      "are verified against; needed with \"client_auth\": " +
                          quote(kClientAuth[static_cast<std::size_t>(o.client_auth)]) + ")");
    }
    if (t.client_ca.set && o.client_auth == ClientAuth::None) {
        return w.fail(t.client_ca,
                      "\"client_ca\" is used only with " + std::string(kNeedsClientAuth));
    }
    if (o.forward_client_cert && o.client_auth == ClientAuth::None) {
        return w.fail(t.forward_client_cert,
                      "\"forward_client_cert\" is used only with " + std::string(kNeedsClientAuth) +
                          " (without it no client certificate is ever verified)");
    }
    if (t.ticket_key_rotation.set && !o.session_tickets) {
        return w.fail(t.ticket_key_rotation,
                      "\"ticket_key_rotation_s\" is used only with \"session_tickets\": true");
    }
    if (o.early_data && !o.session_tickets) {
        return w.fail(t.early_data,
                      "\"early_data\" needs \"session_tickets\": true (0-RTT data is sent on a "
                      "session resumed from a ticket)");
    }
    return true;
}

// ---- upstream tls --------------------------------------------------------------------------

struct UpstreamTlsState {
    UpstreamTlsOptions options;
    Place ca;
    Place cert;
    Place key;
};

const std::array<Field<UpstreamTlsState>, 8> kUpstreamTlsFields = {{
    {"ca", [](Walker& w, Node& n, UpstreamTlsState& u) { return w.file(n, u.options.ca, u.ca); }},
    {"verify",
     [](Walker& w, Node& n, UpstreamTlsState& u) { return w.boolean(n, u.options.verify); }},
    {"server_name",
     [](Walker& w, Node& n, UpstreamTlsState& u) {
         constexpr std::string_view kExpected =
             "a host name (\"api.internal\") or an IP address without brackets";
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         std::string canonical;
         const bool ip = t.value.find('/') == std::string::npos &&
                         parse_cidr(t.value, canonical) == CidrCheck::Ok;
         if (!ip && !http::is_hostname(t.value)) {
             return w.mismatch(n, kExpected, t);
         }
         u.options.server_name = std::move(t.value);
         return true;
     }},
    {"cert",
     [](Walker& w, Node& n, UpstreamTlsState& u) { return w.file(n, u.options.cert, u.cert); }},
    {"key",
     [](Walker& w, Node& n, UpstreamTlsState& u) { return w.file(n, u.options.key, u.key); }},
    {"alpn",
     [](Walker& w, Node& n, UpstreamTlsState& u) {
         return read_names(w, n, kAlpnId, kUpstreamAlpn, kUpstreamAlpnRefused, u.options.alpn);
     }},
    {"min_version", [](Walker& w, Node& n,
                       UpstreamTlsState& u) { return read_version(w, n, u.options.min_version); }},
    {"session_reuse",
     [](Walker& w, Node& n, UpstreamTlsState& u) { return w.boolean(n, u.options.session_reuse); }},
}};

/// Reports an error of tls::ServerContext::make() at the key it is about. Its messages start
/// with the file and what it holds ("private key \"/etc/blitz/site.key\": does not match ...")
/// or with the key at fault ("tls: ciphers ..."); anything else goes to the tls object.
bool engine_error(Walker& w, const Place& at, const TlsState& t, std::string message) {
    if (message.starts_with("tls: ")) {
        message.erase(0, 5);
    }
    const auto about = [&](std::string_view what, const std::string& path) {
        return message.starts_with(std::string(what) + " \"" + path + "\":");
    };
    for (const CertificateState& c : t.certificates) {
        if (about("certificate", c.options.cert)) {
            return w.fail(c.cert, message);
        }
        if (about("private key", c.options.key)) {
            return w.fail(c.key, message);
        }
        if (c.ocsp_staple.set && about("OCSP staple", c.options.ocsp_staple)) {
            return w.fail(c.ocsp_staple, message);
        }
    }
    if (t.client_ca.set && about("client CA bundle", t.options.client_ca)) {
        return w.fail(t.client_ca, message);
    }
    const std::pair<std::string_view, const Place*> keys[] = {
        {"ciphers ", &t.ciphers}, {"groups ", &t.groups}, {"early_data ", &t.early_data}};
    for (const auto& [key, place] : keys) {
        if (place->set && message.starts_with(key)) {
            return w.fail(*place, message);
        }
    }
    return w.fail(at, message);
}

}  // namespace

bool read_listener_tls(Walker& w, Node& n, std::optional<TlsOptions>& out, AlpnWritten& alpn) {
    const Place at = Walker::place(n);
    TlsState t;
    if (n.type != od::json_type::object) {
        return w.mismatch(n, "an object of TLS settings");
    }
    if (!w.object(n, kTlsFields, t) || !check_listener_tls(w, at, t)) {
        return false;
    }
    // The files last, once the settings are known to make sense, in document order within
    // each certificate.
    for (const CertificateState& c : t.certificates) {
        if (!w.readable(c.cert, c.options.cert) || !w.readable(c.key, c.options.key) ||
            (c.ocsp_staple.set && !w.readable(c.ocsp_staple, c.options.ocsp_staple))) {
            return false;
        }
    }
    if (t.client_ca.set && !w.readable(t.client_ca, t.options.client_ca)) {
        return false;
    }
    for (const CertificateState& c : t.certificates) {
        t.options.certificates.push_back(c.options);
    }
    // What is in the files (PEM syntax, validity dates, a key that matches its certificate,
    // names) is the TLS engine's to judge; building the listener's context once here lets a
    // config check (blitzd --check-config) find it, at the key naming the file.
    if (w.checks_files()) {
        if (auto context = tls::ServerContext::make(t.options); !context) {
            return engine_error(w, at, t, context.error());
        }
    }
    out = std::move(t.options);
    alpn = t.alpn;
    return true;
}

bool read_upstream_tls(Walker& w, Node& n, UpstreamTlsOptions& out, UpstreamTlsPlaces& places) {
    constexpr std::string_view kExpected = "true, false or an object of TLS settings";
    if (n.type != od::json_type::object) {
        bool on = false;
        if (!w.boolean(n, on, kExpected)) {
            return false;
        }
        out = UpstreamTlsOptions{};
        out.enabled = on;
        return true;
    }
    const Place at = Walker::place(n);
    UpstreamTlsState u;
    if (!w.object(n, kUpstreamTlsFields, u)) {
        return false;
    }
    // A client certificate is a pair; half of one is a mistake, not a choice.
    if (u.cert.set && !u.key.set) {
        return w.fail(at, "missing required key \"key\" (the PEM private key of \"cert\")");
    }
    if (u.key.set && !u.cert.set) {
        return w.fail(at, "missing required key \"cert\" (the PEM certificate chain of \"key\")");
    }
    if ((u.ca.set && !w.readable(u.ca, u.options.ca)) ||
        (u.cert.set &&
         (!w.readable(u.cert, u.options.cert) || !w.readable(u.key, u.options.key)))) {
        return false;
    }
    out = std::move(u.options);
    out.enabled = true;
    places = UpstreamTlsPlaces{.ca = u.ca, .cert = u.cert, .key = u.key};
    return true;
}

bool upstream_error(Walker& w, const Place& at, const UpstreamTlsOptions& tls,
                    const UpstreamTlsPlaces& places, const std::string& message) {
    // tls::ClientContext::make() names the file and what it holds ("CA bundle \"/etc/ca.pem\":
    // not a PEM certificate"); the error at the key keeps just that, as for listeners, since
    // the path already names the upstream.
    struct File {
        std::string_view what;
        const std::string& path;
        const Place& place;
    };
    const File files[] = {{"CA bundle", tls.ca, places.ca},
                          {"certificate", tls.cert, places.cert},
                          {"private key", tls.key, places.key}};
    for (const File& f : files) {
        if (!f.place.set) {
            continue;
        }
        const std::string about = std::string(f.what) + " \"" + f.path + "\":";
        if (const std::size_t from = message.find(about); from != std::string::npos) {
            return w.fail(f.place, message.substr(from));
        }
    }
    return w.fail(at, message);
}

std::vector<std::string_view> tls_keys(ObjectKind kind) {
    switch (kind) {
        case ObjectKind::Tls:
            return keys_of(kTlsFields);
        case ObjectKind::Certificate:
            return keys_of(kCertificateFields);
        case ObjectKind::UpstreamTls:
            return keys_of(kUpstreamTlsFields);
        default:
            return {};
    }
}

}  // namespace blitz::config

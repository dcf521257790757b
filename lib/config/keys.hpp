#pragma once

#include <string_view>
#include <vector>

namespace blitz::config {

/// The objects of the configuration schema that have a fixed set of keys (header maps such as
/// `respond.headers` take any header name and are not listed).
enum class ObjectKind {
    Root,            ///< the document
    Log,             ///< "log"
    Buffers,         ///< "buffers"
    Shutdown,        ///< "shutdown"
    Reload,          ///< "reload"
    Admin,           ///< "admin"
    Metrics,         ///< "metrics"
    Tracing,         ///< "tracing"
    AccessLog,       ///< "listeners[].access_log", "routes[].access_log"
    RequestId,       ///< "listeners[].request_id"
    Limits,          ///< "limits", top-level and per listener
    Listener,        ///< an element of "listeners"
    Http2,           ///< "listeners[].http2" when it is an object
    Tls,             ///< "listeners[].tls"
    Certificate,     ///< an element of "listeners[].tls.certificates"
    Upstream,        ///< an element of "upstreams"
    Endpoint,        ///< an object element of "upstreams[].endpoints"
    Hash,            ///< "upstreams[].hash"
    Pool,            ///< "upstreams[].pool"
    HealthCheck,     ///< "upstreams[].health_check"
    Outlier,         ///< "upstreams[].outlier_detection"
    CircuitBreaker,  ///< "upstreams[].circuit_breaker"
    RetryBudget,     ///< "upstreams[].retry_budget"
    Dns,             ///< "upstreams[].dns"
    UpstreamTls,     ///< "upstreams[].tls" when it is an object
    Route,           ///< an element of "routes"
    Match,           ///< "routes[].match"
    Matcher,         ///< an element of "routes[].match.headers" and "routes[].match.query"
    ClientCert,      ///< "routes[].match.client_cert"
    CertText,        ///< "routes[].match.client_cert.subject" and ".san"
    Respond,         ///< "routes[].respond"
    Proxy,           ///< "routes[].proxy"
    Retry,           ///< "routes[].proxy.retry"
    RegexRewrite,    ///< "routes[].proxy.regex_rewrite"
    Redirect,        ///< "routes[].redirect"
    Filter,          ///< an element of "routes[].filters"
    HeaderEdits,     ///< "filters[].request", "filters[].response", "routes[].request_headers",
                     ///< "routes[].response_headers"
};

/// Every ObjectKind, for tests that walk them all.
inline constexpr ObjectKind kObjectKinds[] = {
    ObjectKind::Root,           ObjectKind::Log,          ObjectKind::Buffers,
    ObjectKind::Shutdown,       ObjectKind::Reload,       ObjectKind::Admin,
    ObjectKind::Metrics,        ObjectKind::Tracing,      ObjectKind::AccessLog,
    ObjectKind::RequestId,      ObjectKind::Limits,       ObjectKind::Listener,
    ObjectKind::Http2,          ObjectKind::Tls,          ObjectKind::Certificate,
    ObjectKind::Upstream,       ObjectKind::Endpoint,     ObjectKind::Hash,
    ObjectKind::Pool,           ObjectKind::HealthCheck,  ObjectKind::Outlier,
    ObjectKind::CircuitBreaker, ObjectKind::RetryBudget,  ObjectKind::Dns,
    ObjectKind::UpstreamTls,    ObjectKind::Route,        ObjectKind::Match,
    ObjectKind::Matcher,        ObjectKind::Respond,      ObjectKind::Proxy,
    ObjectKind::Retry,          ObjectKind::RegexRewrite, ObjectKind::Redirect,
    ObjectKind::Filter,         ObjectKind::HeaderEdits,  ObjectKind::ClientCert,
    ObjectKind::CertText,
};

/// The keys parse_config() accepts in an object of `kind`, in documentation order. They come
/// from the parser's own dispatch tables, so docs/config.schema.json can be held to exactly
/// these keys by a test.
///
/// Thread: any. Lifetime: the views point to static storage.
std::vector<std::string_view> accepted_keys(ObjectKind kind);

}  // namespace blitz::config

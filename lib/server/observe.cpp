// The end of every exchange, for every protocol: metrics by route, the access log, request ids
// and spans.

#include "server/observe.hpp"

#include <algorithm>
#include <cstring>

#include <netinet/in.h>

#include "server/connection.hpp"
#include "server/proxy.hpp"
#include "server/reactor.hpp"
#include "trace/span.hpp"

namespace blitz::server {

namespace {

std::string_view protocol_name(Version v) noexcept {
    return v == Version::Http10 ? "HTTP/1.0" : v == Version::Http2 ? "HTTP/2" : "HTTP/1.1";
}

// Copies `s` into the exchange's arena: request fields may live in a receive buffer that is
// recycled before the exchange ends.
std::string_view keep(Exchange& ex, std::string_view s) {
    if (s.empty()) {
        return s;
    }
    char* p = static_cast<char*>(ex.arena().allocate(s.size(), 1));
    std::memcpy(p, s.data(), s.size());
    return {p, s.size()};
}

}  // namespace

/// One log's buffer on this reactor.
struct ReactorObserver::Log {
    Log(ReactorObserver& o, std::shared_ptr<const LogTarget> t, std::uint32_t s)
        : owner(o), target(std::move(t)),
          writer(target->options.buffer_bytes, static_cast<std::uint32_t>(target->options.flush_interval.count())),
          slot(s) {
        timer.fire = &ReactorObserver::on_flush_timer;
        timer.owner = this;
    }

    ReactorObserver& owner;
    std::shared_ptr<const LogTarget> target;
    accesslog::Writer writer;
    std::shared_ptr<accesslog::FileHandle> handle;  // the file of the write in flight
    iovec iov{};
    detail::TimerWheel::Timer timer;
    std::uint32_t slot;
    bool retired = false;
};

ReactorObserver::ReactorObserver(ReactorImpl& reactor, trace::Exporter* exporter) : reactor_(reactor) {
    if (exporter != nullptr) {
        sampler_ = std::make_unique<trace::Sampler>(exporter->options().sample_ratio);
        batcher_ = std::make_unique<trace::Batcher>(*exporter);
        span_timer_.owner = this;
        span_timer_.fire = [](detail::TimerWheel::Timer* t) {
            auto* self = static_cast<ReactorObserver*>(t->owner);
            self->batcher_->tick(self->reactor_.now_ms());
            self->reactor_.timers().arm(*t, self->reactor_.now_ms() + 100);
        };
        reactor_.timers().arm(span_timer_, reactor_.now_ms() + 100);
    }
}

ReactorObserver::~ReactorObserver() {
    reactor_.timers().cancel(span_timer_);
    for (auto& log : logs_) {
        if (log != nullptr) {
            reactor_.timers().cancel(log->timer);
        }
    }
}

void ReactorObserver::started(Exchange& ex, ExchangeObs& obs, const ListenerShared& listener) {
    const Request& req = ex.request();
    if (const auto& o = listener.options.request_id) {
        obs.request_id_options = &*o;
        std::string_view given;
        int fields = 0;
        for (const Header& h : req.headers) {
            if (h.name.size() == o->header.size() && iequals(h.name, o->header)) {
                given = h.value;
                ++fields;
            }
        }
        if (o->trust_incoming && fields == 1 && trace::valid_request_id(given)) {
            obs.request_id = keep(ex, given);
        } else {
            char* id = static_cast<char*>(ex.arena().allocate(trace::kUuidSize, 1));
            ids_.request_id(std::span<char, trace::kUuidSize>(id, trace::kUuidSize));
            obs.request_id = {id, trace::kUuidSize};
            obs.request_id_generated = true;
        }
    }
    if (batcher_ == nullptr) {
        return;
    }
    // W3C Trace Context §3.2: more than one traceparent field is invalid, and so is the
    // tracestate of a request without a valid traceparent.
    std::optional<trace::TraceParent> parent;
    std::string_view value;
    int fields = 0;
    std::size_t state_bytes = 0;
    int states = 0;
    for (const Header& h : req.headers) {
        if (iequals(h.name, "traceparent")) {
            value = h.value;
            ++fields;
        } else if (iequals(h.name, "tracestate")) {
            state_bytes += h.value.size() + 1;
            ++states;
        }
    }
    if (fields == 1) {
        parent = trace::parse_traceparent(value);
    }
    obs.traced = true;
    obs.trace = parent ? parent->trace : ids_.trace_id();
    obs.span = ids_.span_id();
    obs.has_parent = parent.has_value();
    if (parent) {
        obs.parent = parent->parent;
    }
    obs.sampled = sampler_->should_sample(parent ? &*parent : nullptr, obs.trace);
    obs.start_unix_ns = unix_now_ns();
    if (parent && states > 0 && state_bytes <= trace::kMaxTraceStateBytes + 1) {
        // Several tracestate fields form one list (RFC 9110 §5.3).
        char* joined = static_cast<char*>(ex.arena().allocate(state_bytes, 1));
        std::size_t n = 0;
        for (const Header& h : req.headers) {
            if (iequals(h.name, "tracestate")) {
                if (n > 0) {
                    joined[n++] = ',';
                }
                std::memcpy(joined + n, h.value.data(), h.value.size());
                n += h.value.size();
            }
        }
        if (trace::valid_tracestate({joined, n})) {
            obs.tracestate = {joined, n};
        }
    }
}

void ReactorObserver::echo(Exchange& ex, const ExchangeObs& obs) {
    if (obs.request_id_options != nullptr && obs.request_id_options->echo && !obs.request_id.empty()) {
        ex.response().set_header(obs.request_id_options->header, obs.request_id);
    }
}

void ReactorObserver::ended(const Exchange& ex, const ExchangeEnd& end, std::uint64_t duration_us) {
    const ListenerShared& l = *end.listener;
    const Route* route = ex.route();
    const LogTarget* target = l.access_log.get();
    const std::shared_ptr<const LogTarget>* owned = &l.access_log;
    if (route != nullptr && route->order < l.route_logs.size() && l.route_logs[route->order] != nullptr) {
        owned = &l.route_logs[route->order];
        target = owned->get();
    }
    const ExchangeObs* obs = end.obs;
    const bool span = obs != nullptr && obs->sampled && batcher_ != nullptr;
    if ((target == nullptr || !target->options.enabled) && !span) {
        return;
    }
    const Request& req = ex.request();
    const ProxyState::Report up = end.proxy != nullptr ? end.proxy->report() : ProxyState::Report{};
    const std::string_view upstream =
        route != nullptr && route->proxy.upstream != nullptr ? std::string_view(route->proxy.upstream->name())
                                                             : std::string_view();
    const std::uint64_t now_ns = unix_now_ns();
    if (target != nullptr && target->options.enabled) {
        // Everything the line needs first, then the Record in one initialisation: each field is
        // stored once instead of defaulted and then assigned.
        char client[INET6_ADDRSTRLEN];
        std::string_view client_ip;
        std::uint16_t client_port = 0;
        if (end.connection != nullptr) {
            client_ip = {client, end.connection->format_client_ip(client, sizeof client)};
            client_port = end.connection->client_port();
        } else {
            client_ip = const_cast<Exchange&>(ex).client_address();
        }
        char trace_hex[32];
        char span_hex[16];
        std::string_view trace_id;
        std::string_view span_id;
        if (obs != nullptr && obs->traced) {
            trace::format_hex(trace_hex, obs->trace);
            trace::format_hex(span_hex, obs->span);
            trace_id = {trace_hex, 32};
            span_id = {span_hex, 16};
        }
        // Only a listener with TLS options has TLS connections: the others skip the driver call.
        const TlsInfo* tls = l.options.tls ? const_cast<Exchange&>(ex).tls() : nullptr;
        std::string_view user_agent;
        std::string_view referer;
        for (const Header& h : req.headers) {  // one pass, the length compared first
            if (h.name.size() == 10 && iequals(h.name, "user-agent")) {
                user_agent = h.value;
            } else if (h.name.size() == 7 && iequals(h.name, "referer")) {
                referer = h.value;
            }
        }
        const accesslog::Record r{
            .time_us = static_cast<std::int64_t>(now_ns / 1000 - duration_us),
            .duration_us = static_cast<std::int64_t>(duration_us),
            .client = client_ip,
            .client_port = client_port,
            .method = req.method_name,
            .scheme = req.scheme,
            .authority = req.authority,
            .path = req.raw_target.empty() ? req.path : req.raw_target,
            .protocol = protocol_name(req.version),
            .status = static_cast<std::uint16_t>(ex.response().status()),
            .bytes_received = end.bytes_received,
            .bytes_sent = end.bytes_sent,
            .route = route != nullptr ? std::string_view(route->name) : std::string_view(),
            .upstream = upstream,
            .upstream_endpoint = up.endpoint,
            .upstream_status = static_cast<std::uint16_t>(up.status),
            .upstream_connect_us = up.connect_us,
            .upstream_first_byte_us = up.first_byte_us,
            .attempts = up.attempts,
            .request_id = obs != nullptr ? obs->request_id : std::string_view(),
            .trace_id = trace_id,
            .span_id = span_id,
            .tls_version = tls != nullptr ? std::string_view(tls->version) : std::string_view(),
            .tls_sni = tls != nullptr ? std::string_view(tls->server_name) : std::string_view(),
            .user_agent = user_agent,
            .referer = referer,
            .listener = l.options.name,
        };
        if (Log* log = log_for(*owned)) {
            if (log->writer.append(target->format, r)) {
                reactor_.metrics().access_log_lines.add();
            } else {
                reactor_.metrics().access_log_dropped.add();
            }
            if (log->writer.wants_flush(static_cast<std::int64_t>(reactor_.now_ms()))) {
                start_write(*log);
            } else if (!log->timer.armed()) {
                reactor_.timers().arm(log->timer,
                                      reactor_.now_ms() + static_cast<std::uint64_t>(target->options.flush_interval.count()));
            }
        }
    }
    if (span) {
        const std::string_view label = route != nullptr ? route_label(*route) : std::string_view();
        char name[64];
        std::size_t n = std::min<std::size_t>(req.method_name.size(), 16);
        std::memcpy(name, req.method_name.data(), n);
        if (!label.empty()) {
            const std::size_t add = std::min(label.size(), sizeof name - n - 1);
            name[n++] = ' ';
            std::memcpy(name + n, label.data(), add);
            n += add;
        }
        trace::Span& s = batcher_->add(trace::SpanKind::Server, {name, n}, obs->trace, obs->span,
                                       obs->has_parent ? std::optional(obs->parent) : std::nullopt, obs->start_unix_ns,
                                       now_ns);
        const int status = ex.response().status();
        batcher_->set(s, trace::attr::kHttpRequestMethod, req.method_name);
        batcher_->set(s, trace::attr::kUrlPath, req.path);
        if (!req.query.empty()) {
            batcher_->set(s, trace::attr::kUrlQuery, req.query);
        }
        batcher_->set(s, trace::attr::kUrlScheme, req.scheme);
        batcher_->set(s, trace::attr::kHttpResponseStatusCode, static_cast<std::int64_t>(status));
        if (!label.empty()) {
            batcher_->set(s, trace::attr::kHttpRoute, label);
        }
        batcher_->set(s, trace::attr::kServerAddress, req.authority);
        batcher_->set(s, trace::attr::kClientAddress, const_cast<Exchange&>(ex).client_address());
        batcher_->set(s, trace::attr::kNetworkProtocolVersion,
                      req.version == Version::Http2 ? "2" : req.version == Version::Http10 ? "1.0" : "1.1");
        if (const std::string_view ua = req.headers.get("user-agent"); !ua.empty()) {
            batcher_->set(s, trace::attr::kUserAgentOriginal, ua);
        }
        if (!obs->request_id.empty()) {
            batcher_->set(s, "http.request.header.x-request-id", obs->request_id);
        }
        s.status = trace::http_span_status(trace::SpanKind::Server, status);
    }
}

void ReactorObserver::client_span(const Exchange& ex, const ExchangeObs& obs, const trace::SpanId& id,
                                  std::uint64_t start_unix_ns, std::string_view upstream, std::string_view endpoint,
                                  int status, std::string_view error, std::uint32_t attempt) {
    if (!obs.sampled || batcher_ == nullptr) {
        return;
    }
    const Request& req = ex.request();
    trace::Span& s = batcher_->add(trace::SpanKind::Client, req.method_name, obs.trace, id, obs.span, start_unix_ns,
                                   unix_now_ns());
    batcher_->set(s, trace::attr::kHttpRequestMethod, req.method_name);
    batcher_->set(s, "blitz.upstream", upstream);
    if (const std::size_t colon = endpoint.rfind(':'); colon != std::string_view::npos) {
        std::string_view host = endpoint.substr(0, colon);
        if (host.size() >= 2 && host.front() == '[') {
            host = host.substr(1, host.size() - 2);
        }
        batcher_->set(s, trace::attr::kServerAddress, host);
        std::int64_t port = 0;
        for (const char c : endpoint.substr(colon + 1)) {
            port = port * 10 + (c - '0');
        }
        batcher_->set(s, trace::attr::kServerPort, port);
    }
    if (status != 0) {
        batcher_->set(s, trace::attr::kHttpResponseStatusCode, static_cast<std::int64_t>(status));
    }
    if (!error.empty()) {
        batcher_->set(s, trace::attr::kErrorType, error);
    }
    if (attempt > 0) {
        batcher_->set(s, trace::attr::kHttpRequestResendCount, static_cast<std::int64_t>(attempt));
    }
    s.status = error.empty() ? trace::http_span_status(trace::SpanKind::Client, status) : trace::StatusCode::Error;
}

ReactorObserver::Log* ReactorObserver::log_for(const std::shared_ptr<const LogTarget>& target) {
    std::size_t free_slot = logs_.size();
    for (std::size_t i = 0; i < logs_.size(); ++i) {
        Log* log = logs_[i].get();
        if (log == nullptr) {
            free_slot = std::min(free_slot, i);
        } else if (log->target == target) {
            log->retired = false;
            return log;
        }
    }
    auto log = std::make_unique<Log>(*this, target, static_cast<std::uint32_t>(free_slot));
    Log* raw = log.get();
    if (free_slot == logs_.size()) {
        logs_.push_back(std::move(log));
    } else {
        logs_[free_slot] = std::move(log);
    }
    return raw;
}

void ReactorObserver::start_write(Log& log) {
    if (log.writer.write_in_flight()) {
        return;
    }
    if (!log.writer.partial()) {
        log.handle = log.target->sink->current();  // a reopened file takes the next batch
    }
    const std::span<const char> bytes = log.writer.start_write();
    if (bytes.empty()) {
        return;
    }
    log.iov.iov_base = const_cast<char*>(bytes.data());
    log.iov.iov_len = bytes.size();
    reactor_.io().write(log.handle->fd(), &log.iov, 1, io::pack(io::Op::LogWrite, 0, log.slot));
}

void ReactorObserver::on_flush_timer(detail::TimerWheel::Timer* t) {
    auto* log = static_cast<Log*>(t->owner);
    ReactorObserver& self = log->owner;
    if (log->writer.wants_flush(static_cast<std::int64_t>(self.reactor_.now_ms()))) {
        self.start_write(*log);
    }
    if (log->writer.buffered_bytes() > 0 && !t->armed()) {
        self.reactor_.timers().arm(
            *t, self.reactor_.now_ms() + static_cast<std::uint64_t>(log->target->options.flush_interval.count()));
    }
}

void ReactorObserver::write_done(std::uint32_t slot, std::int32_t result) {
    if (slot >= logs_.size() || logs_[slot] == nullptr) {
        return;
    }
    Log& log = *logs_[slot];
    const std::uint64_t dropped = log.writer.dropped().value();
    log.writer.write_done(result);
    // Lines of a failed write are lost: counted as dropped.
    reactor_.metrics().access_log_dropped.add(log.writer.dropped().value() - dropped);
    if (log.writer.wants_flush(static_cast<std::int64_t>(reactor_.now_ms())) || log.writer.partial() ||
        (log.retired && log.writer.buffered_bytes() > 0)) {
        start_write(log);
    }
    if (log.retired && !log.writer.write_in_flight() && log.writer.buffered_bytes() == 0) {
        reactor_.timers().cancel(log.timer);
        logs_[slot].reset();
    }
}

void ReactorObserver::flush() {
    for (auto& log : logs_) {
        if (log != nullptr && log->writer.buffered_bytes() > 0) {
            start_write(*log);
        }
    }
    if (batcher_ != nullptr) {
        batcher_->flush();
    }
}

bool ReactorObserver::writing() const noexcept {
    for (const auto& log : logs_) {
        if (log != nullptr && (log->writer.write_in_flight() || log->writer.buffered_bytes() > 0)) {
            return true;
        }
    }
    return false;
}

void ReactorObserver::keep_only(const std::vector<const LogTarget*>& live) {
    for (auto& log : logs_) {
        if (log == nullptr || std::find(live.begin(), live.end(), log->target.get()) != live.end()) {
            continue;
        }
        log->retired = true;
        if (log->writer.write_in_flight()) {
            continue;  // write_done() finishes it
        }
        if (log->writer.buffered_bytes() > 0) {
            start_write(*log);
            continue;
        }
        reactor_.timers().cancel(log->timer);
        log.reset();
    }
}

void ReactorImpl::exchange_ended(const Exchange& ex, const ExchangeEnd& end) {
    if (end.listener->admin) {
        return;
    }
    const std::uint64_t now = now_us();
    const std::uint64_t duration = now > end.started_us ? now - end.started_us : 0;
    metrics_.request_done(ex.request().method, ex.route(), ex.response().status(), duration);
    if (end.listener->logs || (end.obs != nullptr && end.obs->sampled)) {
        observer_->ended(ex, end, duration);
    }
}

}  // namespace blitz::server

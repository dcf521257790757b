#include "trace/exporter.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>

#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <blitz/http.hpp>

#include "trace/otlp.hpp"

namespace blitz::trace {

namespace {

// Response heads and bodies longer than these are not worth reading from a collector (an
// OTLP response is a tiny ExportTraceServiceResponse).
constexpr std::size_t kMaxResponseHead = 16 * 1024;
constexpr std::size_t kMaxResponseBody = 1024 * 1024;

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

bool icontains(std::string_view haystack, std::string_view needle) noexcept {
    for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
        if (iequals(haystack.substr(i, needle.size()), needle)) {
            return true;
        }
    }
    return false;
}

// What the response head says about the body that follows (RFC 9112 §6.3).
struct ResponseHead {
    int status = 0;
    std::size_t head_size = 0;  // through the blank line
    bool chunked = false;
    std::optional<std::size_t> content_length;
    bool close = false;
};

// Parses a complete response head `text` (ending in CRLF CRLF). False when malformed.
bool parse_response_head(std::string_view text, ResponseHead& out) noexcept {
    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    if (text.size() < 12 || text.substr(0, 7) != "HTTP/1." || text[8] != ' ') {
        return false;
    }
    int status = 0;
    auto [end, ec] = std::from_chars(text.data() + 9, text.data() + 12, status);
    if (ec != std::errc{} || end != text.data() + 12 || status < 100) {
        return false;
    }
    out.status = status;
    out.head_size = text.size();
    out.close = text[7] == '0';  // HTTP/1.0: no persistent connection unless negotiated
    std::size_t pos = text.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < text.size()) {
        pos += 2;
        std::size_t eol = text.find("\r\n", pos);
        if (eol == std::string_view::npos || eol == pos) {
            break;
        }
        std::string_view line = text.substr(pos, eol - pos);
        pos = eol;
        auto colon = line.find(':');
        if (colon == std::string_view::npos) {
            return false;
        }
        std::string_view name = line.substr(0, colon);
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
            value.remove_prefix(1);
        }
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) {
            value.remove_suffix(1);
        }
        if (iequals(name, "content-length")) {
            std::size_t n = 0;
            auto r = std::from_chars(value.data(), value.data() + value.size(), n);
            if (value.empty() || r.ec != std::errc{} || r.ptr != value.data() + value.size()) {
                return false;
            }
            out.content_length = n;
        } else if (iequals(name, "transfer-encoding")) {
            out.chunked = icontains(value, "chunked");
        } else if (iequals(name, "connection")) {
            if (icontains(value, "close")) {
                out.close = true;
            } else if (icontains(value, "keep-alive")) {
                out.close = false;
            }
        }
    }
    return true;
}

// Length of a complete chunked body at the start of `body` including the last chunk and the
// trailer section (RFC 9112 §7.1); 0 when more bytes are needed; nullopt when malformed.
std::optional<std::size_t> chunked_length(std::string_view body) noexcept {
    std::size_t pos = 0;
    for (;;) {
        std::size_t eol = body.find("\r\n", pos);
        if (eol == std::string_view::npos) {
            return body.size() - pos > 1024 ? std::nullopt : std::optional<std::size_t>(0);
        }
        std::string_view line = body.substr(pos, eol - pos);
        line = line.substr(0, line.find(';'));  // chunk extensions are ignored
        std::size_t size = 0;
        auto r = std::from_chars(line.data(), line.data() + line.size(), size, 16);
        if (line.empty() || line.size() > 8 || r.ec != std::errc{} ||
            r.ptr != line.data() + line.size()) {
            return std::nullopt;
        }
        pos = eol + 2;
        if (size == 0) {
            for (;;) {  // trailer-section, then the final CRLF
                std::size_t end = body.find("\r\n", pos);
                if (end == std::string_view::npos) {
                    return 0;
                }
                if (end == pos) {
                    return pos + 2;
                }
                pos = end + 2;
            }
        }
        if (body.size() < pos + size + 2) {
            return 0;
        }
        if (body.substr(pos + size, 2) != "\r\n") {
            return std::nullopt;
        }
        pos += size + 2;
    }
}

}  // namespace

Result<std::unique_ptr<Exporter>> Exporter::start(ExporterOptions options) {
    net::SocketAddress address;
    if (!net::SocketAddress::parse(options.collector, address)) {
        return fail(Error{.code = Errc::InvalidArgument,
                          .source = ErrorSource::Config,
                          .context = "tracing.collector must be a numeric address:port"});
    }
    if (options.path.empty() || options.path.front() != '/' ||
        options.path.find_first_of(" \r\n") != std::string::npos) {
        return fail(Error{.code = Errc::InvalidArgument,
                          .source = ErrorSource::Config,
                          .context = "tracing.path must be an absolute path"});
    }
    if (options.batch_spans == 0 || options.queue_batches == 0) {
        return fail(Error{.code = Errc::InvalidArgument,
                          .source = ErrorSource::Config,
                          .context = "tracing.batch_spans and queue_batches must be positive"});
    }
    int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) {
        return fail(Error{.code = Errc::System,
                          .source = ErrorSource::System,
                          .sys_errno = errno,
                          .context = "eventfd for the trace exporter"});
    }
    std::unique_ptr<Exporter> e(new Exporter(std::move(options), address, wake));
    e->thread_ = std::thread([p = e.get()] { p->run(); });
    return e;
}

Exporter::Exporter(ExporterOptions options, const net::SocketAddress& address, int wake_fd)
    : options_(std::move(options)),
      address_(address),
      ring_(options_.queue_batches),
      wake_fd_(wake_fd) {
    request_head_prefix_ = "POST " + options_.path + " HTTP/1.1\r\nHost: " + options_.collector +
                           "\r\nContent-Type: application/json\r\nUser-Agent: blitz\r\n"
                           "Content-Length: ";
}

Exporter::~Exporter() { stop(); }

bool Exporter::submit(Batch&& batch) noexcept {
    std::size_t n = batch.size();
    if (n == 0) {
        return true;
    }
    {
        std::lock_guard lock(mu_);
        if (!stopping_ && count_ < ring_.size()) {
            ring_[(head_ + count_) % ring_.size()] = std::move(batch);
            ++count_;
            // Notified under the lock: stop() may destroy cv_ right after it sees the queue.
            cv_.notify_one();
            return true;
        }
    }
    spans_dropped_.fetch_add(n, std::memory_order_relaxed);
    return false;
}

void Exporter::stop() noexcept {
    if (joined_) {
        return;
    }
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
        stop_deadline_ns_.store(now_ns() + std::int64_t{options_.timeout_ms} * 1'000'000,
                                std::memory_order_relaxed);
        cv_.notify_one();
    }
    std::uint64_t one = 1;
    // The eventfd cuts short a poll() waiting on a slow collector, so the final flush keeps
    // to the stop deadline rather than a full attempt's timeout.
    [[maybe_unused]] ssize_t w = ::write(wake_fd_, &one, sizeof one);
    if (thread_.joinable()) {
        thread_.join();
    }
    joined_ = true;
    ::close(wake_fd_);
    wake_fd_ = -1;
}

void Exporter::run() {
    std::unique_lock lock(mu_);
    for (;;) {
        cv_.wait(lock, [this] { return count_ > 0 || stopping_; });
        if (count_ == 0) {
            break;  // stopping and drained
        }
        Batch batch = std::move(ring_[head_]);
        head_ = (head_ + 1) % ring_.size();
        --count_;
        lock.unlock();
        export_batch(batch);
        lock.lock();
    }
    lock.unlock();
    close_connection();
}

std::int64_t Exporter::effective_deadline(std::int64_t deadline_ns) const noexcept {
    std::int64_t stop = stop_deadline_ns_.load(std::memory_order_relaxed);
    return stop != 0 ? std::min(stop, deadline_ns) : deadline_ns;
}

void Exporter::export_batch(const Batch& batch) {
    std::size_t n = batch.size();
    std::int64_t stop = stop_deadline_ns_.load(std::memory_order_relaxed);
    if (stop != 0 && now_ns() >= stop) {
        spans_dropped_.fetch_add(n, std::memory_order_relaxed);  // stop()'s budget is spent
        return;
    }
    body_.clear();
    encode_otlp_json(body_, options_.service_name, batch.spans());
    bool stale_retry_used = false;
    for (int attempt = 0; attempt < 2;) {
        std::int64_t deadline = now_ns() + std::int64_t{options_.timeout_ms} * 1'000'000;
        Outcome outcome = post(body_, deadline);
        if (outcome == Outcome::Ok) {
            spans_exported_.fetch_add(n, std::memory_order_relaxed);
            return;
        }
        if (outcome == Outcome::StaleConnection && !stale_retry_used) {
            stale_retry_used = true;  // the collector closed an idle connection: not a failure
            continue;
        }
        export_failures_.fetch_add(1, std::memory_order_relaxed);
        // OTLP/HTTP §Failures: only 429, 502, 503, 504 and transport errors are retryable.
        if (outcome == Outcome::Permanent) {
            break;
        }
        ++attempt;
    }
    spans_dropped_.fetch_add(n, std::memory_order_relaxed);
}

void Exporter::close_connection() noexcept {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

// Waits until fd_ is ready for `events` or the deadline (cut short by stop()) passes.
bool Exporter::wait(short events, std::int64_t deadline_ns) {
    for (;;) {
        std::int64_t stop = stop_deadline_ns_.load(std::memory_order_relaxed);
        std::int64_t deadline = effective_deadline(deadline_ns);
        std::int64_t left = deadline - now_ns();
        if (left <= 0) {
            return false;
        }
        pollfd fds[2] = {{fd_, events, 0}, {wake_fd_, POLLIN, 0}};
        // Once stop() has set its deadline the eventfd stays readable; it is left out then.
        nfds_t nfds = stop == 0 ? 2 : 1;
        int timeout_ms =
            static_cast<int>(std::min<std::int64_t>((left + 999'999) / 1'000'000, 60'000));
        int r = ::poll(fds, nfds, timeout_ms);
        if (r < 0 && errno != EINTR) {
            return false;
        }
        if (r > 0 && fds[0].revents != 0) {
            return true;  // ready, or an error the next call reports
        }
    }
}

bool Exporter::connect(std::int64_t deadline_ns) {
    fd_ = ::socket(address_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        return false;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, address_.get(), address_.length) == 0) {
        return true;
    }
    if (errno != EINPROGRESS || !wait(POLLOUT, deadline_ns)) {
        close_connection();
        return false;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        close_connection();
        return false;
    }
    return true;
}

Exporter::Outcome Exporter::post(std::string_view body, std::int64_t deadline_ns) {
    bool reused = fd_ >= 0;
    if (!reused && !connect(deadline_ns)) {
        return Outcome::Retryable;
    }
    // Failures on a reused connection before any response byte arrived mean the collector
    // closed it while idle (RFC 9112 §9.3.1 allows retrying then); the caller reconnects.
    auto transport_failure = [&](bool any_response) {
        close_connection();
        return reused && !any_response ? Outcome::StaleConnection : Outcome::Retryable;
    };

    head_buf_ = request_head_prefix_;
    char len[24];
    head_buf_.append(len, std::to_chars(len, len + sizeof len, body.size()).ptr);
    head_buf_ += "\r\n\r\n";
    std::size_t total = head_buf_.size() + body.size();
    std::size_t sent = 0;
    while (sent < total) {
        iovec iov[2];
        int n = 0;
        if (sent < head_buf_.size()) {
            iov[n++] = {head_buf_.data() + sent, head_buf_.size() - sent};
            iov[n++] = {const_cast<char*>(body.data()), body.size()};
        } else {
            std::size_t off = sent - head_buf_.size();
            iov[n++] = {const_cast<char*>(body.data()) + off, body.size() - off};
        }
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = static_cast<std::size_t>(n);
        ssize_t w = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            sent += static_cast<std::size_t>(w);
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!wait(POLLOUT, deadline_ns)) {
                close_connection();
                return Outcome::Retryable;  // timed out: the collector is slow, not stale
            }
        } else {
            return transport_failure(false);
        }
    }

    response_.clear();
    ResponseHead head;
    bool have_head = false;
    for (;;) {
        if (!have_head) {
            auto end = response_.find("\r\n\r\n");
            if (end != std::string::npos) {
                if (!parse_response_head(std::string_view(response_).substr(0, end + 4), head)) {
                    close_connection();
                    return Outcome::Retryable;
                }
                have_head = true;
            } else if (response_.size() > kMaxResponseHead) {
                close_connection();
                return Outcome::Retryable;
            }
        }
        if (have_head) {
            std::string_view rest = std::string_view(response_).substr(head.head_size);
            bool complete = false;
            // RFC 9112 §6.3: 1xx, 204 and 304 have no body; then chunked; then Content-Length;
            // otherwise the body runs to the end of the connection.
            if (head.status < 200 || head.status == 204 || head.status == 304) {
                complete = true;
            } else if (head.chunked) {
                auto n = chunked_length(rest);
                if (!n) {
                    close_connection();
                    return Outcome::Retryable;
                }
                complete = *n != 0;
            } else if (head.content_length) {
                complete = rest.size() >= *head.content_length;
            }
            if (complete) {
                break;
            }
            if (rest.size() > kMaxResponseBody) {
                close_connection();
                return Outcome::Retryable;
            }
        }
        char buf[4096];
        ssize_t r = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            response_.append(buf, static_cast<std::size_t>(r));
        } else if (r == 0) {
            if (have_head && !head.chunked && !head.content_length) {
                head.close = true;
                break;  // body delimited by the end of the connection
            }
            return transport_failure(!response_.empty());
        } else if (errno == EAGAIN || errno == EINTR) {
            if (!wait(POLLIN, deadline_ns)) {
                close_connection();
                return Outcome::Retryable;
            }
        } else {
            return transport_failure(!response_.empty());
        }
    }
    if (head.close || head.status < 200) {
        close_connection();
    }
    if (head.status >= 200 && head.status <= 299) {
        return Outcome::Ok;
    }
    bool retryable =
        head.status == 429 || head.status == 502 || head.status == 503 || head.status == 504;
    return retryable ? Outcome::Retryable : Outcome::Permanent;
}

Batcher::Batcher(Exporter& exporter)
    : exporter_(exporter), batch_(exporter.options().batch_spans) {}

Span& Batcher::add(SpanKind kind, std::string_view name, const TraceId& trace, const SpanId& id,
                   std::optional<SpanId> parent, std::uint64_t start_unix_ns,
                   std::uint64_t end_unix_ns) {
    if (batch_.full()) {
        flush();
    }
    return *batch_.add(kind, name, trace, id, parent, start_unix_ns, end_unix_ns);
}

void Batcher::tick(std::uint64_t now_ms) {
    if (!clock_started_ || batch_.empty()) {
        clock_started_ = true;
        last_flush_ms_ = now_ms;
    }
    if (batch_.full() || now_ms - last_flush_ms_ >= exporter_.options().flush_interval_ms) {
        flush();
        last_flush_ms_ = now_ms;
    }
}

void Batcher::flush() {
    if (batch_.empty()) {
        return;
    }
    if (exporter_.submit(std::move(batch_))) {
        batch_ = Batch(exporter_.options().batch_spans);
    } else {
        batch_.clear();  // dropped and counted by the exporter; keep the storage
    }
}

}  // namespace blitz::trace

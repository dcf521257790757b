// blitz_test_backend: the HTTP/1.1 origin server the proxy integration tests run behind blitzd.
//
// It is deliberately independent of libblitz (plain POSIX sockets, one thread per connection)
// so that a bug in Blitz's own codec cannot hide itself by being on both sides of a test. It
// parses requests strictly, records every request head it receives as one JSON line, and
// misbehaves on request (delays, resets, hangs, odd framing) through query parameters.
// tests/backend/README.md documents the parameters.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace blitz::test_backend {
namespace {

using namespace std::string_view_literals;

constexpr std::size_t kIoPiece = 64 * 1024;          // read/write granularity for bodies
constexpr std::size_t kInBuffer = 2 * kIoPiece;      // per-connection receive buffer
constexpr std::size_t kMaxHeadBytes = 64 * 1024;     // request line + header section
constexpr std::size_t kMaxFields = 256;              // header (or trailer) fields
constexpr std::size_t kMaxChunkLine = 4096;          // chunk-size line incl. extensions
constexpr std::size_t kMaxLeadingEmptyLines = 8;     // RFC 9112 §2.2 robustness allowance
constexpr std::uint64_t kMaxDelayMs = 600'000;       // ten minutes
constexpr std::uint64_t kMaxBodyBytes = 1ULL << 40;  // 1 TiB
constexpr std::uint64_t kMaxCount = 1'000'000;       // SSE events
constexpr std::size_t kThreadStack = 256 * 1024;
constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

// ---------------------------------------------------------------------------------------------
// Process-wide state: settings are written once before the first thread starts and only read
// afterwards; counters are atomics.

struct Settings {
    std::string name = "backend";
    int log_fd = -1;
    int idle_timeout_ms = 0;         // 0: keep idle connections open forever
    std::uint64_t max_requests = 0;  // per connection; 0: unlimited
};

struct Counters {
    std::atomic<std::uint64_t> connections_accepted{0};
    std::atomic<std::uint64_t> active_connections{0};
    std::atomic<std::uint64_t> requests{0};
    std::atomic<bool> healthy{true};
};

Settings& settings() {
    static Settings s;
    return s;
}

Counters& counters() {
    static Counters c;
    return c;
}

// ---------------------------------------------------------------------------------------------
// Character classes and small string helpers (RFC 9110 §5.6).

bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        return true;
    }
    return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return is_tchar(static_cast<unsigned char>(c));
    });
}

// RFC 9110 §5.5: field-value bytes are VCHAR, obs-text, SP and HTAB; every other control
// byte (NUL, bare CR, DEL, ...) is rejected.
bool is_field_value(std::string_view s) {
    return std::all_of(s.begin(), s.end(), [](char ch) {
        auto c = static_cast<unsigned char>(ch);
        return c == '\t' || (c >= 0x20 && c != 0x7f);
    });
}

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

// Calls f for every non-empty element of a comma-separated list (RFC 9110 §5.6.1).
template <typename F>
void for_each_element(std::string_view list, F&& f) {
    while (true) {
        auto comma = list.find(',');
        auto element = trim_ows(list.substr(0, comma));
        if (!element.empty()) {
            f(element);
        }
        if (comma == std::string_view::npos) {
            return;
        }
        list.remove_prefix(comma + 1);
    }
}

std::optional<std::uint64_t> parse_decimal(std::string_view s, std::uint64_t max) {
    if (s.empty() || s.size() > 19) {
        return std::nullopt;
    }
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size() || v > max) {
        return std::nullopt;
    }
    return v;
}

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (c < 0x20 || c >= 0x7f) {
            // Bytes outside printable ASCII are written as \u00XX (their Latin-1 reading) so
            // every log line stays valid JSON whatever arrived on the wire.
            out += "\\u00";
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 15]);
        } else {
            out.push_back(ch);
        }
    }
    out.push_back('"');
}

void sleep_ms(std::uint64_t ms) {
    if (ms > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
}

// ---------------------------------------------------------------------------------------------
// SHA-1 (FIPS 180-4) and base64 (RFC 4648 §4), only for Sec-WebSocket-Accept (RFC 6455 §4.2.2).

std::array<unsigned char, 20> sha1(std::string_view data) {
    std::uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    std::string msg(data);
    const std::uint64_t bit_length = static_cast<std::uint64_t>(data.size()) * 8;
    msg.push_back(static_cast<char>(0x80));
    while (msg.size() % 64 != 56) {
        msg.push_back('\0');
    }
    for (int i = 7; i >= 0; --i) {
        msg.push_back(static_cast<char>((bit_length >> (i * 8)) & 0xff));
    }
    auto rol = [](std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
    for (std::size_t block = 0; block < msg.size(); block += 64) {
        std::uint32_t w[80];
        for (int i = 0; i < 16; ++i) {
            const auto* p = reinterpret_cast<const unsigned char*>(msg.data() + block + i * 4);
            w[i] = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                   (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
        }
        for (int i = 16; i < 80; ++i) {
            w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        }
        std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; ++i) {
            std::uint32_t f = 0;
            std::uint32_t k = 0;
            if (i < 20) {
                f = (b & c) | (~b & d);
                k = 0x5A827999;
            } else if (i < 40) {
                f = b ^ c ^ d;
                k = 0x6ED9EBA1;
            } else if (i < 60) {
                f = (b & c) | (b & d) | (c & d);
                k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d;
                k = 0xCA62C1D6;
            }
            const std::uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d;
            d = c;
            c = rol(b, 30);
            b = a;
            a = t;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
    }
    std::array<unsigned char, 20> out{};
    for (int i = 0; i < 20; ++i) {
        out[i] = static_cast<unsigned char>((h[i / 4] >> (24 - 8 * (i % 4))) & 0xff);
    }
    return out;
}

constexpr std::string_view kBase64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64_encode(const unsigned char* p, std::size_t n) {
    std::string out;
    for (std::size_t i = 0; i < n; i += 3) {
        std::uint32_t v = std::uint32_t{p[i]} << 16;
        if (i + 1 < n) {
            v |= std::uint32_t{p[i + 1]} << 8;
        }
        if (i + 2 < n) {
            v |= p[i + 2];
        }
        out.push_back(kBase64[(v >> 18) & 63]);
        out.push_back(kBase64[(v >> 12) & 63]);
        out.push_back(i + 1 < n ? kBase64[(v >> 6) & 63] : '=');
        out.push_back(i + 2 < n ? kBase64[v & 63] : '=');
    }
    return out;
}

// Length of the decoded value of canonical padded base64, or nullopt when s is not base64.
std::optional<std::size_t> base64_decoded_size(std::string_view s) {
    if (s.empty() || s.size() % 4 != 0) {
        return std::nullopt;
    }
    std::size_t pad = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '=') {
            if (i < s.size() - 2) {
                return std::nullopt;
            }
            ++pad;
        } else if (pad > 0 || kBase64.find(s[i]) == std::string_view::npos) {
            return std::nullopt;
        }
    }
    return s.size() / 4 * 3 - pad;
}

std::string websocket_accept(std::string_view key) {
    std::string joined(key);
    joined += kWebSocketGuid;
    auto digest = sha1(joined);
    return base64_encode(digest.data(), digest.size());
}

// ---------------------------------------------------------------------------------------------
// One accepted connection: a receive buffer the parsers read from in place, an output buffer
// flushed with blocking send(2), and the three ways a connection ends.

class Connection {
 public:
    Connection(int fd, std::uint64_t serial) : fd_(fd), serial_(serial), in_(kInBuffer) {}
    ~Connection() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    std::uint64_t serial() const { return serial_; }

    std::string_view buffered() const { return {in_.data() + begin_, end_ - begin_}; }

    void consume(std::size_t n) {
        begin_ += n;
        if (begin_ == end_) {
            begin_ = end_ = 0;
        }
    }

    // Receives more bytes after the buffered ones. Views into the buffer taken earlier are
    // invalidated. False on EOF, error, or when the buffer is full (callers bound what they
    // keep buffered well below its size, so a full buffer means a protocol violation).
    bool fill() {
        if (end_ == in_.size()) {
            if (begin_ == 0) {
                return false;
            }
            std::memmove(in_.data(), in_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            begin_ = 0;
        }
        while (true) {
            ssize_t n = ::recv(fd_, in_.data() + end_, in_.size() - end_, 0);
            if (n > 0) {
                end_ += static_cast<std::size_t>(n);
                return true;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            return false;
        }
    }

    // Waits up to timeout_ms for input; false on timeout.
    bool wait_readable(int timeout_ms) {
        pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
        while (true) {
            int r = ::poll(&p, 1, timeout_ms);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            return r != 0;
        }
    }

    void append(std::string_view s) {
        out_.append(s);
        if (out_.size() >= kIoPiece) {
            flush();
        }
    }

    // Sends everything appended so far. After a failed send the connection is dead: further
    // output is dropped and ok() is false.
    bool flush() {
        std::size_t done = 0;
        while (ok_ && done < out_.size()) {
            ssize_t n = ::send(fd_, out_.data() + done, out_.size() - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                ok_ = false;
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        out_.clear();
        return ok_;
    }

    bool ok() const { return ok_; }

    // Aborts with a TCP RST: SO_LINGER with a zero timeout makes close(2) discard unsent
    // data and reset instead of sending FIN.
    void reset() {
        linger l{.l_onoff = 1, .l_linger = 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(fd_);
        fd_ = -1;
    }

    // Closes after the response: FIN first, then drain what the peer still sends for a short
    // while, because closing with unread input would make the kernel send RST and could
    // destroy the response before the peer read it (RFC 9112 §9.6).
    void close_gracefully() {
        flush();
        ::shutdown(fd_, SHUT_WR);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
        std::size_t drained = 0;
        while (drained < (1u << 20)) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0 || !wait_readable(static_cast<int>(left.count()))) {
                break;
            }
            ssize_t n = ::recv(fd_, in_.data(), in_.size(), 0);
            if (n <= 0 && !(n < 0 && errno == EINTR)) {
                break;
            }
            drained += n > 0 ? static_cast<std::size_t>(n) : 0;
        }
        ::close(fd_);
        fd_ = -1;
    }

    // For hang=1: never answer; discard input until the peer closes.
    void wait_for_peer_close() {
        while (true) {
            ssize_t n = ::recv(fd_, in_.data(), in_.size(), 0);
            if (n == 0 || (n < 0 && errno != EINTR)) {
                break;
            }
        }
        ::close(fd_);
        fd_ = -1;
    }

 private:
    int fd_;
    std::uint64_t serial_;
    std::vector<char> in_;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::string out_;
    bool ok_ = true;
};

// Reads one CRLF-terminated line of at most max bytes (terminator excluded) and consumes it.
// The view is valid until the next fill(). A bare LF is an error (RFC 9112 §2.2 lets a
// recipient accept it; a recorder used to catch smuggling must not).
enum class LineResult { Ok, Eof, Malformed, TooLong };

LineResult read_line(Connection& c, std::size_t max, std::string_view& line) {
    std::size_t scanned = 0;
    while (true) {
        auto buf = c.buffered();
        auto lf = buf.find('\n', scanned);
        if (lf != std::string_view::npos) {
            if (lf == 0 || buf[lf - 1] != '\r') {
                return LineResult::Malformed;
            }
            if (lf - 1 > max) {
                return LineResult::TooLong;
            }
            line = buf.substr(0, lf - 1);
            c.consume(lf + 1);
            return LineResult::Ok;
        }
        if (buf.size() > max + 1) {
            return LineResult::TooLong;
        }
        scanned = buf.size();
        if (!c.fill()) {
            return LineResult::Eof;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request heads (RFC 9112 §3, §5, §6).

struct Field {
    std::string name;
    std::string value;
};

enum class Framing { None, Length, Chunked };

struct Request {
    std::string method;
    std::string target;
    std::string path;
    std::string query;
    int minor = 1;
    std::vector<Field> fields;
    Framing framing = Framing::None;
    std::uint64_t content_length = 0;
    bool keep_alive = true;
    bool expect_continue = false;
    bool expect_unknown = false;

    const Field* find(std::string_view name) const {
        for (const auto& f : fields) {
            if (iequals(f.name, name)) {
                return &f;
            }
        }
        return nullptr;
    }

    bool has_token(std::string_view name, std::string_view token) const {
        bool found = false;
        for (const auto& f : fields) {
            if (iequals(f.name, name)) {
                for_each_element(f.value, [&](std::string_view e) { found |= iequals(e, token); });
            }
        }
        return found;
    }
};

struct HeadError {
    int status = 400;
    std::string reason;
    std::string raw;  // what was received, for the log
};

// Parses "name: value" (RFC 9112 §5.1) into f; false with a reason on error.
bool parse_field_line(std::string_view line, Field& f, std::string& reason) {
    if (line.front() == ' ' || line.front() == '\t') {
        reason = "obs-fold line folding";  // RFC 9112 §5.2: rejected in requests
        return false;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
        reason = "field line without colon";
        return false;
    }
    auto name = line.substr(0, colon);
    if (!is_token(name)) {
        // Also catches whitespace between name and colon (RFC 9112 §5.1: MUST reject).
        reason = "invalid field name";
        return false;
    }
    auto value = trim_ows(line.substr(colon + 1));
    if (!is_field_value(value)) {
        reason = "invalid byte in field value";
        return false;
    }
    f.name.assign(name);
    f.value.assign(value);
    return true;
}

bool parse_request_line(std::string_view line, Request& r, HeadError& err) {
    auto sp1 = line.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        err.reason = "request line is not method SP target SP version";
        return false;
    }
    auto method = line.substr(0, sp1);
    auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    auto version = line.substr(sp2 + 1);
    if (!is_token(method)) {
        err.reason = "invalid method";
        return false;
    }
    if (target.empty() || !std::all_of(target.begin(), target.end(), [](char ch) {
            auto c = static_cast<unsigned char>(ch);
            return c > 0x20 && c < 0x7f;
        })) {
        err.reason = "invalid request target";
        return false;
    }
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
        version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
        err.reason = "invalid HTTP version";
        return false;
    }
    if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
        err.status = 505;
        err.reason = "unsupported HTTP version";
        return false;
    }
    r.method.assign(method);
    r.target.assign(target);
    r.minor = version[7] - '0';

    // Origin-form "/p?q", absolute-form "http://h/p?q" (RFC 9112 §3.2.2), asterisk-form "*".
    std::string_view rest = target;
    if (auto scheme = rest.find("://"); rest.front() != '/' && scheme != std::string_view::npos) {
        rest.remove_prefix(scheme + 3);
        auto slash = rest.find_first_of("/?");
        rest = slash == std::string_view::npos ? "/"sv : rest.substr(slash);
    }
    auto q = rest.find('?');
    r.path.assign(rest.substr(0, q));
    if (r.path.empty()) {
        r.path = "/";
    }
    if (q != std::string_view::npos) {
        r.query.assign(rest.substr(q + 1));
    }
    return true;
}

// Message framing, connection persistence and expectations (RFC 9112 §6.3, §9.3; RFC 9110
// §10.1.1). Anything ambiguous is rejected rather than guessed, so that a request smuggled
// through the proxy shows up in the log as an error instead of as two requests.
bool interpret_fields(Request& r, HeadError& err) {
    bool have_te = false;
    bool have_cl = false;
    int chunked_count = 0;
    bool chunked_last = false;
    bool other_coding = false;
    std::size_t hosts = 0;
    for (const auto& f : r.fields) {
        if (iequals(f.name, "transfer-encoding")) {
            have_te = true;
            for_each_element(f.value, [&](std::string_view coding) {
                chunked_last = iequals(coding, "chunked");
                chunked_count += chunked_last ? 1 : 0;
                other_coding |= !chunked_last;
            });
        } else if (iequals(f.name, "content-length")) {
            bool bad = false;
            bool any = false;
            for_each_element(f.value, [&](std::string_view e) {
                auto v =
                    std::all_of(e.begin(), e.end(), [](char c) { return c >= '0' && c <= '9'; })
                        ? parse_decimal(e, kMaxBodyBytes)
                        : std::nullopt;
                // RFC 9110 §8.6: a list of identical values may be accepted as that value.
                if (!v || (have_cl && *v != r.content_length)) {
                    bad = true;
                } else {
                    r.content_length = *v;
                    have_cl = true;
                }
                any = true;
            });
            if (bad || !any) {
                err.reason = "invalid or conflicting content-length";
                return false;
            }
        } else if (iequals(f.name, "host")) {
            ++hosts;
        }
    }
    if (have_te) {
        if (have_cl) {
            err.reason = "both transfer-encoding and content-length";  // RFC 9112 §6.1
            return false;
        }
        if (r.minor == 0) {
            err.reason = "transfer-encoding in an HTTP/1.0 request";  // RFC 9112 §6.1
            return false;
        }
        if (other_coding && chunked_count <= 1) {
            err.status = 501;
            err.reason = "unsupported transfer coding";
            return false;
        }
        if (chunked_count != 1 || !chunked_last) {
            err.reason = "chunked is not the final coding exactly once";  // RFC 9112 §6.3
            return false;
        }
        r.framing = Framing::Chunked;
    } else if (have_cl) {
        r.framing = Framing::Length;
    }
    if (r.minor == 1 && hosts != 1) {
        err.reason = hosts == 0 ? "missing host" : "multiple host fields";  // RFC 9112 §3.2
        return false;
    }
    r.keep_alive = r.minor == 1 ? !r.has_token("connection", "close")
                                : r.has_token("connection", "keep-alive") &&
                                      !r.has_token("connection", "close");
    if (const Field* expect = r.find("expect"); expect != nullptr && r.minor == 1) {
        // RFC 9110 §10.1.1: an HTTP/1.0 request's expectation is ignored.
        r.expect_continue = iequals(expect->value, "100-continue");
        r.expect_unknown = !r.expect_continue;
    }
    return true;
}

enum class HeadResult { Ok, Closed, Error };

// Receives and parses one request head. Closed: the peer closed (or stayed idle past the idle
// timeout) between requests, which is not an error.
HeadResult read_head(Connection& c, Request& r, HeadError& err) {
    std::size_t leading_empty = 0;
    std::size_t scanned = 0;
    std::size_t head_end = 0;
    auto fail = [&](int status, std::string reason) {
        err.status = status;
        err.reason = std::move(reason);
        err.raw.assign(c.buffered().substr(0, std::min<std::size_t>(c.buffered().size(), 1024)));
        return HeadResult::Error;
    };
    while (head_end == 0) {
        auto buf = c.buffered();
        if (buf.empty() && settings().idle_timeout_ms > 0 &&
            !c.wait_readable(settings().idle_timeout_ms)) {
            return HeadResult::Closed;
        }
        auto lf = buf.find('\n', scanned);
        if (lf == std::string_view::npos) {
            if (buf.size() >= kMaxHeadBytes) {
                return fail(431, "request head too large");
            }
            scanned = buf.size();
            if (!c.fill()) {
                return buf.empty() ? HeadResult::Closed : fail(400, "eof inside request head");
            }
            continue;
        }
        if (lf == 0 || buf[lf - 1] != '\r') {
            return fail(400, "bare LF in request head");
        }
        if (lf == 1) {
            // RFC 9112 §2.2: empty lines before the request line are ignored (a few of them).
            if (++leading_empty > kMaxLeadingEmptyLines) {
                return fail(400, "too many empty lines before the request line");
            }
            c.consume(2);
            scanned = 0;
        } else if (lf >= 3 && buf[lf - 2] == '\n') {
            head_end = lf + 1;
        } else {
            scanned = lf + 1;
        }
        if (lf + 1 > kMaxHeadBytes) {
            return fail(431, "request head too large");
        }
    }
    std::string head(c.buffered().substr(0, head_end));
    c.consume(head_end);
    err.raw = head.substr(0, 1024);

    std::string_view rest(head);
    auto next_line = [&rest]() {
        auto crlf = rest.find("\r\n");
        auto line = rest.substr(0, crlf);
        rest.remove_prefix(crlf + 2);
        return line;
    };
    if (!parse_request_line(next_line(), r, err)) {
        return HeadResult::Error;
    }
    for (auto line = next_line(); !line.empty(); line = next_line()) {
        if (r.fields.size() == kMaxFields) {
            err.status = 431;
            err.reason = "too many header fields";
            return HeadResult::Error;
        }
        Field f;
        if (!parse_field_line(line, f, err.reason)) {
            return HeadResult::Error;
        }
        r.fields.push_back(std::move(f));
    }
    return interpret_fields(r, err) ? HeadResult::Ok : HeadResult::Error;
}

// ---------------------------------------------------------------------------------------------
// Request bodies: Content-Length or chunked (RFC 9112 §6.3, §7.1), handed out in pieces that
// are views into the receive buffer, so a body of any size streams through a fixed buffer.

class BodyReader {
 public:
    BodyReader(Connection& c, const Request& r)
        : c_(c),
          state_(r.framing == Framing::Chunked  ? State::ChunkSize
                 : r.framing == Framing::Length ? State::Data
                                                : State::Done),
          chunked_(r.framing == Framing::Chunked),
          remaining_(r.content_length) {
        if (state_ == State::Data && remaining_ == 0) {
            state_ = State::Done;
        }
    }

    // Sets piece to the next body bytes (valid until the next call) and returns true; returns
    // true with an empty piece at the end of the body, false on error (see error()).
    bool next(std::string_view& piece) {
        piece = {};
        while (true) {
            switch (state_) {
                case State::Done:
                    return true;
                case State::Failed:
                    return false;
                case State::Data:
                    return read_data(piece);
                case State::ChunkSize:
                    if (!read_chunk_size()) {
                        return false;
                    }
                    break;
                case State::ChunkEnd:
                    if (!read_chunk_end()) {
                        return false;
                    }
                    break;
                case State::Trailers:
                    if (!read_trailer_line()) {
                        return false;
                    }
                    break;
            }
        }
    }

    bool done() const { return state_ == State::Done; }
    std::uint64_t total() const { return total_; }
    const std::vector<Field>& trailers() const { return trailers_; }
    const std::string& error() const { return error_; }

 private:
    enum class State { ChunkSize, Data, ChunkEnd, Trailers, Done, Failed };

    bool failed(std::string why) {
        error_ = std::move(why);
        state_ = State::Failed;
        return false;
    }

    bool read_data(std::string_view& piece) {
        if (c_.buffered().empty() && !c_.fill()) {
            return failed("eof inside request body");
        }
        auto buf = c_.buffered();
        auto n = static_cast<std::size_t>(
            std::min<std::uint64_t>(std::min(buf.size(), kIoPiece), remaining_));
        piece = buf.substr(0, n);
        c_.consume(n);
        remaining_ -= n;
        total_ += n;
        if (remaining_ == 0) {
            state_ = chunked_ ? State::ChunkEnd : State::Done;
        }
        return true;
    }

    bool line(std::size_t max, std::string_view& out) {
        switch (read_line(c_, max, out)) {
            case LineResult::Ok:
                return true;
            case LineResult::Eof:
                return failed("eof inside chunked framing");
            case LineResult::Malformed:
                return failed("bare LF in chunked framing");
            case LineResult::TooLong:
                return failed("chunked framing line too long");
        }
        return false;
    }

    // chunk = chunk-size [ chunk-ext ] CRLF (RFC 9112 §7.1, §7.1.1)
    bool read_chunk_size() {
        std::string_view l;
        if (!line(kMaxChunkLine, l)) {
            return false;
        }
        std::size_t digits = 0;
        std::uint64_t size = 0;
        while (digits < l.size() && std::isxdigit(static_cast<unsigned char>(l[digits]))) {
            if (digits == 15) {
                return failed("chunk size too large");
            }
            const char d = lower(l[digits]);
            size = size * 16 + static_cast<std::uint64_t>(d <= '9' ? d - '0' : d - 'a' + 10);
            ++digits;
        }
        if (digits == 0) {
            return failed("invalid chunk size");
        }
        auto ext = trim_ows(l.substr(digits));
        if (!ext.empty() && (ext.front() != ';' || !is_field_value(ext))) {
            return failed("invalid chunk extension");
        }
        if (size == 0) {
            state_ = State::Trailers;
        } else {
            remaining_ = size;
            state_ = State::Data;
        }
        return true;
    }

    bool read_chunk_end() {
        while (c_.buffered().size() < 2) {
            if (!c_.fill()) {
                return failed("eof inside chunked framing");
            }
        }
        if (c_.buffered().substr(0, 2) != "\r\n") {
            return failed("chunk data not followed by CRLF");
        }
        c_.consume(2);
        state_ = State::ChunkSize;
        return true;
    }

    // trailer-section = *( field-line CRLF ) CRLF (RFC 9112 §7.1.2)
    bool read_trailer_line() {
        std::string_view l;
        if (!line(kMaxHeadBytes, l)) {
            return false;
        }
        if (l.empty()) {
            state_ = State::Done;
            return true;
        }
        trailer_bytes_ += l.size();
        if (trailers_.size() == kMaxFields || trailer_bytes_ > kMaxHeadBytes) {
            return failed("trailer section too large");
        }
        Field f;
        std::string why;
        if (!parse_field_line(l, f, why)) {
            return failed("trailer: " + why);
        }
        trailers_.push_back(std::move(f));
        return true;
    }

    Connection& c_;
    State state_;
    bool chunked_;
    std::uint64_t remaining_;
    std::uint64_t total_ = 0;
    std::size_t trailer_bytes_ = 0;
    std::vector<Field> trailers_;
    std::string error_;
};

// ---------------------------------------------------------------------------------------------
// The request log: one JSON object per line, written with a single write(2) on an O_APPEND
// descriptor so lines from concurrent connections never interleave.

void write_log_line(std::string& line) {
    if (settings().log_fd < 0) {
        return;
    }
    line.push_back('\n');
    std::size_t done = 0;
    while (done < line.size()) {
        ssize_t n = ::write(settings().log_fd, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        done += static_cast<std::size_t>(n);
    }
}

void append_fields_json(std::string& out, const std::vector<Field>& fields) {
    out.push_back('[');
    for (std::size_t i = 0; i < fields.size(); ++i) {
        out += i == 0 ? "[" : ",[";
        append_json_string(out, fields[i].name);
        out.push_back(',');
        append_json_string(out, fields[i].value);
        out.push_back(']');
    }
    out.push_back(']');
}

void log_request(const Connection& c, std::uint64_t seq, const Request& r, std::uint64_t body_bytes,
                 const std::vector<Field>& trailers) {
    std::string line = "{\"method\":";
    append_json_string(line, r.method);
    line += ",\"target\":";
    append_json_string(line, r.target);
    line += ",\"headers\":";
    append_fields_json(line, r.fields);
    line += ",\"body_bytes\":" + std::to_string(body_bytes);
    line += ",\"conn\":" + std::to_string(c.serial());
    line += ",\"seq\":" + std::to_string(seq);
    line += r.minor == 1 ? ",\"version\":\"HTTP/1.1\"" : ",\"version\":\"HTTP/1.0\"";
    if (!trailers.empty()) {
        line += ",\"trailers\":";
        append_fields_json(line, trailers);
    }
    line.push_back('}');
    write_log_line(line);
}

// For requests that could not be handled; method and target are included once known.
void log_error(const Connection& c, std::uint64_t seq, std::string_view error, const Request* r,
               std::string_view raw) {
    std::string line = "{\"error\":";
    append_json_string(line, error);
    if (r != nullptr && !r->method.empty()) {
        line += ",\"method\":";
        append_json_string(line, r->method);
        line += ",\"target\":";
        append_json_string(line, r->target);
    }
    if (!raw.empty()) {
        line += ",\"raw\":";
        append_json_string(line, raw);
    }
    line += ",\"conn\":" + std::to_string(c.serial());
    line += ",\"seq\":" + std::to_string(seq);
    line.push_back('}');
    write_log_line(line);
}

// ---------------------------------------------------------------------------------------------
// Query parameters controlling the response.

enum class Reset { None, Headers, Body, Next };

struct Params {
    int status = 200;
    std::uint64_t delay_ms = 0;
    std::uint64_t body_delay_ms = 0;
    std::uint64_t chunk_delay_ms = 0;
    std::uint64_t read_delay_ms = 0;
    std::optional<std::uint64_t> bytes;
    std::uint64_t chunk = 0;
    std::uint64_t count = 3;
    bool chunked = false;
    bool trailer = false;
    bool close = false;
    bool close_silent = false;
    bool no_length = false;
    bool hang = false;
    bool echo_headers = false;
    bool expect_417 = false;
    Reset reset = Reset::None;
    std::vector<Field> extra_fields;
    std::vector<Field> trailer_fields;  // trailer_field=: sent after the last chunk
};

std::string percent_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() &&
            std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            auto hex = [](char c) { return c <= '9' ? c - '0' : lower(c) - 'a' + 10; };
            out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

bool parse_params(std::string_view query, Params& p, std::string& err) {
    while (!query.empty()) {
        auto amp = query.find('&');
        auto pair = query.substr(0, amp);
        query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
        if (pair.empty()) {
            continue;
        }
        auto eq = pair.find('=');
        const std::string key = percent_decode(pair.substr(0, eq));
        const std::string value =
            eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
        auto number = [&](std::uint64_t& out, std::uint64_t min, std::uint64_t max) {
            auto v = parse_decimal(value, max);
            if (!v || *v < min) {
                err = "bad value for " + key;
                return false;
            }
            out = *v;
            return true;
        };
        auto flag = [&](bool& out) {
            if (value == "1" || value == "true") {
                out = true;
            } else if (value == "0" || value == "false") {
                out = false;
            } else {
                err = "bad value for " + key;
                return false;
            }
            return true;
        };
        bool ok = true;
        if (key == "status") {
            std::uint64_t s = 0;
            ok = number(s, 200, 599);
            p.status = static_cast<int>(s);
        } else if (key == "delay_ms") {
            ok = number(p.delay_ms, 0, kMaxDelayMs);
        } else if (key == "body_delay_ms") {
            ok = number(p.body_delay_ms, 0, kMaxDelayMs);
        } else if (key == "chunk_delay_ms") {
            ok = number(p.chunk_delay_ms, 0, kMaxDelayMs);
        } else if (key == "read_delay_ms") {
            ok = number(p.read_delay_ms, 0, kMaxDelayMs);
        } else if (key == "bytes") {
            std::uint64_t b = 0;
            ok = number(b, 0, kMaxBodyBytes);
            p.bytes = b;
        } else if (key == "chunk") {
            ok = number(p.chunk, 1, kMaxBodyBytes);
        } else if (key == "count") {
            ok = number(p.count, 0, kMaxCount);
        } else if (key == "chunked") {
            ok = flag(p.chunked);
        } else if (key == "trailer") {
            ok = flag(p.trailer);
        } else if (key == "no_length") {
            ok = flag(p.no_length);
        } else if (key == "hang") {
            ok = flag(p.hang);
        } else if (key == "headers") {
            ok = flag(p.echo_headers);
        } else if (key == "close") {
            p.close_silent = value == "silent";
            ok = p.close_silent || flag(p.close);
        } else if (key == "expect") {
            p.expect_417 = value == "417";
            ok = p.expect_417;
            err = ok ? err : "bad value for expect";
        } else if (key == "reset") {
            p.reset = value == "headers" ? Reset::Headers
                      : value == "body"  ? Reset::Body
                      : value == "next"  ? Reset::Next
                                         : Reset::None;
            ok = p.reset != Reset::None;
            err = ok ? err : "bad value for reset";
        } else if (key == "header" || key == "trailer_field") {
            auto colon = value.find(':');
            Field f;
            if (colon == std::string::npos || !is_token(value.substr(0, colon)) ||
                !is_field_value(value.substr(colon + 1))) {
                err = "bad value for " + key + " (want Name:Value)";
                return false;
            }
            f.name = value.substr(0, colon);
            f.value = std::string(trim_ows(std::string_view(value).substr(colon + 1)));
            (key == "header" ? p.extra_fields : p.trailer_fields).push_back(std::move(f));
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// Responses.

std::string_view reason_phrase(int status) {
    static constexpr std::pair<int, std::string_view> kPhrases[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {413, "Content Too Large"},
        {417, "Expectation Failed"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
    };
    for (const auto& [code, phrase] : kPhrases) {
        if (code == status) {
            return phrase;
        }
    }
    return "Status";  // RFC 9112 §4: clients ignore the reason phrase
}

// What the connection loop does once a request has been handled.
enum class After { KeepAlive, Close, Reset, Hang };

// A request being handled: the connection, its parsed head and its parameters.
struct Exchange {
    Connection& conn;
    const Request& req;
    Params params;
    std::uint64_t seq;
    bool continue_sent = false;
};

// Starts a response head with the fields every response carries: X-Backend, the extra
// header= fields, and the Connection field matching keep_alive for this request's version.
std::string begin_head(const Exchange& ex, int status, bool keep_alive) {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " ";
    h += reason_phrase(status);
    h += "\r\nX-Backend: " + settings().name + "\r\n";
    for (const auto& f : ex.params.extra_fields) {
        h += f.name + ": " + f.value + "\r\n";
    }
    if (!keep_alive) {
        h += "Connection: close\r\n";
    } else if (ex.req.minor == 0) {
        h += "Connection: keep-alive\r\n";
    }
    return h;
}

// --max-requests announces the end of the connection on its last response, as servers
// with a keep-alive request limit do.
bool persistent(const Exchange& ex) {
    const std::uint64_t max = settings().max_requests;
    return ex.req.keep_alive && !ex.params.close && (max == 0 || ex.seq < max);
}

After after_response(const Exchange& ex, bool keep_alive) {
    if (!ex.conn.ok()) {
        return After::Close;
    }
    return keep_alive && !ex.params.close_silent ? After::KeepAlive : After::Close;
}

// A complete response with a body held in memory.
After respond(Exchange& ex, int status, std::string_view content_type, std::string_view body,
              bool keep_alive, std::string_view more_fields = {}) {
    std::string h = begin_head(ex, status, keep_alive);
    h += more_fields;
    if (status != 204 && status != 304) {
        h += "Content-Type: ";
        h += content_type;
        h += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    }
    h += "\r\n";
    ex.conn.append(h);
    if (ex.req.method != "HEAD" && status != 204 && status != 304) {
        ex.conn.append(body);
    }
    ex.conn.flush();
    return after_response(ex, keep_alive);
}

After respond_error(Exchange& ex, int status, std::string_view reason) {
    std::string body = "{\"error\":";
    append_json_string(body, reason);
    body += "}\n";
    return respond(ex, status, "application/json", body, false);
}

// RFC 9110 §10.1.1: 100 Continue goes out only when the client asked for it and the body is
// about to be read; never to HTTP/1.0 clients (interpret_fields ignores their Expect).
void send_continue_if_expected(Exchange& ex) {
    if (ex.req.expect_continue && !ex.continue_sent && ex.req.framing != Framing::None) {
        ex.continue_sent = true;
        ex.conn.append("HTTP/1.1 100 Continue\r\n\r\n");
        ex.conn.flush();
    }
}

// Reads and discards the request body, applying read_delay_ms between pieces.
bool drain_body(Exchange& ex, BodyReader& body) {
    send_continue_if_expected(ex);
    std::string_view piece;
    while (body.next(piece)) {
        if (piece.empty()) {
            return true;
        }
        sleep_ms(ex.params.read_delay_ms);
    }
    log_error(ex.conn, ex.seq, body.error(), &ex.req, {});
    return false;
}

// Reads the whole body and logs the request; on a framing error answers 400 and closes.
std::optional<After> read_and_log(Exchange& ex, BodyReader& body) {
    if (!drain_body(ex, body)) {
        return respond_error(ex, 400, body.error());
    }
    log_request(ex.conn, ex.seq, ex.req, body.total(), body.trailers());
    return std::nullopt;
}

// The generated response body: `bytes=N` of 'a'..'z' repeating, or "NAME\n".
class BodySource {
 public:
    explicit BodySource(const Params& p)
        : patterned_(p.bytes.has_value()),
          size_(p.bytes.value_or(settings().name.size() + 1)),
          text_(settings().name + "\n") {}

    std::uint64_t size() const { return size_; }

    // Up to max bytes starting at offset.
    std::string_view piece(std::uint64_t offset, std::size_t max) const {
        auto n = static_cast<std::size_t>(std::min<std::uint64_t>(max, size_ - offset));
        if (!patterned_) {
            return std::string_view(text_).substr(static_cast<std::size_t>(offset), n);
        }
        return std::string_view(pattern().data() + offset % 26, std::min(n, kIoPiece));
    }

 private:
    static const std::string& pattern() {
        static const std::string p = [] {
            std::string s(kIoPiece + 26, 'a');
            for (std::size_t i = 0; i < s.size(); ++i) {
                s[i] = static_cast<char>('a' + i % 26);
            }
            return s;
        }();
        return p;
    }

    bool patterned_;
    std::uint64_t size_;
    std::string text_;
};

std::string chunk_size_line(std::uint64_t n) {
    char buf[24];
    int len = std::snprintf(buf, sizeof buf, "%llx\r\n", static_cast<unsigned long long>(n));
    return std::string(buf, static_cast<std::size_t>(len));
}

// The default handler: every parameter applies.
After handle_default(Exchange& ex, bool& reset_next) {
    BodyReader body(ex.conn, ex.req);
    if (auto a = read_and_log(ex, body)) {
        return *a;
    }
    const Params& p = ex.params;
    if (p.reset == Reset::Headers) {
        return After::Reset;
    }
    if (p.hang) {
        return After::Hang;
    }
    reset_next = p.reset == Reset::Next;
    sleep_ms(p.delay_ms);

    const BodySource source(p);
    const bool bodiless_status = p.status == 204 || p.status == 304;
    // RFC 9112 §7: HTTP/1.0 clients cannot read chunked, so they get a close-delimited body.
    const bool close_delimited =
        !bodiless_status && (p.no_length || (p.chunked && ex.req.minor == 0));
    const bool chunked = !bodiless_status && p.chunked && !close_delimited;
    const bool keep_alive = persistent(ex) && !close_delimited;

    std::string h = begin_head(ex, p.status, keep_alive);
    if (!bodiless_status) {
        h +=
            p.bytes ? "Content-Type: application/octet-stream\r\n" : "Content-Type: text/plain\r\n";
        if (chunked) {
            h += p.trailer ? "Transfer-Encoding: chunked\r\nTrailer: X-Trailer\r\n"
                           : "Transfer-Encoding: chunked\r\n";
        } else if (!close_delimited) {
            h += "Content-Length: " + std::to_string(source.size()) + "\r\n";
        }
    }
    h += "\r\n";
    ex.conn.append(h);
    if (ex.req.method == "HEAD" || bodiless_status) {
        ex.conn.flush();
        return p.reset == Reset::Body ? After::Reset : after_response(ex, keep_alive);
    }
    if (p.body_delay_ms > 0) {
        ex.conn.flush();
        sleep_ms(p.body_delay_ms);
    }

    // reset=body stops half-way through the body and aborts.
    const std::uint64_t limit = p.reset == Reset::Body ? source.size() / 2 : source.size();
    const std::uint64_t piece_size = p.chunk > 0 ? p.chunk : kIoPiece;
    std::uint64_t offset = 0;
    while (offset < limit && ex.conn.ok()) {
        const std::uint64_t n = std::min(piece_size, limit - offset);
        if (chunked) {
            ex.conn.append(chunk_size_line(n));
        }
        for (std::uint64_t end = offset + n; offset < end;) {
            auto part = source.piece(
                offset, static_cast<std::size_t>(std::min(end - offset, std::uint64_t{kIoPiece})));
            ex.conn.append(part);
            offset += part.size();
        }
        if (chunked) {
            ex.conn.append("\r\n");
        }
        if (p.chunk_delay_ms > 0 && offset < limit) {
            ex.conn.flush();
            sleep_ms(p.chunk_delay_ms);
        }
    }
    if (p.reset == Reset::Body) {
        ex.conn.flush();
        return After::Reset;
    }
    if (chunked) {
        std::string last = p.trailer ? "0\r\nX-Trailer: done\r\n" : "0\r\n";
        for (const Field& t : p.trailer_fields) {
            last += t.name + ": " + t.value + "\r\n";
        }
        ex.conn.append(last + "\r\n");
    }
    ex.conn.flush();
    return after_response(ex, keep_alive);
}

std::string headers_json(const Request& r, std::uint64_t body_bytes) {
    // Field names lower-cased, repeated fields combined with ", " (RFC 9110 §5.3), in order of
    // first appearance; header_list keeps the exact fields as received.
    std::vector<Field> combined;
    for (const auto& f : r.fields) {
        auto name = lowercase(f.name);
        auto it = std::find_if(combined.begin(), combined.end(),
                               [&](const Field& c) { return c.name == name; });
        if (it == combined.end()) {
            combined.push_back({std::move(name), f.value});
        } else {
            it->value += ", " + f.value;
        }
    }
    std::string out = "{\"method\":";
    append_json_string(out, r.method);
    out += ",\"target\":";
    append_json_string(out, r.target);
    out += r.minor == 1 ? ",\"version\":\"HTTP/1.1\",\"headers\":{"
                        : ",\"version\":\"HTTP/1.0\",\"headers\":{";
    for (std::size_t i = 0; i < combined.size(); ++i) {
        if (i > 0) {
            out.push_back(',');
        }
        append_json_string(out, combined[i].name);
        out.push_back(':');
        append_json_string(out, combined[i].value);
    }
    out += "},\"header_list\":";
    append_fields_json(out, r.fields);
    out += ",\"body_bytes\":" + std::to_string(body_bytes) + "}\n";
    return out;
}

// /echo: the request body streamed back with the same framing, 64 KiB at most per piece.
After handle_echo(Exchange& ex) {
    BodyReader body(ex.conn, ex.req);
    if (ex.params.echo_headers) {
        if (auto a = read_and_log(ex, body)) {
            return *a;
        }
        sleep_ms(ex.params.delay_ms);
        return respond(ex, 200, "application/json", headers_json(ex.req, body.total()),
                       persistent(ex));
    }
    sleep_ms(ex.params.delay_ms);
    send_continue_if_expected(ex);
    const bool keep_alive = persistent(ex);
    const bool chunked = ex.req.framing == Framing::Chunked;
    const bool send_body = ex.req.method != "HEAD";
    std::string h = begin_head(ex, 200, keep_alive);
    h += "X-Echo-Method: " + ex.req.method + "\r\nX-Echo-Target: " + ex.req.target + "\r\n";
    const Field* type = ex.req.find("content-type");
    h += "Content-Type: " + (type != nullptr ? type->value : "application/octet-stream") + "\r\n";
    h += chunked ? "Transfer-Encoding: chunked\r\n"
                 : "Content-Length: " + std::to_string(ex.req.content_length) + "\r\n";
    h += "\r\n";
    ex.conn.append(h);
    if (ex.req.framing == Framing::None) {
        log_request(ex.conn, ex.seq, ex.req, 0, body.trailers());
        ex.conn.flush();
        return after_response(ex, keep_alive);
    }
    ex.conn.flush();
    std::string_view piece;
    while (ex.conn.ok() && body.next(piece) && !piece.empty()) {
        if (send_body && chunked) {
            ex.conn.append(chunk_size_line(piece.size()));
            ex.conn.append(piece);
            ex.conn.append("\r\n");
        } else if (send_body) {
            ex.conn.append(piece);
        }
        if (body.done()) {
            // The log line must exist before the client can see the complete response.
            log_request(ex.conn, ex.seq, ex.req, body.total(), body.trailers());
        }
        ex.conn.flush();
        sleep_ms(ex.params.read_delay_ms);
    }
    if (!body.error().empty()) {
        // The head is already out: all that is left is to cut the response short.
        log_error(ex.conn, ex.seq, body.error(), &ex.req, {});
        return After::Close;
    }
    if (chunked) {
        log_request(ex.conn, ex.seq, ex.req, body.total(), body.trailers());
        if (send_body) {
            std::string last = "0\r\n";
            for (const auto& t : body.trailers()) {
                last += t.name + ": " + t.value + "\r\n";
            }
            last += "\r\n";
            ex.conn.append(last);
        }
    }
    ex.conn.flush();
    return after_response(ex, keep_alive);
}

// /sink: the body is counted, not kept.
After handle_sink(Exchange& ex) {
    BodyReader body(ex.conn, ex.req);
    if (auto a = read_and_log(ex, body)) {
        return *a;
    }
    sleep_ms(ex.params.delay_ms);
    return respond(ex, ex.params.status, "application/json",
                   "{\"bytes\":" + std::to_string(body.total()) + "}\n", persistent(ex));
}

// /sse: count events "data: N\n\n" (N from 1), one chunk each, chunk_delay_ms apart.
After handle_sse(Exchange& ex) {
    BodyReader body(ex.conn, ex.req);
    if (auto a = read_and_log(ex, body)) {
        return *a;
    }
    sleep_ms(ex.params.delay_ms);
    const bool chunked = ex.req.minor == 1;
    const bool keep_alive = persistent(ex) && chunked;
    std::string h = begin_head(ex, 200, keep_alive);
    h += "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
    h += chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n";
    ex.conn.append(h);
    ex.conn.flush();
    if (ex.req.method == "HEAD") {
        return after_response(ex, keep_alive);
    }
    for (std::uint64_t i = 1; i <= ex.params.count && ex.conn.ok(); ++i) {
        const std::string event = "data: " + std::to_string(i) + "\n\n";
        if (chunked) {
            ex.conn.append(chunk_size_line(event.size()));
        }
        ex.conn.append(event);
        if (chunked) {
            ex.conn.append("\r\n");
        }
        ex.conn.flush();
        if (i < ex.params.count) {
            sleep_ms(ex.params.chunk_delay_ms);
        }
    }
    if (chunked) {
        ex.conn.append("0\r\n\r\n");
    }
    ex.conn.flush();
    return after_response(ex, keep_alive);
}

// ---------------------------------------------------------------------------------------------
// /ws: RFC 6455 echo server.

bool read_exact(Connection& c, char* out, std::size_t n) {
    while (n > 0) {
        if (c.buffered().empty() && !c.fill()) {
            return false;
        }
        auto take = std::min(n, c.buffered().size());
        std::memcpy(out, c.buffered().data(), take);
        c.consume(take);
        out += take;
        n -= take;
    }
    return true;
}

std::string ws_frame_header(unsigned char first, std::uint64_t length) {
    std::string h(1, static_cast<char>(first));
    if (length < 126) {
        h.push_back(static_cast<char>(length));
    } else if (length <= 0xffff) {
        h.push_back(static_cast<char>(126));
        h.push_back(static_cast<char>(length >> 8));
        h.push_back(static_cast<char>(length & 0xff));
    } else {
        h.push_back(static_cast<char>(127));
        for (int i = 7; i >= 0; --i) {
            h.push_back(static_cast<char>((length >> (i * 8)) & 0xff));
        }
    }
    return h;
}

// Sends a close frame with a status code (RFC 6455 §5.5.1, §7.4).
void ws_close(Connection& c, std::uint16_t code) {
    std::string frame = ws_frame_header(0x88, 2);
    frame.push_back(static_cast<char>(code >> 8));
    frame.push_back(static_cast<char>(code & 0xff));
    c.append(frame);
    c.flush();
}

// Echoes data frames as they arrive (fragmentation preserved: each frame goes back with its
// own FIN bit and opcode), answers ping with pong, and ends on close.
After websocket_loop(Connection& c) {
    while (c.ok()) {
        unsigned char hdr[2];
        if (!read_exact(c, reinterpret_cast<char*>(hdr), 2)) {
            return After::Close;
        }
        const unsigned char opcode = hdr[0] & 0x0f;
        std::uint64_t length = hdr[1] & 0x7f;
        const bool control = (opcode & 0x08) != 0;
        // RFC 6455 §5.2: no extension negotiated, so RSV bits must be 0; §5.3: client frames
        // are masked; §5.5: control frames are short and unfragmented.
        if ((hdr[0] & 0x70) != 0 || (hdr[1] & 0x80) == 0 || (opcode > 2 && opcode < 8) ||
            opcode > 10 || (control && (length > 125 || (hdr[0] & 0x80) == 0))) {
            ws_close(c, 1002);
            return After::Close;
        }
        if (length >= 126) {
            unsigned char ext[8];
            const std::size_t n = length == 126 ? 2 : 8;
            if (!read_exact(c, reinterpret_cast<char*>(ext), n)) {
                return After::Close;
            }
            length = 0;
            for (std::size_t i = 0; i < n; ++i) {
                length = (length << 8) | ext[i];
            }
            if (length >> 63 != 0) {
                ws_close(c, 1002);
                return After::Close;
            }
        }
        unsigned char mask[4];
        if (!read_exact(c, reinterpret_cast<char*>(mask), 4)) {
            return After::Close;
        }
        if (opcode == 0x8 && length == 1) {
            ws_close(c, 1002);
            return After::Close;
        }
        // Control frames answer with a different opcode; data frames keep FIN and opcode.
        const bool forward = !control || opcode == 0x9 || opcode == 0x8;
        const unsigned char first = opcode == 0x9   ? 0x8a
                                    : opcode == 0x8 ? 0x88
                                                    : static_cast<unsigned char>(hdr[0]);
        const std::uint64_t out_length =
            opcode == 0x8 ? std::min<std::uint64_t>(length, 2) : length;
        if (forward) {
            c.append(ws_frame_header(first, out_length));
        }
        std::string piece;
        for (std::uint64_t done = 0; done < length;) {
            if (c.buffered().empty() && !c.fill()) {
                return After::Close;
            }
            auto n = static_cast<std::size_t>(
                std::min<std::uint64_t>(c.buffered().size(), length - done));
            piece.assign(c.buffered().substr(0, n));
            c.consume(n);
            for (std::size_t i = 0; i < n; ++i) {
                piece[i] = static_cast<char>(piece[i] ^ mask[(done + i) % 4]);
            }
            if (forward) {
                // A close reply carries only the status code, not the peer's reason text.
                auto keep = done >= out_length ? 0 : std::min<std::uint64_t>(n, out_length - done);
                c.append(std::string_view(piece).substr(0, static_cast<std::size_t>(keep)));
            }
            done += n;
        }
        c.flush();
        if (opcode == 0x8) {
            return After::Close;
        }
    }
    return After::Close;
}

After handle_websocket(Exchange& ex) {
    BodyReader body(ex.conn, ex.req);
    if (auto a = read_and_log(ex, body)) {
        return *a;
    }
    const Request& r = ex.req;
    const Field* key = r.find("sec-websocket-key");
    const Field* version = r.find("sec-websocket-version");
    // RFC 6455 §4.2.1: the opening handshake requirements, checked in order.
    if (r.method != "GET" || r.minor != 1 || !r.has_token("upgrade", "websocket") ||
        !r.has_token("connection", "upgrade") || key == nullptr ||
        base64_decoded_size(key->value) != std::optional<std::size_t>(16)) {
        return respond_error(ex, 400, "invalid websocket handshake");
    }
    if (version == nullptr || version->value != "13") {
        // RFC 6455 §4.4: tell the client which version is supported.
        std::string body_text = "{\"error\":\"unsupported websocket version\"}\n";
        return respond(ex, 426, "application/json", body_text, false,
                       "Sec-WebSocket-Version: 13\r\n");
    }
    std::string h = "HTTP/1.1 101 Switching Protocols\r\nX-Backend: " + settings().name +
                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
                    websocket_accept(key->value) + "\r\n\r\n";
    ex.conn.append(h);
    ex.conn.flush();
    return websocket_loop(ex.conn);
}

// ---------------------------------------------------------------------------------------------
// Dispatch and the per-connection loop.

After handle(Exchange& ex, bool& reset_next) {
    std::string err;
    if (!parse_params(ex.req.query, ex.params, err)) {
        log_error(ex.conn, ex.seq, err, &ex.req, {});
        return respond_error(ex, 400, err);
    }
    if (ex.req.expect_unknown || (ex.req.expect_continue && ex.params.expect_417)) {
        // RFC 9110 §10.1.1: 417 without reading the body, which is why the connection closes.
        log_request(ex.conn, ex.seq, ex.req, 0, {});
        return respond_error(ex, 417, "expectation failed");
    }
    const std::string& path = ex.req.path;
    if (path == "/echo") {
        return handle_echo(ex);
    }
    if (path == "/sink") {
        return handle_sink(ex);
    }
    if (path == "/sse") {
        return handle_sse(ex);
    }
    if (path == "/ws") {
        return handle_websocket(ex);
    }
    if (path == "/health" || path == "/__health/fail" || path == "/__health/ok" ||
        path == "/__stats") {
        BodyReader body(ex.conn, ex.req);
        if (auto a = read_and_log(ex, body)) {
            return *a;
        }
        if (path == "/__stats") {
            auto& k = counters();
            std::string json =
                "{\"connections_accepted\":" + std::to_string(k.connections_accepted.load()) +
                ",\"requests\":" + std::to_string(k.requests.load()) +
                ",\"active_connections\":" + std::to_string(k.active_connections.load()) + "}\n";
            return respond(ex, 200, "application/json", json, persistent(ex));
        }
        if (path != "/health") {
            counters().healthy = path == "/__health/ok";
            return respond(ex, 200, "text/plain", "ok", persistent(ex));
        }
        const bool healthy = counters().healthy.load();
        return respond(ex, healthy ? 200 : 503, "text/plain", healthy ? "ok" : "unhealthy",
                       persistent(ex));
    }
    return handle_default(ex, reset_next);
}

void serve(int fd, std::uint64_t serial) {
    Connection c(fd, serial);
    std::uint64_t seq = 0;
    bool reset_next = false;
    while (true) {
        if (settings().max_requests > 0 && seq >= settings().max_requests) {
            c.close_gracefully();
            return;
        }
        Request req;
        HeadError err;
        const HeadResult result = read_head(c, req, err);
        if (result == HeadResult::Closed) {
            return;
        }
        ++seq;
        if (result == HeadResult::Error) {
            log_error(c, seq, err.reason, &req, err.raw);
            Exchange ex{.conn = c, .req = req, .params = {}, .seq = seq};
            respond_error(ex, err.status, err.reason);
            c.close_gracefully();
            return;
        }
        counters().requests.fetch_add(1);
        if (reset_next) {
            // reset=next on the previous request: this request was received, now it dies
            // before any response byte (the keep-alive race of RFC 9112 §9.3.1, on demand).
            log_request(c, seq, req, 0, {});
            c.reset();
            return;
        }
        Exchange ex{.conn = c, .req = req, .params = {}, .seq = seq};
        switch (handle(ex, reset_next)) {
            case After::KeepAlive:
                break;
            case After::Close:
                c.close_gracefully();
                return;
            case After::Reset:
                c.flush();
                c.reset();
                return;
            case After::Hang:
                c.wait_for_peer_close();
                return;
        }
    }
}

void* connection_thread(void* arg) {
    auto* fds = static_cast<std::pair<int, std::uint64_t>*>(arg);
    const auto [fd, serial] = *fds;
    delete fds;
    serve(fd, serial);
    counters().active_connections.fetch_sub(1);
    return nullptr;
}

void accept_loop(int listen_fd) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, kThreadStack);
    while (true) {
        int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED) {
                // EMFILE, ENOBUFS, ...: back off instead of spinning.
                sleep_ms(10);
            }
            continue;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        const std::uint64_t serial = counters().connections_accepted.fetch_add(1) + 1;
        counters().active_connections.fetch_add(1);
        auto* arg = new std::pair<int, std::uint64_t>(fd, serial);
        pthread_t thread;
        if (pthread_create(&thread, &attr, connection_thread, arg) != 0) {
            delete arg;
            ::close(fd);
            counters().active_connections.fetch_sub(1);
            sleep_ms(10);
        }
    }
}

void* accept_thread(void* arg) {
    accept_loop(static_cast<int>(reinterpret_cast<std::intptr_t>(arg)));
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Command line and startup.

int usage(const char* argv0, int code) {
    std::fprintf(code == 0 ? stdout : stderr,
                 "usage: %s [--listen ADDR:PORT] [--name NAME] [--log FILE]\n"
                 "          [--idle-timeout-ms N] [--max-requests N] [--self-test]\n"
                 "  --listen          127.0.0.1:0 (default), [::1]:0, 0.0.0.0:8080, ...\n"
                 "  --name            sent as X-Backend on every response (default: backend)\n"
                 "  --log             append one JSON line per received request\n"
                 "  --idle-timeout-ms close keep-alive connections idle this long (0: never)\n"
                 "  --max-requests    close a connection after this many requests (0: never)\n"
                 "  --self-test       check SHA-1/base64 against known vectors and exit\n"
                 "Prints \"listening on PORT\" once ready. See tests/backend/README.md.\n",
                 argv0);
    return code;
}

int self_test() {
    auto hex = [](const std::array<unsigned char, 20>& d) {
        std::string s;
        char b[3];
        for (auto x : d) {
            std::snprintf(b, sizeof b, "%02x", x);
            s += b;
        }
        return s;
    };
    struct Check {
        std::string got;
        std::string_view want;
    };
    const Check checks[] = {
        {hex(sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {hex(sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {hex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
        {hex(sha1(std::string(1000000, 'a'))), "34aa973cd4c4daa4f61eeb2bdbad27316534016f"},
        // RFC 6455 §1.3 example.
        {websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
        {base64_encode(reinterpret_cast<const unsigned char*>("fo"), 2), "Zm8="},
        {std::to_string(base64_decoded_size("dGhlIHNhbXBsZSBub25jZQ==").value_or(0)), "16"},
        {std::to_string(base64_decoded_size("dGhl=HNh").has_value()), "0"},
    };
    int failures = 0;
    for (const auto& c : checks) {
        if (c.got != c.want) {
            std::fprintf(stderr, "self-test: got %s, want %.*s\n", c.got.c_str(),
                         static_cast<int>(c.want.size()), c.want.data());
            ++failures;
        }
    }
    std::printf("self-test: %d failure(s)\n", failures);
    return failures == 0 ? 0 : 1;
}

// Parses "1.2.3.4:port" or "[v6]:port".
bool parse_listen(std::string_view s, sockaddr_storage& addr, socklen_t& len) {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) {
        return false;
    }
    auto host = std::string(s.substr(0, colon));
    auto port = parse_decimal(s.substr(colon + 1), 65535);
    if (!port) {
        return false;
    }
    addr = {};
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(static_cast<std::uint16_t>(*port));
        len = sizeof(sockaddr_in6);
        return inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), &a6->sin6_addr) == 1;
    }
    auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<std::uint16_t>(*port));
    len = sizeof(sockaddr_in);
    return inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1;
}

int run(int argc, char** argv) {
    std::string listen = "127.0.0.1:0";
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
        if (arg == "--help" || arg == "-h") {
            return usage(argv[0], 0);
        }
        if (arg == "--self-test") {
            return self_test();
        }
        const char* v = value();
        if (v == nullptr) {
            return usage(argv[0], 2);
        }
        if (arg == "--listen") {
            listen = v;
        } else if (arg == "--name") {
            settings().name = v;
            if (!is_field_value(settings().name)) {
                std::fprintf(stderr, "--name: not a valid header value\n");
                return 2;
            }
        } else if (arg == "--log") {
            settings().log_fd = ::open(v, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (settings().log_fd < 0) {
                std::fprintf(stderr, "--log %s: %s\n", v, std::strerror(errno));
                return 1;
            }
        } else if (arg == "--idle-timeout-ms") {
            auto n = parse_decimal(v, 86'400'000);
            if (!n) {
                return usage(argv[0], 2);
            }
            settings().idle_timeout_ms = static_cast<int>(*n);
        } else if (arg == "--max-requests") {
            auto n = parse_decimal(v, UINT64_MAX >> 1);
            if (!n) {
                return usage(argv[0], 2);
            }
            settings().max_requests = *n;
        } else {
            return usage(argv[0], 2);
        }
    }

    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    if (!parse_listen(listen, addr, addr_len)) {
        std::fprintf(stderr, "--listen %s: want IPv4:PORT or [IPv6]:PORT\n", listen.c_str());
        return 2;
    }
    int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 ||
        ::bind(fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 || ::listen(fd, 4096) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) {
        std::fprintf(stderr, "listen on %s: %s\n", listen.c_str(), std::strerror(errno));
        return 1;
    }
    const int port =
        ntohs(addr.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port
                                         : reinterpret_cast<sockaddr_in*>(&addr)->sin_port);

    // SIGTERM/SIGINT are taken synchronously by sigwait() below: blocked here, before any
    // thread exists, so every thread inherits the mask and none is interrupted by them.
    ::signal(SIGPIPE, SIG_IGN);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    pthread_t acceptor;
    if (pthread_create(&acceptor, nullptr, accept_thread,
                       reinterpret_cast<void*>(static_cast<std::intptr_t>(fd))) != 0) {
        std::fprintf(stderr, "cannot start the accept thread\n");
        return 1;
    }
    std::printf("listening on %d\n", port);
    std::fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    // Connection threads may be blocked anywhere; log lines are already written with one
    // write(2) each, so there is nothing to flush and the process can end at once.
    std::_Exit(0);
}

}  // namespace
}  // namespace blitz::test_backend

int main(int argc, char** argv) { return blitz::test_backend::run(argc, argv); }

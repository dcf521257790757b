#include "harness.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <catch2/interfaces/catch_interfaces_reporter.hpp>
#include <catch2/reporters/catch_reporter_event_listener.hpp>
#include <catch2/reporters/catch_reporter_registrars.hpp>

extern char** environ;

namespace blitz::itest {

namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(),
                      [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

ExitStatus decode_wait_status(int st) {
    if (WIFEXITED(st)) {
        return {ExitStatus::Kind::Exited, WEXITSTATUS(st)};
    }
    return {ExitStatus::Kind::Signaled, WTERMSIG(st)};
}

/// How long a server may take to announce its listeners, and to stop.
constexpr Millis kStartTimeout{10'000};
constexpr Millis kStopTimeout{3'000};

}  // namespace

int Deadline::remaining_ms() const {
    auto left = std::chrono::ceil<Millis>(at_ - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(left);
}

std::string env_or(const char* name, std::string_view fallback) {
    const char* v = std::getenv(name);
    return (v != nullptr && *v != '\0') ? std::string(v) : std::string(fallback);
}

std::string test_backend() { return env_or("BLITZ_TEST_BACKEND", "auto"); }
std::string blitzd_path() { return env_or("BLITZD", ""); }
std::string hello_example_path() { return env_or("HELLO_EXAMPLE", ""); }

// ---------------------------------------------------------------------------------------------
// TempDir

TempDir::TempDir() {
    std::string tmpl = env_or("TMPDIR", "/tmp") + "/blitz-itest-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
        throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
    }
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(std::string_view name, std::string_view content) const {
    std::string file = path_ + "/" + std::string(name);
    std::ofstream f(file, std::ios::binary | std::ios::trunc);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!f) {
        throw std::runtime_error("cannot write " + file);
    }
    return file;
}

// ---------------------------------------------------------------------------------------------
// Process

std::string ExitStatus::describe() const {
    switch (kind) {
        case Kind::Exited:
            return "exited with status " + std::to_string(value);
        case Kind::Signaled:
            return "killed by signal " + std::to_string(value) + " (" + strsignal(value) + ")";
        case Kind::StillRunning:
            break;
    }
    return "still running";
}

Process::Process(const std::vector<std::string>& argv) {
    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        throw std::runtime_error("pipe2 failed");
    }
    if (::pipe2(err, O_CLOEXEC) != 0) {
        ::close(out[0]);
        ::close(out[1]);
        throw std::runtime_error("pipe2 failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    int rc = ::posix_spawnp(&pid_, argv.at(0).c_str(), &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(out[1]);
    ::close(err[1]);
    if (rc != 0) {
        ::close(out[0]);
        ::close(err[0]);
        throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    }
    out_fd_ = out[0];
    err_fd_ = err[0];
    pidfd_ = pidfd_open(pid_);
    if (pidfd_ < 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
        ::close(out_fd_);
        ::close(err_fd_);
        throw std::runtime_error("pidfd_open failed: " + std::string(std::strerror(errno)));
    }
    pump_ = std::thread([this] { pump(); });
}

Process::~Process() {
    if (running()) {
        signal(SIGKILL);
    }
    pump_.join();
    ::close(pidfd_);
    ::close(out_fd_);
    ::close(err_fd_);
}

void Process::pump() {
    bool out_open = true;
    bool err_open = true;
    bool exited = false;
    char chunk[16 * 1024];
    for (;;) {
        pollfd fds[3];
        int* fd_of[3] = {nullptr, nullptr, nullptr};
        nfds_t n = 0;
        if (out_open) {
            fds[n] = {out_fd_, POLLIN, 0};
            fd_of[n++] = &out_fd_;
        }
        if (err_open) {
            fds[n] = {err_fd_, POLLIN, 0};
            fd_of[n++] = &err_fd_;
        }
        if (!exited) {
            fds[n] = {pidfd_, POLLIN, 0};
            fd_of[n++] = &pidfd_;
        }
        if (n == 0) {
            break;
        }
        // Once the child is gone, a pipe still open belongs to a grandchild: read what is
        // there, but do not wait for it for long.
        int rc = ::poll(fds, n, exited ? 200 : -1);
        if (rc < 0 && errno == EINTR) {
            continue;
        }
        if (rc <= 0) {
            break;
        }
        for (nfds_t i = 0; i < n; ++i) {
            if (fds[i].revents == 0) {
                continue;
            }
            if (fd_of[i] == &pidfd_) {
                int st = 0;
                if (::waitpid(pid_, &st, WNOHANG) == pid_) {
                    std::lock_guard lock(mutex_);
                    status_ = decode_wait_status(st);
                    exited = true;
                }
                continue;
            }
            ssize_t got = ::read(*fd_of[i], chunk, sizeof chunk);
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                (fd_of[i] == &out_fd_ ? out_open : err_open) = false;
                continue;
            }
            std::lock_guard lock(mutex_);
            (fd_of[i] == &out_fd_ ? out_ : err_).append(chunk, static_cast<std::size_t>(got));
            cv_.notify_all();
        }
    }
    if (!exited) {
        int st = 0;
        if (::waitpid(pid_, &st, 0) == pid_) {
            std::lock_guard lock(mutex_);
            status_ = decode_wait_status(st);
        }
    }
    std::lock_guard lock(mutex_);
    done_ = true;
    cv_.notify_all();
}

bool Process::running() const {
    std::lock_guard lock(mutex_);
    return !status_.has_value();
}

bool Process::wait_for_stderr(const std::function<bool(const std::string&)>& pred,
                              Millis timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return pred(err_) || done_; });
    return pred(err_);
}

bool Process::wait_for_stdout(const std::function<bool(const std::string&)>& pred,
                              Millis timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return pred(out_) || done_; });
    return pred(out_);
}

ExitStatus Process::wait(Millis timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return done_; });
    return status_.value_or(ExitStatus{});
}

ExitStatus Process::stop(int sig, Millis timeout) {
    if (running()) {
        signal(sig);
    }
    return wait(timeout);
}

void Process::signal(int sig) const {
    ::syscall(SYS_pidfd_send_signal, pidfd_, sig, nullptr, 0);
}

std::string Process::out() const {
    std::lock_guard lock(mutex_);
    return out_;
}

std::string Process::err() const {
    std::lock_guard lock(mutex_);
    return err_;
}

CommandResult run_command(const std::vector<std::string>& argv, Millis timeout) {
    Process p(argv);
    ExitStatus status = p.wait(timeout);
    if (status.kind == ExitStatus::Kind::StillRunning) {
        p.stop(SIGKILL, kStopTimeout);
    }
    return {status, p.out(), p.err()};
}

CommandResult curl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"curl", "-sS", "--max-time", "5"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv);
}

// ---------------------------------------------------------------------------------------------
// Responses

std::optional<std::string> Response::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (iequal(n, name)) {
            return v;
        }
    }
    return std::nullopt;
}

std::size_t Response::header_count(std::string_view name) const {
    return static_cast<std::size_t>(std::count_if(
        headers.begin(), headers.end(), [&](const auto& h) { return iequal(h.first, name); }));
}

bool Response::connection_has(std::string_view token) const {
    for (const auto& [n, v] : headers) {
        if (!iequal(n, "connection")) {
            continue;
        }
        std::string_view rest = v;
        while (!rest.empty()) {
            auto comma = rest.find(',');
            if (iequal(trim(rest.substr(0, comma)), token)) {
                return true;
            }
            rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
        }
    }
    return false;
}

std::string Response::head_text() const {
    std::string s = version + " " + std::to_string(status) + " " + reason + "\n";
    for (const auto& [n, v] : headers) {
        s += n + ": " + v + "\n";
    }
    return s;
}

namespace {

/// Decodes a chunked body at the start of `in`; Done sets `used` to the bytes it spanned.
ParseState decode_chunked(std::string_view in, std::string& body, std::size_t& used) {
    std::size_t pos = 0;
    for (;;) {
        auto eol = in.find("\r\n", pos);
        if (eol == std::string_view::npos) {
            return ParseState::Incomplete;
        }
        std::string_view size_line = in.substr(pos, eol - pos);
        size_line = size_line.substr(0, size_line.find(';'));
        std::size_t size = 0;
        if (size_line.empty()) {
            return ParseState::Error;
        }
        for (char c : size_line) {
            int d = (c >= '0' && c <= '9')   ? c - '0'
                    : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                    : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                             : -1;
            if (d < 0) {
                return ParseState::Error;
            }
            size = size * 16 + static_cast<std::size_t>(d);
        }
        pos = eol + 2;
        if (size == 0) {
            // Trailer section, ending with an empty line.
            for (;;) {
                auto end = in.find("\r\n", pos);
                if (end == std::string_view::npos) {
                    return ParseState::Incomplete;
                }
                bool empty = end == pos;
                pos = end + 2;
                if (empty) {
                    used = pos;
                    return ParseState::Done;
                }
            }
        }
        if (in.size() < pos + size + 2) {
            return ParseState::Incomplete;
        }
        body.append(in.substr(pos, size));
        pos += size;
        if (in.substr(pos, 2) != "\r\n") {
            return ParseState::Error;
        }
        pos += 2;
    }
}

}  // namespace

ParseState parse_response(std::string_view buf, bool head_request, bool at_eof, Response& out,
                          std::size_t& consumed) {
    auto head_end = buf.find("\r\n\r\n");
    if (head_end == std::string_view::npos) {
        return (at_eof && !buf.empty()) ? ParseState::Error : ParseState::Incomplete;
    }
    Response r;
    std::string_view head = buf.substr(0, head_end);
    auto line_end = head.find("\r\n");
    std::string_view status_line = head.substr(0, line_end);
    auto sp1 = status_line.find(' ');
    if (sp1 == std::string_view::npos || status_line.substr(0, 5) != "HTTP/" ||
        status_line.size() < sp1 + 4) {
        return ParseState::Error;
    }
    r.version = std::string(status_line.substr(0, sp1));
    std::string_view code = status_line.substr(sp1 + 1, 3);
    if (!std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return ParseState::Error;
    }
    r.status = std::stoi(std::string(code));
    if (status_line.size() > sp1 + 5) {
        r.reason = std::string(status_line.substr(sp1 + 5));
    }
    std::string_view rest =
        line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 2);
    while (!rest.empty()) {
        auto eol = rest.find("\r\n");
        std::string_view line = rest.substr(0, eol);
        rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
        auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) {
            return ParseState::Error;
        }
        r.headers.emplace_back(std::string(line.substr(0, colon)),
                               std::string(trim(line.substr(colon + 1))));
    }
    std::size_t body_start = head_end + 4;
    std::string_view after = buf.substr(body_start);
    bool no_body = head_request || (r.status >= 100 && r.status < 200) || r.status == 204 ||
                   r.status == 304;
    if (no_body) {
        consumed = body_start;
    } else if (auto te = r.header("transfer-encoding"); te && iequal(*te, "chunked")) {
        std::size_t used = 0;
        ParseState st = decode_chunked(after, r.body, used);
        if (st != ParseState::Done) {
            return (st == ParseState::Incomplete && at_eof) ? ParseState::Error : st;
        }
        consumed = body_start + used;
    } else if (auto cl = r.header("content-length")) {
        if (cl->empty() || !std::all_of(cl->begin(), cl->end(),
                                        [](char c) { return c >= '0' && c <= '9'; })) {
            return ParseState::Error;
        }
        std::size_t len = std::stoull(*cl);
        if (after.size() < len) {
            return at_eof ? ParseState::Error : ParseState::Incomplete;
        }
        r.body = std::string(after.substr(0, len));
        consumed = body_start + len;
    } else {
        // RFC 9112 §6.3: without framing, the body runs to the close.
        if (!at_eof) {
            return ParseState::Incomplete;
        }
        r.body = std::string(after);
        consumed = buf.size();
    }
    out = std::move(r);
    return ParseState::Done;
}

std::vector<Response> parse_all_responses(std::string_view text, bool head_request) {
    std::vector<Response> all;
    while (!text.empty()) {
        Response r;
        std::size_t used = 0;
        if (parse_response(text, head_request, true, r, used) != ParseState::Done) {
            break;
        }
        all.push_back(std::move(r));
        text.remove_prefix(used);
    }
    return all;
}

// ---------------------------------------------------------------------------------------------
// Client

Client::Client(const std::string& host, std::uint16_t port) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof *v4;
    } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof *v6;
    } else {
        connect_errno_ = EINVAL;
        return;
    }
    fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) {
        connect_errno_ = errno;
        return;
    }
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&ss), len) == 0) {
        return;
    }
    if (errno != EINPROGRESS) {
        connect_errno_ = errno;
        return;
    }
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, 3000) <= 0) {
        connect_errno_ = ETIMEDOUT;
        return;
    }
    int so_error = 0;
    socklen_t so_len = sizeof so_error;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &so_len);
    connect_errno_ = so_error;
}

Client::~Client() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      connect_errno_(other.connect_errno_),
      eof_(other.eof_),
      buf_(std::move(other.buf_)),
      transcript_(std::move(other.transcript_)) {}

bool Client::send(std::string_view bytes) {
    Deadline deadline(Millis(5000));
    while (!bytes.empty()) {
        ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n > 0) {
            bytes.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{fd_, POLLOUT, 0};
            if (::poll(&p, 1, deadline.remaining_ms()) <= 0) {
                return false;
            }
            continue;
        }
        return false;
    }
    return true;
}

void Client::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

void Client::reset() {
    if (fd_ >= 0) {
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    close();
}

void Client::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
    eof_ = true;
}

bool Client::fill(int timeout_ms) {
    if (eof_) {
        return false;
    }
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, timeout_ms);
    if (rc <= 0) {
        return false;
    }
    char chunk[64 * 1024];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n > 0) {
        buf_.append(chunk, static_cast<std::size_t>(n));
        transcript_.append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        // A reset counts as a close: the server dropped the connection either way.
        eof_ = true;
    }
    return true;
}

Response must_answer(Client& c, const std::string& raw, bool head_request) {
    INFO("request: " << raw.substr(0, 300));
    REQUIRE(c.send(raw));
    auto res = c.read_response(Millis(5000), head_request);
    INFO("received: " << c.transcript().substr(0, 2000));
    REQUIRE(res);
    return *res;
}

std::optional<Response> Client::read_response(Millis timeout, bool head_request) {
    Deadline deadline(timeout);
    for (;;) {
        Response r;
        std::size_t used = 0;
        ParseState st = parse_response(buf_, head_request, eof_, r, used);
        if (st == ParseState::Done) {
            buf_.erase(0, used);
            return r;
        }
        if (st == ParseState::Error || eof_) {
            return std::nullopt;
        }
        if (!fill(deadline.remaining_ms()) && deadline.expired()) {
            return std::nullopt;
        }
    }
}

bool Client::wait_closed(Millis timeout) {
    Deadline deadline(timeout);
    while (!eof_) {
        if (!fill(deadline.remaining_ms()) && deadline.expired()) {
            break;
        }
    }
    return eof_;
}

bool Client::quiet_for(Millis window) {
    if (!buf_.empty() || eof_) {
        return false;
    }
    return !fill(static_cast<int>(window.count()));
}

bool Client::read_until(std::string_view needle, Millis timeout) {
    Deadline deadline(timeout);
    while (buf_.find(needle) == std::string::npos) {
        if (eof_ || (!fill(deadline.remaining_ms()) && deadline.expired())) {
            return buf_.find(needle) != std::string::npos;
        }
    }
    return true;
}

std::optional<std::string> Client::read_exact(std::size_t n, Millis timeout) {
    Deadline deadline(timeout);
    while (buf_.size() < n) {
        if (eof_ || (!fill(deadline.remaining_ms()) && deadline.expired())) {
            if (buf_.size() < n) {
                return std::nullopt;
            }
        }
    }
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Configs and servers

// The routes most tests use:
//   hello   GET /hello                 200 "Hello, World!" text/plain, X-Test: 1
//   any     /any, every method         200 "any method"
//   upload  POST|PUT /upload           200 "stored", body limit 1000
//   secret  GET /secret                200 "SECRET" (what a smuggled request would reach)
//   ab      GET /a/b                   200 "a-b"
//   api     host api.example.com, prefix /v1/, body limit 1000, 201 "created" with
//           X-Test: 1 and X-Keep: k; headers filter adds X-Added: yes, removes X-Test
const char* const kStandardRoutes = R"([
    { "name": "hello", "match": { "path": "/hello", "methods": ["GET"] },
      "respond": { "status": 200, "body": "Hello, World!", "content_type": "text/plain",
                   "headers": { "X-Test": "1" } } },
    { "name": "any", "match": { "path": "/any" },
      "respond": { "status": 200, "body": "any method" } },
    { "name": "upload", "match": { "path": "/upload", "methods": ["POST", "PUT"] },
      "max_body_bytes": 1000, "respond": { "status": 200, "body": "stored" } },
    { "name": "secret", "match": { "path": "/secret", "methods": ["GET"] },
      "respond": { "status": 200, "body": "SECRET" } },
    { "name": "ab", "match": { "path": "/a/b", "methods": ["GET"] },
      "respond": { "status": 200, "body": "a-b" } },
    { "name": "api", "match": { "host": "api.example.com", "path_prefix": "/v1/" },
      "max_body_bytes": 1000,
      "respond": { "status": 201, "body": "created", "headers": { "X-Test": "1", "X-Keep": "k" } },
      "filters": [ { "type": "headers",
                     "response": { "add": { "X-Added": "yes" }, "remove": ["X-Test"] } } ] }
  ])";

std::string ConfigSpec::render() const {
    return "{\n  \"backend\": \"" + test_backend() + "\",\n  \"workers\": " +
           std::to_string(workers) + ",\n  \"limits\": " + limits + ",\n  \"listeners\": " +
           listeners + ",\n  \"routes\": " + (routes.empty() ? kStandardRoutes : routes) +
           "\n}\n";
}

std::string with_backend(std::string_view json) {
    std::string s(json);
    auto brace = s.find('{');
    if (brace == std::string::npos) {
        return s;
    }
    s.insert(brace + 1, " \"backend\": \"" + test_backend() + "\",");
    return s;
}

std::string Endpoint::url(std::string_view path) const {
    bool v6 = host.find(':') != std::string::npos;
    return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) +
           std::string(path);
}

std::vector<Endpoint> parse_listening(std::string_view log) {
    static constexpr std::string_view kMarker = "listening on http://";
    std::vector<Endpoint> found;
    std::size_t pos = 0;
    while ((pos = log.find(kMarker, pos)) != std::string_view::npos) {
        pos += kMarker.size();
        std::string_view rest = log.substr(pos);
        std::string_view line = rest.substr(0, rest.find('\n'));
        Endpoint e;
        std::string_view port_text;
        if (!line.empty() && line.front() == '[') {
            auto close = line.find(']');
            if (close == std::string_view::npos || line.substr(close + 1, 1) != ":") {
                continue;
            }
            e.host = std::string(line.substr(1, close - 1));
            port_text = line.substr(close + 2);
        } else {
            auto colon = line.find(':');
            if (colon == std::string_view::npos) {
                continue;
            }
            e.host = std::string(line.substr(0, colon));
            port_text = line.substr(colon + 1);
        }
        port_text = port_text.substr(0, port_text.find('/'));
        if (port_text.empty() || port_text.size() > 5 ||
            !std::all_of(port_text.begin(), port_text.end(),
                         [](char c) { return c >= '0' && c <= '9'; })) {
            continue;
        }
        e.port = static_cast<std::uint16_t>(std::stoul(std::string(port_text)));
        found.push_back(std::move(e));
    }
    return found;
}

Server::Server(const std::vector<std::string>& argv, std::size_t listeners)
    : process_(std::make_unique<Process>(argv)) {
    // A complete line is needed: the port could otherwise be cut in the middle.
    auto announced = [listeners](const std::string& err) {
        std::size_t complete = 0;
        std::size_t pos = 0;
        while ((pos = err.find("listening on http://", pos)) != std::string::npos) {
            auto eol = err.find('\n', pos);
            if (eol == std::string::npos) {
                break;
            }
            ++complete;
            pos = eol;
        }
        return complete >= listeners;
    };
    if (!process_->wait_for_stderr(announced, kStartTimeout)) {
        ExitStatus st = process_->stop(SIGKILL, kStopTimeout);
        throw std::runtime_error(argv[0] + " did not announce " + std::to_string(listeners) +
                                 " listener(s) (" + st.describe() + "); stderr:\n" +
                                 process_->err());
    }
    endpoints_ = parse_listening(process_->err());
}

Server::~Server() {
    if (stopped_) {
        return;
    }
    ExitStatus st = process_->stop(SIGTERM, kStopTimeout);
    if (std::uncaught_exceptions() == 0) {
        INFO("stderr of the server:\n" << process_->err());
        CHECK(st.describe() == "exited with status 0");
    }
}

Client Server::connect(std::size_t i) const {
    const Endpoint& e = endpoint(i);
    return Client(e.host, e.port);
}

ExitStatus Server::stop(int sig) {
    stopped_ = true;
    return process_->stop(sig, kStopTimeout);
}

Blitzd::Blitzd(const ConfigSpec& spec, std::size_t listeners)
    : Blitzd(write_config(spec.render()), listeners) {}

Blitzd::Blitzd(std::string_view json, std::size_t listeners)
    : Blitzd(write_config(with_backend(json)), listeners) {}

Blitzd::Files Blitzd::write_config(const std::string& text) {
    Files f{std::make_unique<TempDir>(), {}};
    f.config = f.dir->write("blitz.json", text);
    return f;
}

Blitzd::Blitzd(Files files, std::size_t listeners)
    : Server({blitzd_path(), "--config", files.config}, listeners), dir_(std::move(files.dir)) {}

Reply send_one(const Server& server, std::string_view raw, bool head_request) {
    Client c = server.connect();
    Reply reply;
    if (c.connected() && c.send(raw)) {
        reply.response = c.read_response(Millis(3000), head_request);
    }
    reply.transcript = c.transcript();
    return reply;
}

std::string request(std::string_view method, std::string_view target,
                    std::string_view extra_headers, std::string_view body) {
    std::string r = std::string(method) + " " + std::string(target) +
                    " HTTP/1.1\r\nHost: localhost\r\n" + std::string(extra_headers);
    if (!body.empty()) {
        r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    r += "\r\n";
    r += body;
    return r;
}

// ---------------------------------------------------------------------------------------------
// Proxy tests: origin servers

std::string backend_exe_path() {
    return env_or("BLITZ_BACKEND_EXE", "");
}

std::string nginx_path() {
    std::string path = env_or("NGINX", "/usr/sbin/nginx");
    return ::access(path.c_str(), X_OK) == 0 ? path : std::string();
}

std::uint16_t free_loopback_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        throw std::runtime_error("socket failed: " + std::string(std::strerror(errno)));
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot bind port 0: " + std::string(std::strerror(errno)));
    }
    ::close(fd);
    return ntohs(sa.sin_port);
}

std::string random_bytes(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::string s(n, '\0');
    for (auto& c : s) {
        c = static_cast<char>(rng() & 0xff);
    }
    return s;
}

long proc_status_kib(pid_t pid, std::string_view field) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line)) {
        if (line.size() > field.size() && line.compare(0, field.size(), field) == 0 &&
            line[field.size()] == ':') {
            return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
        }
    }
    return -1;
}

const Json* Json::get(std::string_view key) const {
    if (kind != Kind::Object) {
        return nullptr;
    }
    for (std::size_t i = 0; i < keys.size() && i < array.size(); ++i) {
        if (keys[i] == key) {
            return &array[i];
        }
    }
    return nullptr;
}

namespace {

/// A recursive-descent reader for one JSON document.
class JsonReader {
public:
    explicit JsonReader(std::string_view text) : s_(text) {}

    std::optional<Json> document() {
        Json v;
        if (!value(v, 0)) {
            return std::nullopt;
        }
        skip_ws();
        return pos_ == s_.size() ? std::optional<Json>(std::move(v)) : std::nullopt;
    }

private:
    void skip_ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
            ++pos_;
        }
    }

    bool literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word) {
            return false;
        }
        pos_ += word.size();
        return true;
    }

    bool value(Json& v, int depth) {
        if (depth > 64) {
            return false;
        }
        skip_ws();
        if (pos_ >= s_.size()) {
            return false;
        }
        char c = s_[pos_];
        if (c == '{') {
            v.kind = Json::Kind::Object;
            ++pos_;
            skip_ws();
            if (pos_ < s_.size() && s_[pos_] == '}') {
                ++pos_;
                return true;
            }
            for (;;) {
                skip_ws();
                std::string key;
                if (!string(key)) {
                    return false;
                }
                skip_ws();
                if (pos_ >= s_.size() || s_[pos_++] != ':') {
                    return false;
                }
                Json member;
                if (!value(member, depth + 1)) {
                    return false;
                }
                v.keys.push_back(std::move(key));
                v.array.push_back(std::move(member));
                skip_ws();
                if (pos_ < s_.size() && s_[pos_] == ',') {
                    ++pos_;
                    continue;
                }
                return pos_ < s_.size() && s_[pos_++] == '}';
            }
        }
        if (c == '[') {
            v.kind = Json::Kind::Array;
            ++pos_;
            skip_ws();
            if (pos_ < s_.size() && s_[pos_] == ']') {
                ++pos_;
                return true;
            }
            for (;;) {
                Json element;
                if (!value(element, depth + 1)) {
                    return false;
                }
                v.array.push_back(std::move(element));
                skip_ws();
                if (pos_ < s_.size() && s_[pos_] == ',') {
                    ++pos_;
                    continue;
                }
                return pos_ < s_.size() && s_[pos_++] == ']';
            }
        }
        if (c == '"') {
            v.kind = Json::Kind::String;
            return string(v.string);
        }
        if (literal("true")) {
            v.kind = Json::Kind::Bool;
            v.boolean = true;
            return true;
        }
        if (literal("false")) {
            v.kind = Json::Kind::Bool;
            return true;
        }
        if (literal("null")) {
            return true;
        }
        return number(v);
    }

    bool number(Json& v) {
        std::size_t start = pos_;
        if (pos_ < s_.size() && s_[pos_] == '-') {
            ++pos_;
        }
        std::size_t digits = pos_;
        while (pos_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[pos_])) != 0 ||
                                     s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E' ||
                                     s_[pos_] == '+' || s_[pos_] == '-')) {
            ++pos_;
        }
        if (pos_ == digits) {
            return false;
        }
        std::string text(s_.substr(start, pos_ - start));
        char* end = nullptr;
        v.kind = Json::Kind::Number;
        v.number = std::strtod(text.c_str(), &end);
        return end == text.c_str() + text.size();
    }

    static int hex(char c) {
        return (c >= '0' && c <= '9')   ? c - '0'
               : (c >= 'a' && c <= 'f') ? c - 'a' + 10
               : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                        : -1;
    }

    bool hex4(unsigned& out) {
        if (pos_ + 4 > s_.size()) {
            return false;
        }
        out = 0;
        for (int i = 0; i < 4; ++i) {
            int d = hex(s_[pos_++]);
            if (d < 0) {
                return false;
            }
            out = out * 16 + static_cast<unsigned>(d);
        }
        return true;
    }

    static void append_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    bool string(std::string& out) {
        if (pos_ >= s_.size() || s_[pos_] != '"') {
            return false;
        }
        ++pos_;
        while (pos_ < s_.size()) {
            char c = s_[pos_++];
            if (c == '"') {
                return true;
            }
            if (static_cast<unsigned char>(c) < 0x20) {
                return false;
            }
            if (c != '\\') {
                out += c;
                continue;
            }
            if (pos_ >= s_.size()) {
                return false;
            }
            char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = 0;
                    if (!hex4(cp)) {
                        return false;
                    }
                    if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(pos_, 2) == "\\u") {
                        pos_ += 2;
                        unsigned low = 0;
                        if (!hex4(low) || low < 0xDC00 || low >= 0xE000) {
                            return false;
                        }
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                    }
                    // The backend writes raw bytes as \u00XX: keep them as those bytes.
                    if (cp < 0x100) {
                        out += static_cast<char>(cp);
                    } else {
                        append_utf8(out, cp);
                    }
                    break;
                }
                default:
                    return false;
            }
        }
        return false;
    }

    std::string_view s_;
    std::size_t pos_ = 0;
};

std::vector<std::pair<std::string, std::string>> json_pairs(const Json* list) {
    std::vector<std::pair<std::string, std::string>> out;
    if (list == nullptr) {
        return out;
    }
    if (list->kind != Json::Kind::Array) {
        return out;
    }
    for (const Json& pair : list->array) {
        if (pair.kind == Json::Kind::Array && pair.array.size() == 2) {
            out.emplace_back(pair.array[0].string, pair.array[1].string);
        }
    }
    return out;
}

std::string json_text(const Json& obj, std::string_view key) {
    const Json* v = obj.get(key);
    return v != nullptr ? v->string : std::string();
}

std::uint64_t json_count(const Json& obj, std::string_view key) {
    const Json* v = obj.get(key);
    return v != nullptr && v->kind == Json::Kind::Number ? static_cast<std::uint64_t>(v->number)
                                                          : 0;
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
bool accepts_connections(std::uint16_t port) {
    Client c("127.0.0.1", port);
    return c.connected();
}

}  // namespace

std::optional<Json> parse_json(std::string_view text) { return JsonReader(text).document(); }

std::optional<std::string> LoggedRequest::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (iequal(n, name)) {
            return v;
        }
    }
    return std::nullopt;
}

std::size_t LoggedRequest::header_count(std::string_view name) const {
    return static_cast<std::size_t>(std::count_if(
        headers.begin(), headers.end(), [&](const auto& h) { return iequal(h.first, name); }));
}

Backend::Backend(std::string name, std::vector<std::string> extra_args, std::uint16_t port)
    : name_(std::move(name)), dir_(std::make_unique<TempDir>()) {
    const std::string exe = backend_exe_path();
    if (exe.empty()) {
        throw std::runtime_error("BLITZ_BACKEND_EXE is not set: it must name blitz_test_backend");
    }
    log_path_ = dir_->path() + "/requests.log";
    std::vector<std::string> argv = {exe,     "--listen", "127.0.0.1:" + std::to_string(port),
                                     "--name", name_,     "--log",
                                     log_path_};
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    process_ = std::make_unique<Process>(argv);
    static constexpr std::string_view kMarker = "listening on ";
    auto announced = [](const std::string& out) {
        auto at = out.find(kMarker);
        return at != std::string::npos && out.find('\n', at) != std::string::npos;
    };
    if (!process_->wait_for_stdout(announced, kStartTimeout)) {
        ExitStatus st = process_->stop(SIGKILL, kStopTimeout);
        throw std::runtime_error("blitz_test_backend did not announce its port (" +
                                 st.describe() + "); stderr:\n" + process_->err());
    }
    std::string out = process_->out();
    port_ = static_cast<std::uint16_t>(
        std::stoul(out.substr(out.find(kMarker) + kMarker.size())));
}

Backend::~Backend() {
    if (paused_) {
        resume();
    }
    process_->stop(SIGTERM, kStopTimeout);
}

std::string Backend::address() const { return "127.0.0.1:" + std::to_string(port_); }

std::string Backend::url(std::string_view path) const {
    return "http://" + address() + std::string(path);
}

std::vector<LoggedRequest> Backend::requests() const {
    std::ifstream f(log_path_, std::ios::binary);
    std::vector<LoggedRequest> all;
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty()) {
            continue;
        }
        LoggedRequest r;
        r.line = line;
        std::optional<Json> doc = parse_json(line);
        if (!doc || doc->kind != Json::Kind::Object) {
            r.error = "unreadable log line";
            all.push_back(std::move(r));
            continue;
        }
        r.error = json_text(*doc, "error");
        r.method = json_text(*doc, "method");
        r.target = json_text(*doc, "target");
        r.version = json_text(*doc, "version");
        r.headers = json_pairs(doc->get("headers"));
        r.trailers = json_pairs(doc->get("trailers"));
        r.body_bytes = json_count(*doc, "body_bytes");
        r.conn = json_count(*doc, "conn");
        r.seq = json_count(*doc, "seq");
        all.push_back(std::move(r));
    }
    return all;
}

bool Backend::wait_for_requests(std::size_t n, Millis timeout) const {
    // The log is a file: there is no descriptor to poll, so it is re-read on a short period.
    Deadline deadline(timeout);
    for (;;) {
        if (requests().size() >= n) {
            return true;
        }
        if (deadline.expired()) {
            return false;
        }
        std::this_thread::sleep_for(Millis(5));
    }
}

void Backend::kill() { process_->stop(SIGKILL, kStopTimeout); }

void Backend::pause() {
    process_->signal(SIGSTOP);
    paused_ = true;
}

void Backend::resume() {
    process_->signal(SIGCONT);
    paused_ = false;
}

Nginx::Nginx(std::string_view server, std::string_view listen_flags) : dir_(std::make_unique<TempDir>()) {
    const std::string exe = nginx_path();
    if (exe.empty()) {
        throw std::runtime_error("nginx is not installed");
    }
    const std::string& d = dir_->path();
    // Another process may take the port between free_loopback_port() and nginx's bind: then nginx
    // exits, and a new port is tried.
    for (int tries = 0; tries < 5; ++tries) {
        port_ = free_loopback_port();
        std::string conf = "daemon off;\nmaster_process off;\nworker_processes 1;\n"
                           "error_log stderr;\npid " + d + "/nginx.pid;\n"
                           "events { worker_connections 256; }\n"
                           "http {\n  access_log off;\n"
                           "  client_body_temp_path " + d + "/body;\n"
                           "  proxy_temp_path " + d + "/proxy;\n"
                           "  fastcgi_temp_path " + d + "/fastcgi;\n"
                           "  uwsgi_temp_path " + d + "/uwsgi;\n"
                           "  scgi_temp_path " + d + "/scgi;\n"
                           "  server {\n    listen 127.0.0.1:" + std::to_string(port_) +
                           std::string(listen_flags) + ";\n" + std::string(server) + "\n  }\n}\n";
        std::string file = dir_->write("nginx.conf", conf);
        process_ = std::make_unique<Process>(
            std::vector<std::string>{exe, "-p", d, "-c", file, "-e", "stderr"});
        Deadline deadline(kStartTimeout);
        while (process_->running() && !deadline.expired()) {
            if (accepts_connections(port_)) {
                return;
            }
            // nginx announces nothing when it is ready: poll its port.
            std::this_thread::sleep_for(Millis(10));
        }
        process_->stop(SIGKILL, kStopTimeout);
    }
    throw std::runtime_error("nginx did not start; stderr:\n" + process_->err());
}

Nginx::~Nginx() { process_->stop(SIGQUIT, kStopTimeout); }

std::string Nginx::address() const { return "127.0.0.1:" + std::to_string(port_); }

std::string ProxyConfig::render() const {
    return "{\n  \"workers\": " + std::to_string(workers) + ",\n  \"limits\": " + limits +
           ",\n  \"listeners\": " + listeners + ",\n  \"upstreams\": " + upstreams +
           ",\n  \"routes\": " + routes + "\n}\n";
}

std::optional<Response> Session::exchange(const std::string& raw, Millis timeout,
                                          bool head_request) {
    if (!client_ || client_->peer_closed()) {
        client_.emplace(server_.connect());
    }
    std::optional<Response> res;
    if (client_->connected() && client_->send(raw)) {
        res = client_->read_response(timeout, head_request);
    }
    if (!res || res->connection_has("close") || !client_->pending().empty()) {
        client_.reset();
    }
    return res;
}

std::string endpoint_list(const std::vector<const Backend*>& backends) {
    std::string out = "[";
    for (const Backend* b : backends) {
        out += (out.size() > 1 ? ", \"" : "\"") + b->address() + "\"";
    }
    return out + "]";
}

// ---------------------------------------------------------------------------------------------
// The io_uring availability probe, run once before any test.

namespace {

/// Whether blitzd with `json` starts; its stderr goes to `log`.
bool blitzd_starts(const std::string& json, std::string& log) {
    try {
        TempDir dir;
        Server s({blitzd_path(), "--config", dir.write("probe.json", json)}, 1);
        s.stop(SIGTERM);
        return true;
    } catch (const std::exception& e) {
        log = e.what();
        return false;
    }
}

class BackendProbe : public Catch::EventListenerBase {
public:
    using Catch::EventListenerBase::EventListenerBase;

    void testRunStarting(const Catch::TestRunInfo&) override {
        if (blitzd_path().empty()) {
            std::fprintf(stderr, "BLITZD is not set: it must name the blitzd executable\n");
            std::exit(1);
        }
        if (test_backend() != "io_uring") {
            return;
        }
        io_uring_params params{};
        long fd = ::syscall(__NR_io_uring_setup, 4, &params);
        if (fd < 0) {
            std::fprintf(stderr, "SKIP: io_uring_setup failed (%s): no io_uring backend here\n",
                         std::strerror(errno));
            std::exit(77);
        }
        ::close(static_cast<int>(fd));
        // The kernel has io_uring but may lack a feature blitzd needs: then blitzd refuses
        // the io_uring backend while epoll starts, and its error names io_uring.
        ConfigSpec spec;
        std::string log;
        if (blitzd_starts(spec.render(), log)) {
            return;
        }
        std::string epoll_log;
        std::string epoll_json = spec.render();
        epoll_json.replace(epoll_json.find("\"io_uring\""), 10, "\"epoll\"");
        if (log.find("io_uring") != std::string::npos && blitzd_starts(epoll_json, epoll_log)) {
            std::fprintf(stderr, "SKIP: blitzd cannot use io_uring on this kernel:\n%s\n",
                         log.c_str());
            std::exit(77);
        }
    }
};

}  // namespace

CATCH_REGISTER_LISTENER(BackendProbe)

LoggedRequest logged(const Backend& b, std::string_view target) {
    REQUIRE(b.wait_for_requests(1));
    std::vector<LoggedRequest> found;
    for (auto& r : b.requests()) {
        if (r.target == target) {
            found.push_back(std::move(r));
        }
    }
    INFO("backend " << b.name() << " logged " << found.size() << " requests for " << target);
    REQUIRE(found.size() == 1);
    return found[0];
}

}  // namespace blitz::itest

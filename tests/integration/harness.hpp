#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

/// Integration-test harness: starts real processes (blitzd, the embedding example, curl) and
/// talks to them over loopback sockets. Nothing here links libblitz.
///
/// Every wait has a deadline and is driven by poll(2) on a descriptor (a pipe or a socket);
/// nothing sleeps to wait for readiness.
namespace blitz::itest {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

/// A point in time a wait must give up at.
class Deadline {
public:
    explicit Deadline(Millis budget) : at_(Clock::now() + budget) {}
    bool expired() const { return Clock::now() >= at_; }
    /// Milliseconds left, for poll(2); 0 when expired.
    int remaining_ms() const;

private:
    Clock::time_point at_;
};

/// The value of an environment variable, or `fallback` when unset or empty.
std::string env_or(const char* name, std::string_view fallback);

/// The backend under test: BLITZ_TEST_BACKEND ("io_uring", "epoll"), "auto" when unset.
std::string test_backend();

/// Path of the blitzd executable (env BLITZD), empty when unset.
std::string blitzd_path();

/// Path of the embedding example (env HELLO_EXAMPLE), empty when unset.
std::string hello_example_path();

/// A private directory under $TMPDIR, removed with everything in it on destruction.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }
    /// Writes `content` to `name` inside the directory and returns the full path.
    std::string write(std::string_view name, std::string_view content) const;

private:
    std::string path_;
};

/// How a child process ended.
struct ExitStatus {
    enum class Kind { Exited, Signaled, StillRunning };
    Kind kind = Kind::StillRunning;
    int value = 0;  ///< exit code or signal number

    bool exited_with(int code) const { return kind == Kind::Exited && value == code; }
    std::string describe() const;
};

/// A child process with its stdout and stderr captured through pipes.
///
/// A pump thread reads both pipes as output arrives (so a chatty child never blocks on a full
/// pipe) and reaps the child when its pidfd turns readable.
///
/// Lifetime: the destructor kills (SIGKILL) and reaps a child that is still running.
class Process {
public:
    /// Starts `argv` (argv[0] is searched in PATH when it has no '/'); throws
    /// std::runtime_error when the program cannot be started.
    explicit Process(const std::vector<std::string>& argv);
    ~Process();
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const { return pid_; }
    bool running() const;
    /// Waits until `pred(stderr so far)` holds, the child exits, or the deadline passes;
    /// returns whether `pred` held.
    bool wait_for_stderr(const std::function<bool(const std::string&)>& pred, Millis timeout);
    /// The same for stdout.
    bool wait_for_stdout(const std::function<bool(const std::string&)>& pred, Millis timeout);
    /// Waits until the child exited and its output was read, or the deadline passed.
    ExitStatus wait(Millis timeout);
    /// Sends `sig` (through the pidfd, so never to a recycled pid) and waits for the exit.
    ExitStatus stop(int sig, Millis timeout);
    void signal(int sig) const;

    std::string out() const;
    std::string err() const;

private:
    void pump();

    pid_t pid_ = -1;
    int pidfd_ = -1;
    int out_fd_ = -1;
    int err_fd_ = -1;
    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::string out_;
    std::string err_;
    std::optional<ExitStatus> status_;
    bool done_ = false;  ///< exited and the pipes were drained
    std::thread pump_;
};

/// Output and status of a finished command.
struct CommandResult {
    ExitStatus status;
    std::string out;
    std::string err;
};

/// Runs a command to completion (killed after `timeout`).
CommandResult run_command(const std::vector<std::string>& argv, Millis timeout = Millis(10'000));

/// Runs curl with `-sS --max-time 5` prepended to `args`.
CommandResult curl(std::vector<std::string> args);

/// One parsed HTTP response.
struct Response {
    std::string version;  ///< "HTTP/1.1"
    int status = 0;
    std::string reason;
    std::vector<std::pair<std::string, std::string>> headers;  ///< wire order
    std::string body;

    /// The first field with this name (ASCII case-insensitive).
    std::optional<std::string> header(std::string_view name) const;
    std::size_t header_count(std::string_view name) const;
    /// Whether a Connection header lists `token`.
    bool connection_has(std::string_view token) const;
    /// Status line and headers, for failure messages.
    std::string head_text() const;
};

enum class ParseState { Incomplete, Done, Error };

/// Parses one response at the start of `buf`. `head_request` says the response answers HEAD
/// (no body whatever the framing). `at_eof` lets a body delimited by the close complete.
/// On Done, `consumed` is the response's length in bytes.
ParseState parse_response(std::string_view buf, bool head_request, bool at_eof, Response& out,
                          std::size_t& consumed);

/// Every response in `text` (as curl -i prints them, or a raw capture), 1xx included.
std::vector<Response> parse_all_responses(std::string_view text, bool head_request = false);

/// A raw TCP client for malformed, pipelined and slow input.
///
/// Every read polls with a deadline. Bytes read beyond a response stay buffered for the next.
class Client {
public:
    /// Connects to `host` (numeric IPv4 or IPv6, without brackets) and `port`.
    Client(const std::string& host, std::uint16_t port);
    ~Client();
    Client(Client&& other) noexcept;
    Client& operator=(Client&&) = delete;
    Client(const Client&) = delete;

    bool connected() const { return fd_ >= 0 && connect_errno_ == 0; }
    int connect_error() const { return connect_errno_; }

    /// Writes all of `bytes`; false when the peer reset or closed the connection.
    bool send(std::string_view bytes);
    /// Half-closes the sending side (the server sees end of input).
    void shutdown_write();
    /// Closes the connection now.
    void close();
    /// Closes the connection with a reset (SO_LINGER 0), as a crashing client would.
    void reset();

    /// Reads one response; nullopt when none completed before the deadline or the close.
    std::optional<Response> read_response(Millis timeout = Millis(3000), bool head_request = false);
    /// Reads until the peer closes (true) or the deadline passes (false).
    bool wait_closed(Millis timeout = Millis(3000));
    /// True when nothing at all (no byte, no close) arrives within `window`.
    bool quiet_for(Millis window);
    /// Reads until the unconsumed bytes contain `needle` (true), or the deadline or the close.
    bool read_until(std::string_view needle, Millis timeout = Millis(3000));
    /// Takes exactly `n` bytes off the front of the unconsumed bytes, reading as needed;
    /// nullopt when they did not arrive before the deadline or the close.
    std::optional<std::string> read_exact(std::size_t n, Millis timeout = Millis(3000));

    bool peer_closed() const { return eof_; }
    /// Bytes received and not yet consumed by read_response().
    const std::string& pending() const { return buf_; }
    /// Everything received on this connection, for failure messages.
    const std::string& transcript() const { return transcript_; }

private:
    /// Waits up to `timeout_ms` for input and appends it; false on timeout.
    bool fill(int timeout_ms);

    int fd_ = -1;
    int connect_errno_ = 0;
    bool eof_ = false;
    std::string buf_;
    std::string transcript_;
};

/// Sends `raw` on `c` and reads its response, failing the test case (REQUIRE) when no response
/// completes within 5 s; the request and what was received are in the failure message.
Response must_answer(Client& c, const std::string& raw, bool head_request = false);

/// Configuration pieces for blitzd; render() produces the JSON document, with "backend" set
/// from test_backend().
struct ConfigSpec {
    unsigned workers = 1;
    /// The "limits" object.
    std::string limits = "{}";
    /// The "listeners" array.
    std::string listeners = R"([{"name": "main", "address": "127.0.0.1:0"}])";
    /// The "routes" array.
    std::string routes;

    std::string render() const;
};

/// The routes most tests run against (see harness.cpp for the list).
extern const char* const kStandardRoutes;

/// Inserts `"backend": "<test_backend()>"` as the first key of a JSON object document.
std::string with_backend(std::string_view json);

/// A listener address announced in blitzd's log ("listening on http://HOST:PORT/").
struct Endpoint {
    std::string host;  ///< without brackets
    std::uint16_t port = 0;
    std::string url(std::string_view path = "/") const;
};

/// Parses every "listening on http://HOST:PORT/" line in `log`.
std::vector<Endpoint> parse_listening(std::string_view log);

/// A running server process announced by "listening on" log lines (blitzd or the example).
///
/// Lifetime: the destructor stops a server still running with SIGTERM and checks (Catch2
/// CHECK) that it exits with status 0, so every test also checks a clean shutdown.
class Server {
public:
    /// Starts `argv` and waits until `listeners` "listening on" lines were logged; throws
    /// std::runtime_error with the process's stderr when it exits or times out first.
    Server(const std::vector<std::string>& argv, std::size_t listeners);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    const Endpoint& endpoint(std::size_t i = 0) const { return endpoints_.at(i); }
    std::uint16_t port(std::size_t i = 0) const { return endpoint(i).port; }
    std::string url(std::string_view path, std::size_t i = 0) const {
        return endpoint(i).url(path);
    }
    Client connect(std::size_t i = 0) const;
    Process& process() { return *process_; }
    /// Sends `sig` and returns how the process ended (the destructor then checks nothing).
    ExitStatus stop(int sig);

private:
    std::unique_ptr<Process> process_;
    std::vector<Endpoint> endpoints_;
    bool stopped_ = false;
};

/// blitzd started with a config written to its own temporary directory.
class Blitzd : public Server {
public:
    explicit Blitzd(const ConfigSpec& spec, std::size_t listeners = 1);
    /// `json` is a whole config document; "backend" is inserted by with_backend().
    explicit Blitzd(std::string_view json, std::size_t listeners = 1);

private:
    struct Files {
        std::unique_ptr<TempDir> dir;
        std::string config;
    };
    static Files write_config(const std::string& text);
    Blitzd(Files files, std::size_t listeners);
    std::unique_ptr<TempDir> dir_;
};

/// One request on a fresh connection, and what came back.
struct Reply {
    std::optional<Response> response;
    std::string transcript;  ///< every byte received, for failure messages
};
Reply send_one(const Server& server, std::string_view raw, bool head_request = false);

/// A request head with `Host` and the given extra header lines ("Name: value\r\n" each).
std::string request(std::string_view method, std::string_view target,
                    std::string_view extra_headers = "", std::string_view body = "");

// ---------------------------------------------------------------------------------------------
// Proxy tests: origin servers behind blitzd (the project's test backend and Debian's nginx).

/// Path of the project's test backend, tests/backend (env BLITZ_BACKEND_EXE), empty when unset.
std::string backend_exe_path();

/// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then closed), for servers
/// that cannot bind port 0 themselves and for addresses that must refuse connections.
std::uint16_t free_loopback_port();

/// `n` pseudo-random bytes, the same for the same seed.
std::string random_bytes(std::size_t n, std::uint32_t seed);

/// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"); -1 when it cannot be read.
long proc_status_kib(pid_t pid, std::string_view field);

/// A JSON value: enough to read the test backend's request log and proxy error bodies.
struct Json {
    enum class Kind { Null, Bool, Number, String, Array, Object };
    Kind kind = Kind::Null;
    bool boolean = false;
    double number = 0;
    std::string string;
    /// The elements of an array, or the member values of an object (document order).
    std::vector<Json> array;
    /// For an object: keys[i] is the name of array[i].
    std::vector<std::string> keys;

    /// The member `key` of an object; nullptr when absent or not an object.
    const Json* get(std::string_view key) const;
};

/// Parses one JSON document (RFC 8259; \u escapes above 0x7f are kept as UTF-8); nullopt when
/// `text` is not exactly one valid value (surrounding whitespace allowed).
std::optional<Json> parse_json(std::string_view text);

/// One line of the test backend's request log (see tests/backend/README.md).
struct LoggedRequest {
    std::string error;  ///< set for requests the backend refused
    std::string method;
    std::string target;
    std::string version;
    std::vector<std::pair<std::string, std::string>> headers;  ///< as received, in order
    std::vector<std::pair<std::string, std::string>> trailers;
    std::uint64_t body_bytes = 0;
    std::uint64_t conn = 0;  ///< accepted connection, from 1
    std::uint64_t seq = 0;   ///< request on that connection, from 1
    std::string line;        ///< the raw log line, for failure messages

    /// The first field with this name (ASCII case-insensitive).
    std::optional<std::string> header(std::string_view name) const;
    std::size_t header_count(std::string_view name) const;
};

/// The test backend (tests/backend) on 127.0.0.1, logging every request it receives to a file
/// of its own.
///
/// Lifetime: the destructor resumes a paused backend and stops it with SIGTERM.
class Backend {
public:
    /// Starts `--name name` on `port` (0: any free port) with `extra_args`, and waits for its
    /// "listening on PORT" line; throws std::runtime_error when it does not come.
    explicit Backend(std::string name, std::vector<std::string> extra_args = {},
                     std::uint16_t port = 0);
    ~Backend();
    Backend(const Backend&) = delete;
    Backend& operator=(const Backend&) = delete;

    const std::string& name() const { return name_; }
    std::uint16_t port() const { return port_; }
    /// "127.0.0.1:PORT", as an upstream endpoint.
    std::string address() const;
    /// A URL on the backend itself, bypassing blitzd.
    std::string url(std::string_view path) const;
    /// Every request logged so far, in log order.
    std::vector<LoggedRequest> requests() const;
    /// Waits until at least `n` requests are logged (true) or the deadline passes.
    bool wait_for_requests(std::size_t n, Millis timeout = Millis(3000)) const;
    /// Kills the backend with SIGKILL, as a crash would, and reaps it.
    void kill();
    /// Stops (SIGSTOP) and resumes (SIGCONT) the backend: a stopped backend's kernel still
    /// accepts connections and requests, but nothing answers.
    void pause();
    void resume();
    Process& process() { return *process_; }

private:
    std::string name_;
    std::unique_ptr<TempDir> dir_;
    std::string log_path_;
    std::unique_ptr<Process> process_;
    std::uint16_t port_ = 0;
    bool paused_ = false;
};

/// The only request `b` logged with this target, once it has logged any (a test failure unless
/// there was exactly one).
LoggedRequest logged(const Backend& b, std::string_view target);

/// Debian's nginx (/usr/sbin/nginx, or env NGINX) on 127.0.0.1, one worker in the foreground,
/// serving `locations` (nginx `location` blocks).
///
/// Lifetime: the destructor stops it.
class Nginx {
public:
    /// Serves `server` (directives of its server block) on a free loopback port; `listen_flags`
    /// follow the port on the listen line (" ssl"). Throws std::runtime_error when nginx does not
    /// accept connections within the deadline.
    explicit Nginx(std::string_view server, std::string_view listen_flags = {});
    ~Nginx();
    Nginx(const Nginx&) = delete;
    Nginx& operator=(const Nginx&) = delete;

    std::uint16_t port() const { return port_; }
    std::string address() const;
    const TempDir& dir() const { return *dir_; }

private:
    std::unique_ptr<TempDir> dir_;
    std::unique_ptr<Process> process_;
    std::uint16_t port_ = 0;
};

/// Path of nginx (env NGINX, else /usr/sbin/nginx); empty when it is not executable.
std::string nginx_path();

/// A blitzd config document for proxy tests; pass render() to Blitzd, which adds "backend".
struct ProxyConfig {
    unsigned workers = 1;
    std::string limits = "{}";
    std::string listeners = R"([{"name": "main", "address": "127.0.0.1:0"}])";
    std::string upstreams = "[]";  ///< the "upstreams" array
    std::string routes = "[]";     ///< the "routes" array

    std::string render() const;
};

/// A JSON array of the backends' addresses, for an upstream's "endpoints".
std::string endpoint_list(const std::vector<const Backend*>& backends);

/// A keep-alive client of one server that sends one request at a time, and reconnects after
/// the server closed the connection (or said it would). Nothing is ever sent twice.
class Session {
public:
    explicit Session(const Server& server) : server_(server) {}
    /// Sends `raw` and reads its response; nullopt (and a new connection next time) when no
    /// complete response arrived before the deadline or the close.
    std::optional<Response> exchange(const std::string& raw, Millis timeout = Millis(5000),
                                     bool head_request = false);

private:
    const Server& server_;
    std::optional<Client> client_;
};

}  // namespace blitz::itest

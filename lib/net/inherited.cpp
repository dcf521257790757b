#include "net/inherited.hpp"

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <utility>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

extern char** environ;

namespace blitz::net {

namespace {

constexpr std::string_view kListenFds = "LISTEN_FDS";
constexpr std::string_view kListenPid = "LISTEN_PID";
constexpr std::string_view kListenFdNames = "LISTEN_FDNAMES";
// More descriptors than this in LISTEN_FDS is a corrupt variable, not a configuration.
constexpr unsigned kMaxListenFds = 65536;
// systemd's FDNAME_MAX.
constexpr std::size_t kMaxFdName = 255;
// Room for the decimal digits of any pid_t and the terminating NUL.
constexpr std::size_t kPidSlot = 16;

template <class T>
bool parse_decimal(std::string_view text, T& out) {
    if (text.empty() || text.front() < '0' || text.front() > '9') {
        return false;  // from_chars would take a '-'; the protocol has no signs
    }
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
}

std::string quoted(std::string_view text) {
    std::string out = "\"";
    out.append(text).append("\"");
    return out;
}

std::string fd_label(int fd, std::string_view name) {
    return "inherited fd " + std::to_string(fd) + " (" + quoted(name) + ")";
}

const char* family_name(int family) {
    switch (family) {
        case AF_UNIX:
            return "AF_UNIX";
        case AF_INET:
            return "AF_INET";
        case AF_INET6:
            return "AF_INET6";
        case AF_NETLINK:
            return "AF_NETLINK";
        default:
            return "another family";
    }
}

const char* type_name(int type) {
    switch (type) {
        case SOCK_DGRAM:
            return "SOCK_DGRAM";
        case SOCK_SEQPACKET:
            return "SOCK_SEQPACKET";
        case SOCK_RAW:
            return "SOCK_RAW";
        default:
            return "another type";
    }
}

// Checks one descriptor and makes it ours; an error text on failure, empty on success.
std::string adopt_one(int fd, const std::string& name, SocketAddress& address) {
    const int flags = ::fcntl(fd, F_GETFD);
    if (flags < 0) {
        return fd_label(fd, name) + ": not an open descriptor (" + std::strerror(errno) + ")";
    }
    // Ours now: a process we start later gets the sockets only when we pass them explicitly.
    if (::fcntl(fd, F_SETFD, flags | FD_CLOEXEC) != 0) {
        return fd_label(fd, name) + ": cannot set FD_CLOEXEC (" + std::strerror(errno) + ")";
    }
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &len) != 0) {
        if (errno == ENOTSOCK) {
            return fd_label(fd, name) + ": not a socket";
        }
        return fd_label(fd, name) + ": getsockopt(SO_DOMAIN): " + std::strerror(errno);
    }
    if (value != AF_INET && value != AF_INET6) {
        return fd_label(fd, name) + ": not a TCP socket (" + family_name(value) +
               ", expected AF_INET or AF_INET6)";
    }
    len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) != 0) {
        return fd_label(fd, name) + ": getsockopt(SO_TYPE): " + std::strerror(errno);
    }
    if (value != SOCK_STREAM) {
        return fd_label(fd, name) + ": not a TCP socket (" + type_name(value) +
               ", expected SOCK_STREAM)";
    }
    len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) != 0) {
        return fd_label(fd, name) + ": getsockopt(SO_ACCEPTCONN): " + std::strerror(errno);
    }
    if (value == 0) {
        return fd_label(fd, name) + ": not listening (SO_ACCEPTCONN is off)";
    }
    address = SocketAddress{};
    address.length = sizeof address.storage;
    if (::getsockname(fd, address.get(), &address.length) != 0) {
        return fd_label(fd, name) + ": getsockname: " + std::strerror(errno);
    }
    // The reactors' accept loops (the epoll backend in particular) must never block in
    // accept(): another reactor or process may take the connection first. The flag lives on
    // the open file description, which systemd shares; its own sockets are non-blocking too.
    const int status = ::fcntl(fd, F_GETFL);
    if (status < 0 || ::fcntl(fd, F_SETFL, status | O_NONBLOCK) != 0) {
        return fd_label(fd, name) + ": cannot set O_NONBLOCK (" + std::strerror(errno) + ")";
    }
    return {};
}

bool same_address(const SocketAddress& a, const SocketAddress& b) {
    if (a.family() != b.family()) {
        return false;
    }
    if (a.family() == AF_INET) {
        const auto* x = reinterpret_cast<const sockaddr_in*>(&a.storage);
        const auto* y = reinterpret_cast<const sockaddr_in*>(&b.storage);
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a.family() == AF_INET6) {
        const auto* x = reinterpret_cast<const sockaddr_in6*>(&a.storage);
        const auto* y = reinterpret_cast<const sockaddr_in6*>(&b.storage);
        return x->sin6_port == y->sin6_port &&
               std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return false;
}

std::optional<std::string> copy_env(std::string_view name) {
    const char* value = std::getenv(std::string(name).c_str());
    if (value == nullptr) {
        return std::nullopt;
    }
    return std::string(value);
}

std::optional<std::string_view> view(const std::optional<std::string>& s) {
    if (!s) {
        return std::nullopt;
    }
    return std::string_view(*s);
}

bool has_nul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

// sd_listen_fds_with_names(3) refuses names with control characters or ':' (the separator).
std::string sanitize_fd_name(std::string_view name) {
    if (name.empty()) {
        return "unknown";
    }
    std::string out(name.substr(0, kMaxFdName));
    for (char& c : out) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f || c == ':') {
            c = '_';
        }
    }
    return out;
}

std::string_view env_name(std::string_view entry) { return entry.substr(0, entry.find('=')); }

// Async-signal-safe: writes the decimal digits of `value` and a NUL.
void write_decimal(long value, char* out) {
    char digits[24];
    std::size_t n = 0;
    do {
        digits[n++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value > 0 && n < sizeof digits);
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = digits[n - 1 - i];
    }
    out[n] = '\0';
}

// Async-signal-safe: reports a failed step of exec_in_child() and leaves.
[[noreturn]] void child_fail(const char* step) {
    const int err = errno;
    char line[128];
    std::size_t n = 0;
    auto put = [&](const char* s) {
        while (*s != '\0' && n < sizeof line - 1) {
            line[n++] = *s++;
        }
    };
    put("blitz: ");
    put(step);
    put(" failed (errno ");
    char digits[24];
    write_decimal(err, digits);
    put(digits);
    put(")\n");
    (void)!::write(STDERR_FILENO, line, n);
    ::_exit(127);
}

}  // namespace

std::string InheritedSocket::describe() const {
    return quoted(name) + " " + address.to_string() + " (fd " + std::to_string(fd) + ")";
}

InheritedSockets::~InheritedSockets() { (void)close_leftovers(); }

InheritedSockets::InheritedSockets(InheritedSockets&& other) noexcept
    : sockets_(std::exchange(other.sockets_, {})) {}

InheritedSockets& InheritedSockets::operator=(InheritedSockets&& other) noexcept {
    if (this != &other) {
        (void)close_leftovers();
        sockets_ = std::exchange(other.sockets_, {});
    }
    return *this;
}

Result<InheritedSockets, std::string> InheritedSockets::take_from_environment() {
    // Copies first: unsetenv() invalidates what getenv() returned.
    const auto fds = copy_env(kListenFds);
    const auto pid = copy_env(kListenPid);
    const auto names = copy_env(kListenFdNames);
    ::unsetenv(std::string(kListenFds).c_str());
    ::unsetenv(std::string(kListenPid).c_str());
    ::unsetenv(std::string(kListenFdNames).c_str());
    return adopt(
        ListenEnvironment{
            .listen_fds = view(fds), .listen_pid = view(pid), .listen_fdnames = view(names)},
        ::getpid(), kListenFdsStart);
}

Result<InheritedSockets, std::string> InheritedSockets::adopt(const ListenEnvironment& env,
                                                              pid_t self, int first_fd) {
    InheritedSockets out;
    if (!env.listen_fds) {
        return out;
    }
    if (env.listen_pid) {
        pid_t pid = 0;
        if (!parse_decimal(*env.listen_pid, pid) || pid <= 0) {
            return fail("LISTEN_PID=" + quoted(*env.listen_pid) + " is not a process id");
        }
        if (pid != self) {
            return out;  // meant for another process: not ours to touch
        }
    }
    unsigned count = 0;
    if (!parse_decimal(*env.listen_fds, count) || count > kMaxListenFds) {
        return fail("LISTEN_FDS=" + quoted(*env.listen_fds) + " is not a descriptor count");
    }
    if (first_fd < 0 || count > static_cast<unsigned>(std::numeric_limits<int>::max() - first_fd)) {
        return fail("LISTEN_FDS=" + quoted(*env.listen_fds) + " is out of range");
    }
    std::vector<std::string> names;
    if (env.listen_fdnames) {
        std::string_view rest = *env.listen_fdnames;
        // Split as sd_listen_fds_with_names(3) does: an empty variable names no descriptor,
        // "a:" names two (the second one empty).
        while (!env.listen_fdnames->empty()) {
            const auto colon = rest.find(':');
            names.emplace_back(rest.substr(0, colon));
            if (colon == std::string_view::npos) {
                break;
            }
            rest.remove_prefix(colon + 1);
        }
        if (names.size() != count) {
            return fail("LISTEN_FDNAMES=" + quoted(*env.listen_fdnames) + " names " +
                        std::to_string(names.size()) +
                        " descriptors but LISTEN_FDS=" + std::to_string(count));
        }
    } else {
        names.assign(count, "unknown");
    }
    std::vector<InheritedSocket> sockets(count);
    for (unsigned i = 0; i < count; ++i) {
        InheritedSocket& s = sockets[i];
        s.fd = first_fd + static_cast<int>(i);
        s.name = std::move(names[i]);
        if (std::string error = adopt_one(s.fd, s.name, s.address); !error.empty()) {
            return fail(std::move(error));
        }
    }
    out.sockets_ = std::move(sockets);
    return out;
}

std::vector<InheritedSocket> InheritedSockets::take(const SocketAddress& address) {
    std::vector<InheritedSocket> taken;
    std::vector<InheritedSocket> kept;
    for (InheritedSocket& s : sockets_) {
        (same_address(s.address, address) ? taken : kept).push_back(std::move(s));
    }
    sockets_ = std::move(kept);
    return taken;
}

std::vector<std::string> InheritedSockets::close_leftovers() {
    std::vector<std::string> closed;
    closed.reserve(sockets_.size());
    for (const InheritedSocket& s : sockets_) {
        closed.push_back(s.describe());
        ::close(s.fd);
    }
    sockets_.clear();
    return closed;
}

struct ChildExec::Block {
    std::string path;
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::vector<char*> argv;
    std::vector<char*> envp;
    char* pid_digits = nullptr;  // inside the LISTEN_PID entry, kPidSlot bytes
    std::vector<int> sources;    // sockets, then extra descriptors
    std::vector<int> temps;      // written only in the child
};

ChildExec::ChildExec(std::unique_ptr<Block> block) noexcept : block_(std::move(block)) {}
ChildExec::ChildExec(ChildExec&&) noexcept = default;
ChildExec& ChildExec::operator=(ChildExec&&) noexcept = default;
ChildExec::~ChildExec() = default;

Result<ChildExec, std::string> ChildExec::prepare(std::string path,
                                                  std::span<const std::string> args,
                                                  std::span<const PassedSocket> sockets,
                                                  std::span<const PassedFd> extra_fds,
                                                  char* const* environment) {
    if (path.empty() || has_nul(path)) {
        return fail(std::string("exec: the program path is empty or holds a NUL"));
    }
    if (args.empty()) {
        return fail(std::string("exec: no argv[0]"));
    }
    auto block = std::make_unique<Block>();
    block->path = std::move(path);
    for (const std::string& arg : args) {
        if (has_nul(arg)) {
            return fail("exec: argument " + quoted(arg.c_str()) + " holds a NUL");
        }
        block->args.push_back(arg);
    }
    std::vector<std::string_view> replaced = {kListenFds, kListenPid, kListenFdNames};
    for (const PassedFd& extra : extra_fds) {
        if (extra.env_name.empty() || extra.env_name.find('=') != std::string::npos ||
            has_nul(extra.env_name) || extra.env_name.starts_with("LISTEN_")) {
            return fail("exec: invalid variable name " + quoted(extra.env_name.c_str()) +
                        " for a passed descriptor");
        }
        replaced.emplace_back(extra.env_name);
    }
    for (char* const* e = environment != nullptr ? environment : environ; *e != nullptr; ++e) {
        const std::string_view entry = *e;
        bool drop = false;
        for (std::string_view name : replaced) {
            drop = drop || env_name(entry) == name;
        }
        if (!drop) {
            block->env.emplace_back(entry);
        }
    }
    const int first_extra = kListenFdsStart + static_cast<int>(sockets.size());
    if (!sockets.empty()) {
        std::string names;
        for (const PassedSocket& s : sockets) {
            if (s.fd < 0) {
                return fail("exec: socket " + quoted(s.name) + " has no descriptor");
            }
            names.append(names.empty() ? "" : ":").append(sanitize_fd_name(s.name));
            block->sources.push_back(s.fd);
        }
        block->env.push_back(std::string(kListenFds) + "=" + std::to_string(sockets.size()));
        block->env.push_back(std::string(kListenFdNames) + "=" + names);
        // Filled in by the child: only it knows its pid, and only after fork().
        block->env.push_back(std::string(kListenPid) + "=" + std::string(kPidSlot, '\0'));
    }
    for (std::size_t i = 0; i < extra_fds.size(); ++i) {
        if (extra_fds[i].fd < 0) {
            return fail("exec: " + extra_fds[i].env_name + " has no descriptor");
        }
        block->sources.push_back(extra_fds[i].fd);
        block->env.push_back(extra_fds[i].env_name + "=" +
                             std::to_string(first_extra + static_cast<int>(i)));
    }
    block->temps.assign(block->sources.size(), -1);
    // The strings are complete; pointers into them stay valid for the Block's lifetime.
    for (std::string& arg : block->args) {
        block->argv.push_back(arg.data());
    }
    block->argv.push_back(nullptr);
    for (std::string& entry : block->env) {
        block->envp.push_back(entry.data());
    }
    block->envp.push_back(nullptr);
    if (!sockets.empty()) {
        std::string& pid_entry = block->env[block->env.size() - 1 - extra_fds.size()];
        block->pid_digits = pid_entry.data() + kListenPid.size() + 1;
    }
    return ChildExec(std::move(block));
}

void ChildExec::exec_in_child() noexcept {
    Block& b = *block_;
    if (b.pid_digits != nullptr) {
        write_decimal(static_cast<long>(::getpid()), b.pid_digits);
    }
    const int count = static_cast<int>(b.sources.size());
    const int end = kListenFdsStart + count;
    // Two passes, because a source may sit where another one must go: first every source is
    // copied above the target range (close-on-exec, so the copies vanish at execve), then the
    // copies are put in place. dup2() leaves FD_CLOEXEC off on the target.
    for (int i = 0; i < count; ++i) {
        b.temps[static_cast<std::size_t>(i)] =
            ::fcntl(b.sources[static_cast<std::size_t>(i)], F_DUPFD_CLOEXEC, end);
        if (b.temps[static_cast<std::size_t>(i)] < 0) {
            child_fail("fcntl(F_DUPFD_CLOEXEC) of a passed descriptor");
        }
    }
    for (int i = 0; i < count; ++i) {
        if (::dup2(b.temps[static_cast<std::size_t>(i)], kListenFdsStart + i) < 0) {
            child_fail("dup2 of a passed descriptor");
        }
    }
    // The parent blocks its control signals (they are read through a signalfd) and ignores
    // SIGPIPE; both survive execve(). The new program starts as a service manager starts it.
    sigset_t none;
    sigemptyset(&none);
    if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) {
        child_fail("sigprocmask");
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    if (::sigaction(SIGPIPE, &dfl, nullptr) != 0) {
        child_fail("sigaction(SIGPIPE)");
    }
    ::execve(b.path.c_str(), b.argv.data(), b.envp.data());
    child_fail("execve");
}

}  // namespace blitz::net

#include "server/notify.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include <unistd.h>

namespace blitz::server {

namespace {

// systemd reads at most PIPE_BUF (4096) bytes of a notification; the fixed lines need far
// less, so the status gets what remains of a conservative budget.
constexpr std::size_t kMaxStatusBytes = 2048;

// STATUS= is one line of UTF-8 (systemd ignores a status that is not valid UTF-8): control
// characters become spaces, and a cut never splits a multi-byte sequence.
void append_status(std::string& out, std::string_view status) {
    std::size_t n = status.size();
    if (n > kMaxStatusBytes) {
        n = kMaxStatusBytes;
        while (n > 0 && (static_cast<unsigned char>(status[n]) & 0xC0) == 0x80) {
            --n;  // status[n] continues a sequence: cut before the sequence starts
        }
    }
    out.append("STATUS=");
    for (char c : status.substr(0, n)) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
    }
}

}  // namespace

Result<Notifier, std::string> Notifier::from_environment() {
    const char* value = std::getenv("NOTIFY_SOCKET");
    if (value == nullptr || *value == '\0') {
        return Notifier{};
    }
    return for_address(value);
}

Result<Notifier, std::string> Notifier::for_address(std::string_view address) {
    Notifier n;
    const std::size_t room = sizeof n.address_.sun_path;
    if (address.size() < 2 || (address.front() != '/' && address.front() != '@')) {
        return fail("NOTIFY_SOCKET=\"" + std::string(address) +
                    "\": expected an absolute path or @abstract-name");
    }
    if (address.find('\0') != std::string_view::npos) {
        return fail(std::string("NOTIFY_SOCKET holds a NUL byte"));
    }
    n.address_.sun_family = AF_UNIX;
    if (address.front() == '@') {
        // Linux abstract namespace: a leading NUL, then the name; the length covers exactly
        // the name (no terminator), as the manager bound it.
        if (address.size() > room) {
            return fail("NOTIFY_SOCKET=\"" + std::string(address) + "\": name too long");
        }
        n.address_.sun_path[0] = '\0';
        std::memcpy(n.address_.sun_path + 1, address.data() + 1, address.size() - 1);
        n.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
    } else {
        if (address.size() >= room) {
            return fail("NOTIFY_SOCKET=\"" + std::string(address) + "\": path too long");
        }
        std::memcpy(n.address_.sun_path, address.data(), address.size());
        n.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size() + 1);
    }
    return n;
}

Result<void, std::string> Notifier::send(std::string_view state) const {
    if (!enabled()) {
        return {};
    }
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return fail(std::string("sd_notify: socket: ") + std::strerror(errno));
    }
    // The manager learns who sent it from SO_PASSCRED on its side; nothing to attach here.
    const ssize_t sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                                  reinterpret_cast<const sockaddr*>(&address_), length_);
    const int err = errno;
    ::close(fd);
    if (sent < 0) {
        return fail("sd_notify to " + describe() + ": " + std::strerror(err));
    }
    if (static_cast<std::size_t>(sent) != state.size()) {
        return fail("sd_notify to " + describe() + ": datagram truncated");
    }
    return {};
}

Result<void, std::string> Notifier::send_with_status(std::string state,
                                                     std::string_view status) const {
    if (!enabled()) {
        return {};
    }
    append_status(state, status);
    return send(state);
}

Result<void, std::string> Notifier::ready(std::string_view status) const {
    return send_with_status("READY=1\nMAINPID=" + std::to_string(::getpid()) + "\n", status);
}

Result<void, std::string> Notifier::reloading(std::string_view status) const {
    // sd_notify(3): RELOADING=1 carries MONOTONIC_USEC so the manager can tell this reload from
    // one that started before it sent its signal.
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1000000ULL +
                      static_cast<unsigned long long>(now.tv_nsec) / 1000ULL;
    return send_with_status("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\n", status);
}

Result<void, std::string> Notifier::stopping(std::string_view status) const {
    return send_with_status("STOPPING=1\n", status);
}

Result<void, std::string> Notifier::main_pid(pid_t pid, std::string_view status) const {
    return send_with_status("MAINPID=" + std::to_string(pid) + "\n", status);
}

Result<void, std::string> Notifier::status(std::string_view status) const {
    return send_with_status({}, status);
}

std::string Notifier::describe() const {
    if (!enabled()) {
        return "(none)";
    }
    const std::size_t path_len = length_ - offsetof(sockaddr_un, sun_path);
    // Built by append: GCC 12 at -O3 misreads `"@" + std::string(...)` as an overlapping copy
    // (-Wrestrict).
    std::string text;
    if (address_.sun_path[0] == '\0') {
        text.push_back('@');
        text.append(address_.sun_path + 1, path_len - 1);
    } else {
        text.append(address_.sun_path, path_len - 1);
    }
    return text;
}

}  // namespace blitz::server

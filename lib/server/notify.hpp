#pragma once

#include <string>
#include <string_view>

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <blitz/result.hpp>

namespace blitz::server {

/// Service-manager notifications (sd_notify(3)) without libsystemd: one datagram of
/// newline-separated `KEY=VALUE` lines to the AF_UNIX socket named by NOTIFY_SOCKET.
///
/// NOTIFY_SOCKET stays in the environment on purpose: the process a binary upgrade starts
/// must inherit it to send its own READY=1 and MAINPID= (the service manager then tracks the
/// new process as the service's main process).
///
/// A Notifier built without a socket is disabled: every call succeeds and sends nothing, so
/// callers need no "under systemd?" branches.
///
/// Thread: any; each send opens its own socket. Lifetime: value type.
class Notifier {
public:
    /// Disabled.
    Notifier() = default;

    /// From NOTIFY_SOCKET: unset or empty gives a disabled Notifier; a value that is neither an
    /// absolute path nor `@abstract-name` (e.g. systemd's `vsock:` form) is an error.
    static Result<Notifier, std::string> from_environment();
    /// For an explicit address in NOTIFY_SOCKET syntax (`/run/x/notify` or `@name`).
    static Result<Notifier, std::string> for_address(std::string_view address);

    bool enabled() const noexcept { return length_ != 0; }

    /// Sends `state` as one datagram (non-blocking; a full receive queue is an error, never a
    /// wait). Disabled: does nothing.
    Result<void, std::string> send(std::string_view state) const;

    /// `READY=1`, `MAINPID=<getpid()>`, `STATUS=<status>`: startup, or a reload, is complete.
    /// MAINPID lets the process a binary upgrade started take over as the main process.
    Result<void, std::string> ready(std::string_view status) const;
    /// `RELOADING=1`, `MONOTONIC_USEC=<CLOCK_MONOTONIC now, µs>`, `STATUS=<status>`; follow it
    /// with ready() when the reload is over, whatever its outcome.
    Result<void, std::string> reloading(std::string_view status) const;
    /// `STOPPING=1`, `STATUS=<status>`: draining has started. Never from a process that a
    /// binary upgrade replaced: the service manager would stop the whole service.
    Result<void, std::string> stopping(std::string_view status) const;
    /// `MAINPID=<pid>`, `STATUS=<status>`: names another process of the service as the main one.
    Result<void, std::string> main_pid(pid_t pid, std::string_view status) const;
    /// `STATUS=<status>` alone.
    Result<void, std::string> status(std::string_view status) const;

    /// The address in NOTIFY_SOCKET syntax, for log lines.
    std::string describe() const;

private:
    Result<void, std::string> send_with_status(std::string state, std::string_view status) const;

    sockaddr_un address_{};
    socklen_t length_ = 0;
};

}  // namespace blitz::server

#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <blitz/result.hpp>

namespace blitz::accesslog {

/// One open log descriptor. Closed when the last holder lets go, so a reactor writing to the
/// file from before a reopen finishes into that file.
///
/// Thread: immutable; share between threads. Lifetime: shared (std::shared_ptr) by the Sink
/// and the reactors writing to it; the destructor closes the descriptor (never fd 2).
class FileHandle {
 public:
    /// Takes `fd`; closes it on destruction when `owned`.
    FileHandle(int fd, bool owned) noexcept : fd_(fd), owned_(owned) {}
    ~FileHandle();
    FileHandle(const FileHandle&) = delete;
    FileHandle& operator=(const FileHandle&) = delete;

    /// The descriptor, open for as long as this handle lives.
    int fd() const noexcept { return fd_; }

 private:
    int fd_;
    bool owned_;
};

/// The destination of one access-log path, shared by every reactor (and every listener or
/// route) logging to it. "stderr" means descriptor 2; anything else is a file opened
/// O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC, mode 0640, relative paths from the working directory.
///
/// Thread: every member is thread-safe. Lifetime: shared (std::shared_ptr) by the configs that
/// name the path; reactors hold the FileHandle they write to, not the Sink.
class Sink {
 public:
    /// Opens `path`. The error text names the path and the system's reason.
    static Result<std::shared_ptr<Sink>, std::string> open(std::string_view path);

    Sink(const Sink&) = delete;
    Sink& operator=(const Sink&) = delete;

    /// Opens the path again (log rotation: the old file was renamed) and publishes the new
    /// handle; the old descriptor closes once no reactor holds it. On failure the old handle
    /// stays current. A no-op for stderr.
    Result<void, std::string> reopen();

    /// The handle to write to; take it when starting a write and hold it until its completion.
    std::shared_ptr<FileHandle> current() const;

    /// The path as configured ("stderr" for descriptor 2).
    const std::string& path() const noexcept { return path_; }
    /// True for "stderr".
    bool is_stderr() const noexcept { return stderr_; }

 private:
    Sink(std::string path, std::shared_ptr<FileHandle> handle, bool is_stderr);

    std::string path_;
    bool stderr_;
    mutable std::mutex mu_;
    std::shared_ptr<FileHandle> handle_;
};

/// One Sink per distinct path, kept while any config uses it, so a reload that keeps a path
/// keeps its descriptor and SIGUSR1 reopens each file once.
///
/// Thread: every member is thread-safe. Lifetime: owned by the server; Sinks it handed out may
/// outlive it.
class SinkRegistry {
 public:
    /// The Sink for `path` (the existing one when it is still in use), or why it cannot be
    /// opened. Paths are compared as written.
    Result<std::shared_ptr<Sink>, std::string> get(std::string_view path);

    /// Reopens every live Sink; returns the errors (empty when all reopened).
    std::vector<std::string> reopen_all();

 private:
    std::mutex mu_;
    std::map<std::string, std::weak_ptr<Sink>, std::less<>> sinks_;
};

}  // namespace blitz::accesslog

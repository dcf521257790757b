#include "accesslog/sink.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace blitz::accesslog {

namespace {

constexpr std::string_view kStderr = "stderr";

Result<std::shared_ptr<FileHandle>, std::string> open_file(const std::string& path) {
    int fd;
    do {
        fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return fail("access log: cannot open '" + path +
                    "': " + std::error_code(errno, std::generic_category()).message());
    }
    return std::make_shared<FileHandle>(fd, true);
}

}  // namespace

FileHandle::~FileHandle() {
    if (owned_) {
        ::close(fd_);
    }
}

Sink::Sink(std::string path, std::shared_ptr<FileHandle> handle, bool is_stderr)
    : path_(std::move(path)), stderr_(is_stderr), handle_(std::move(handle)) {}

Result<std::shared_ptr<Sink>, std::string> Sink::open(std::string_view path) {
    if (path.empty()) {
        return fail(std::string("access log: empty path"));
    }
    if (path == kStderr) {
        return std::shared_ptr<Sink>(
            new Sink(std::string(path), std::make_shared<FileHandle>(STDERR_FILENO, false), true));
    }
    std::string p(path);
    auto handle = open_file(p);
    if (!handle) {
        return fail(handle.error());
    }
    return std::shared_ptr<Sink>(new Sink(std::move(p), std::move(*handle), false));
}

Result<void, std::string> Sink::reopen() {
    if (stderr_) {
        return {};
    }
    // Open outside the lock: a slow filesystem must not stall reactors taking the handle.
    auto handle = open_file(path_);
    if (!handle) {
        return fail(handle.error());
    }
    std::shared_ptr<FileHandle> old;
    {
        std::lock_guard lock(mu_);
        old = std::exchange(handle_, std::move(*handle));
    }
    // `old` is released here, outside the lock; its descriptor closes now or when the last
    // reactor writing to it lets go.
    return {};
}

std::shared_ptr<FileHandle> Sink::current() const {
    std::lock_guard lock(mu_);
    return handle_;
}

Result<std::shared_ptr<Sink>, std::string> SinkRegistry::get(std::string_view path) {
    std::lock_guard lock(mu_);
    auto it = sinks_.find(path);
    if (it != sinks_.end()) {
        if (auto live = it->second.lock()) {
            return live;
        }
    }
    auto sink = Sink::open(path);
    if (!sink) {
        return sink;
    }
    if (it != sinks_.end()) {
        it->second = *sink;
    } else {
        sinks_.emplace(std::string(path), *sink);
    }
    return sink;
}

std::vector<std::string> SinkRegistry::reopen_all() {
    std::vector<std::shared_ptr<Sink>> live;
    {
        std::lock_guard lock(mu_);
        for (auto it = sinks_.begin(); it != sinks_.end();) {
            if (auto s = it->second.lock()) {
                live.push_back(std::move(s));
                ++it;
            } else {
                it = sinks_.erase(it);
            }
        }
    }
    std::vector<std::string> errors;
    for (const auto& s : live) {
        if (auto r = s->reopen(); !r) {
            errors.push_back(r.error());
        }
    }
    return errors;
}

}  // namespace blitz::accesslog

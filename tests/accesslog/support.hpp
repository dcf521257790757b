#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <string>

namespace blitz::accesslog::test {

/// The whole file at `path`, or "<missing>" when it cannot be opened.
inline std::string slurp(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return "<missing>";
    }
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) {
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

}  // namespace blitz::accesslog::test

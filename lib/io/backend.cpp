#include "io/backend.hpp"

#include <cstring>

namespace blitz::io {

Result<std::unique_ptr<Backend>, std::string> Backend::create(const BackendOptions& options,
                                                              std::string& why) {
    int err = 0;
    if (options.kind != blitz::Backend::Epoll) {
        if (auto b = make_uring_backend(options, err)) {
            return b;
        }
        why = std::string("io_uring unavailable: ") + std::strerror(err);
        if (options.kind == blitz::Backend::IoUring) {
            return fail(why);
        }
    }
    if (auto b = make_epoll_backend(options, err)) {
        return b;
    }
    return fail(std::string("epoll backend: ") + std::strerror(err));
}

}  // namespace blitz::io

namespace blitz {

const char* backend_name(Backend b) noexcept {
    switch (b) {
        case Backend::Auto: return "auto";
        case Backend::IoUring: return "io_uring";
        case Backend::Epoll: return "epoll";
    }
    return "?";
}

}  // namespace blitz

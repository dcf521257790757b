#include <blitz/result.hpp>

#include <cstdio>
#include <cstring>

namespace blitz {

const char* describe(const Error& e, char* buf, std::size_t len) noexcept {
    if (len == 0) {
        return buf;
    }
    if (e.sys_errno != 0) {
        char why[128];
        // The GNU strerror_r returns the text (in `why` or a static string).
        const char* text = strerror_r(e.sys_errno, why, sizeof why);
        std::snprintf(buf, len, "%s: %s", e.context, text);
    } else {
        std::snprintf(buf, len, "%s", e.context);
    }
    return buf;
}

}  // namespace blitz

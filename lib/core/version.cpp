#include <blitz/version.hpp>

namespace blitz {

const char* version() noexcept { return BLITZ_VERSION; }

}  // namespace blitz

#pragma once

#include <string>
#include <string_view>

#include <blitz/config.hpp>
#include <blitz/result.hpp>

/// The loader's entry points with the file rules spelled out: parse_config() and load_config()
/// call these, and tests use them to read configs that name files of another machine.
namespace blitz::config {

/// How the files a config names (certificates, keys, OCSP responses, CA bundles) are treated.
struct FileRules {
    /// A relative file name is joined to this directory; empty leaves it as written (relative
    /// to the working directory of whoever opens it).
    std::string base_dir;
    /// Open every named file while loading, so a missing, unreadable or empty one is an error
    /// at the key that names it, and build each TLS listener's context once to judge what the
    /// files hold. Off only where the files are known to be absent (tests of example configs);
    /// upstream TLS contexts are built by Upstream::make() either way.
    bool check = true;
};

/// parse_config() with explicit file rules.
/// `previous`: the running configuration when reloading (see load_config()).
Result<Config, ConfigError> parse(std::string_view json, std::string_view source, FileRules files,
                                  const Config* previous = nullptr);

/// Reads `path` and parses it with relative file names resolved against the directory of
/// `path` (as named, symbolic links not followed), made absolute.
Result<Config, ConfigError> load(const std::string& path, bool check_files, const Config* previous = nullptr);

}  // namespace blitz::config

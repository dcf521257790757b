#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <blitz/listener.hpp>
#include <blitz/log.hpp>
#include <blitz/result.hpp>
#include <blitz/router.hpp>
#include <blitz/server.hpp>
#include <blitz/upstream.hpp>

namespace blitz {

/// Where and why a configuration document was refused.
struct ConfigError {
    std::string source;   ///< file name, or "<config>"
    std::string path;     ///< JSON path of the offending value, e.g. "$.routes[2].match.path"
    int line = 0;         ///< 1-based; 0 when unknown
    int column = 0;       ///< 1-based; 0 when unknown
    std::string message;  ///< what was expected
    /// "blitz.json:12:7: $.routes[2].match.path: expected a string starting with '/'"
    std::string to_string() const;
};

/// A whole configuration, validated, as public API values (docs/config.md lists every key).
struct Config {
    ServerOptions server;
    std::vector<ListenerOptions> listeners;
    Router router;
    /// Every upstream of "upstreams", in document order, made with Upstream::make(); proxy
    /// routes in `router` share them.
    std::vector<std::shared_ptr<Upstream>> upstreams;
    LogLevel log_level = LogLevel::Info;
    /// `reload.watch`: reload when the config file or a file it names changes.
    bool watch = false;
    /// Files the configuration names (certificates, keys, CA bundles, OCSP responses), with
    /// relative names resolved, in document order.
    std::vector<std::string> files;
    /// When load_config() read the file (the running configuration's files written since are
    /// read again on reload).
    std::filesystem::file_time_type loaded_at{};
    /// The document as written (before `${VAR}` expansion), pretty-printed, with the values of
    /// secret keys (`token`, `password`, `secret`, ...) replaced by "[redacted]": what the admin
    /// listener's GET /config shows (Server::set_config_document).
    std::string redacted;
};

/// Parses a JSON configuration. Every string value may use `${VAR}` and `${VAR:-default}`
/// (environment); a numeric or boolean key also accepts a string that is exactly one such
/// expression. The whole document is validated before anything is returned.
Result<Config, ConfigError> parse_config(std::string_view json,
                                         std::string_view source = "<config>");
/// Reads `path` and parses it with parse_config(). With `previous` (the configuration running
/// now, when reloading), an upstream whose name and definition are unchanged is the previous
/// Upstream object, so its connection pools, health and outlier state carry over.
Result<Config, ConfigError> load_config(const std::string& path, const Config* previous = nullptr);

}  // namespace blitz

#pragma once

#include <string_view>
#include <vector>

namespace blitz::config {

/// The objects of the configuration schema that have a fixed set of keys (header maps such as
/// `respond.headers` take any header name and are not listed).
enum class ObjectKind {
    Root,         ///< the document
    Log,          ///< "log"
    Buffers,      ///< "buffers"
    Limits,       ///< "limits", top-level and per listener
    Listener,     ///< an element of "listeners"
    Route,        ///< an element of "routes"
    Match,        ///< "routes[].match"
    Respond,      ///< "routes[].respond"
    Filter,       ///< an element of "routes[].filters"
    HeaderEdits,  ///< "filters[].request" and "filters[].response"
};

/// Every ObjectKind, for tests that walk them all.
inline constexpr ObjectKind kObjectKinds[] = {
    ObjectKind::Root,     ObjectKind::Log,         ObjectKind::Buffers, ObjectKind::Limits,
    ObjectKind::Listener, ObjectKind::Route,       ObjectKind::Match,   ObjectKind::Respond,
    ObjectKind::Filter,   ObjectKind::HeaderEdits,
};

/// The keys parse_config() accepts in an object of `kind`, in documentation order. They come
/// from the parser's own dispatch tables, so docs/config.schema.json can be held to exactly
/// these keys by a test.
///
/// Thread: any. Lifetime: the views point to static storage.
std::vector<std::string_view> accepted_keys(ObjectKind kind);

}  // namespace blitz::config

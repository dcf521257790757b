#pragma once

#include <string>
#include <utility>
#include <vector>

#include <blitz/exchange.hpp>
#include <blitz/filter.hpp>

/// Built-in filters, usable from C++ and from the config ("filters": [{"type": ...}]).
namespace blitz::filters {

/// Header edits applied to one direction of an exchange.
struct HeaderEdits {
    std::vector<std::pair<std::string, std::string>> add;  ///< appended
    std::vector<std::pair<std::string, std::string>> set;  ///< replace all of that name
    std::vector<std::string> remove;                       ///< every field of that name
    bool empty() const noexcept { return add.empty() && set.empty() && remove.empty(); }
};

/// Adds, sets and removes request and response headers (config type "headers"). Request edits
/// are visible to later filters and the handler; response edits apply to every response of the
/// route, local ones included. Strings are owned by the filter: no copy per request.
///
/// Thread: shared, immutable. Lifetime: shared_ptr held by routes.
class Headers final : public Filter {
public:
    Headers(HeaderEdits request, HeaderEdits response);
    Flow on_request_headers(Exchange& ex) override;
    Flow on_response_headers(Exchange& ex) override;

private:
    HeaderEdits request_;
    HeaderEdits response_;
};

}  // namespace blitz::filters

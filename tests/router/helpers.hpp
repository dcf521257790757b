#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include <blitz/http.hpp>
#include <blitz/router.hpp>

namespace router_test {

/// A blitz::Request whose views point into strings it owns.
class TestRequest {
public:
    using Fields = std::vector<std::pair<std::string, std::string>>;

    explicit TestRequest(std::string authority, std::string path, std::string query = {},
                         Fields fields = {}, blitz::Method method = blitz::Method::Get)
        : authority_(std::move(authority)),
          path_(std::move(path)),
          query_(std::move(query)),
          fields_(std::move(fields)) {
        for (const auto& [name, value] : fields_) {
            headers_.push_back(blitz::Header{name, value});
        }
        request_.method = method;
        request_.authority = authority_;
        request_.path = path_;
        request_.query = query_;
        request_.headers = blitz::Headers(headers_);
    }
    TestRequest(const TestRequest&) = delete;
    TestRequest& operator=(const TestRequest&) = delete;

    const blitz::Request& operator*() const noexcept { return request_; }
    blitz::Request& get() noexcept { return request_; }

private:
    std::string authority_;
    std::string path_;
    std::string query_;
    Fields fields_;
    std::vector<blitz::Header> headers_;
    blitz::Request request_;
};

inline std::shared_ptr<const blitz::RouteTable> freeze_ok(const blitz::Router& router) {
    auto table = router.freeze();
    INFO((table ? std::string() : table.error()));
    REQUIRE(table);
    return *table;
}

inline std::string freeze_error(const blitz::Router& router) {
    auto table = router.freeze();
    REQUIRE_FALSE(table);
    return table.error();
}

/// The name of the route that matches `request`, or "" for none.
inline std::string matched(const blitz::RouteTable& table, const TestRequest& request) {
    const blitz::RouteMatch m = table.match(*request);
    return m.route != nullptr ? m.route->name : std::string();
}

}  // namespace router_test

#pragma once

#include <span>
#include <string_view>

#include <blitz/exchange.hpp>
#include <blitz/router.hpp>

// What every codec's connection answers the same way (server/connection.cpp).
namespace blitz::server {

/// The Allow field value of a 405 ("GET, HEAD"), written into `buf`.
///
/// Thread: any. Lifetime: a view into `buf`.
std::string_view allow_list(const MethodSet& allowed, std::span<char, 128> buf) noexcept;

/// Fills the response of a route answered from the config: its redirect or direct response.
///
/// Thread: the exchange's reactor. Lifetime: the response views config strings and the arena.
void respond_from_route(const Route& route, Exchange& ex);

}  // namespace blitz::server

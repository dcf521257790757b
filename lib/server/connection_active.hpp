#pragma once

#include <blitz/arena.hpp>
#include <blitz/exchange.hpp>

#include "core/block_pool.hpp"
#include "http1/parser.hpp"
#include "server/connection.hpp"

namespace blitz::server {

/// The exchange in progress on a connection, with its arena. Constructed per request in
/// memory the reactor recycles.
struct Connection::Active {
    Active(detail::ExchangeDriver& driver, detail::BlockPool& pool) noexcept
        : arena(&pool), ex(driver, arena) {}

    Arena arena;
    Exchange ex;
    ProxyState* proxy = nullptr;
    Phase phase = Phase::RequestHeaders;
    std::uint16_t filter_index = 0;
    bool keep_alive = true;
    bool expect_continue = false;
    bool is_head = false;
    bool body_done = true;
    bool body_started = false;
    bool wants_body = false;
    bool continue_sent = false;
    bool paused = false;
    bool in_advance = false;
    bool resume_requested = false;
    bool detached = false;
    bool aborted = false;
    std::uint64_t body_limit = 0;
    std::uint64_t body_seen = 0;
    std::uint64_t started_us = 0;  // the reactor's clock when the request head was complete
    std::uint64_t queued_at_start = 0;  // Connection::queued_ then: this exchange's bytes sent follow
    std::uint32_t head_bytes = 0;
    std::string_view client_address;
    ExchangeObs obs;
    // A proxied response's head while its filters run (Phase::ProxyHead), and what arrives
    // behind it while a filter holds it.
    std::string_view upstream_reason;
    std::uint64_t upstream_length = 0;
    SendQueue* held = nullptr;  // body bytes
    http1::Framing upstream_framing{};
    bool upgrade = false;
    bool held_end = false;    // the upstream's response ended (held_clean: completely)
    bool held_clean = false;
};

}  // namespace blitz::server

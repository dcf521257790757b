#pragma once

/// Umbrella header: includes the whole public API and nothing else.
#include <blitz/arena.hpp>
#include <blitz/config.hpp>
#include <blitz/exchange.hpp>
#include <blitz/filter.hpp>
#include <blitz/filters.hpp>
#include <blitz/http.hpp>
#include <blitz/listener.hpp>
#include <blitz/log.hpp>
#include <blitz/observe.hpp>
#include <blitz/reactor.hpp>
#include <blitz/result.hpp>
#include <blitz/router.hpp>
#include <blitz/server.hpp>
#include <blitz/tls.hpp>
#include <blitz/upstream.hpp>
#include <blitz/version.hpp>

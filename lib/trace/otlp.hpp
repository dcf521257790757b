#pragma once

#include <span>
#include <string>
#include <string_view>

#include "trace/span.hpp"

namespace blitz::trace {

/// Appends to `out` one OTLP ExportTraceServiceRequest in the OTLP/HTTP JSON encoding
/// (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): one resourceSpans
/// with resource attributes service.name = `service_name`, telemetry.sdk.name "blitz" and
/// telemetry.sdk.language "cpp", holding one scopeSpans (scope "blitz") with `spans`. Ids are
/// lowercase hex strings, times decimal strings of unix nanoseconds, kind and status code
/// integers, intValue attributes decimal strings. Text that is not valid UTF-8 has each bad
/// byte replaced by U+FFFD, so hostile request bytes cannot break the document.
///
/// Thread: any. Lifetime: reads the spans during the call only.
void encode_otlp_json(std::string& out, std::string_view service_name, std::span<const Span> spans);

}  // namespace blitz::trace

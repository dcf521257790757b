#pragma once

#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

/// Error values and `Result<T>`, the return type of every fallible libblitz call.
/// libblitz never throws: config-time and data-plane calls alike report through these.
namespace blitz {

/// What went wrong, independent of where.
enum class Errc : std::uint16_t {
    InvalidArgument,  ///< a caller passed something malformed (address, option)
    Config,           ///< a configuration document is invalid
    System,           ///< a system call failed; see Error::sys_errno
    AddressInUse,     ///< bind() found the address taken
    NotSupported,     ///< the kernel or build lacks a feature
    Protocol,         ///< a peer violated the protocol
    Limit,            ///< a configured limit was reached
    Timeout,          ///< a deadline passed
    Closed,           ///< the peer or the object is gone
};

/// Who caused the error.
enum class ErrorSource : std::uint8_t { Local, Config, System, Downstream, Upstream };

/// A small, trivially copyable error. `context` is a static string naming the operation.
struct Error {
    Errc code = Errc::System;
    ErrorSource source = ErrorSource::Local;
    bool retryable = false;
    int sys_errno = 0;
    const char* context = "";
};
static_assert(std::is_trivially_copyable_v<Error>);

/// Human-readable "context: reason" text for an Error (errno text included when set).
const char* describe(const Error& e, char* buf, std::size_t len) noexcept;

/// Wraps an error for construction of a failed Result: `return fail(Error{...});`.
template <class E>
struct Unexpected {
    E error;
};
template <class E>
Unexpected<std::decay_t<E>> fail(E&& e) {
    return {std::forward<E>(e)};
}

/// Holds either a T or an E, shaped like C++23 `std::expected`.
///
/// Thread: value type. Lifetime: owns its contents.
template <class T, class E = Error>
class [[nodiscard]] Result {
public:
    Result(const T& v) : ok_(true) { new (&value_) T(v); }  // NOLINT(google-explicit-constructor)
    Result(T&& v) : ok_(true) { new (&value_) T(std::move(v)); }  // NOLINT
    template <class G>
    Result(Unexpected<G> u) : ok_(false) {  // NOLINT
        new (&error_) E(std::move(u.error));
    }
    Result(const Result& o) : ok_(o.ok_) {
        if (ok_) {
            new (&value_) T(o.value_);
        } else {
            new (&error_) E(o.error_);
        }
    }
    Result(Result&& o) noexcept : ok_(o.ok_) {
        if (ok_) {
            new (&value_) T(std::move(o.value_));
        } else {
            new (&error_) E(std::move(o.error_));
        }
    }
    Result& operator=(Result o) noexcept {
        this->~Result();
        new (this) Result(std::move(o));
        return *this;
    }
    ~Result() {
        if (ok_) {
            value_.~T();
        } else {
            error_.~E();
        }
    }

    bool has_value() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    T& value() & { return value_; }
    const T& value() const& { return value_; }
    T&& value() && { return std::move(value_); }
    T& operator*() & { return value_; }
    const T& operator*() const& { return value_; }
    T* operator->() { return &value_; }
    const T* operator->() const { return &value_; }
    const E& error() const { return error_; }

private:
    union {
        T value_;
        E error_;
    };
    bool ok_;
};

/// A Result with no value: success or an error.
template <class E>
class [[nodiscard]] Result<void, E> {
public:
    Result() = default;
    template <class G>
    Result(Unexpected<G> u) : ok_(false), error_(std::move(u.error)) {}  // NOLINT
    bool has_value() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    const E& error() const { return error_; }

private:
    bool ok_ = true;
    E error_{};
};

}  // namespace blitz

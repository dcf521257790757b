#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <sys/socket.h>
#include <sys/uio.h>

#include <blitz/reactor.hpp>
#include <blitz/result.hpp>

#include "io/buffer_pool.hpp"

/// The reactor's I/O backend: io_uring, or epoll with the same completion semantics. This is the
/// only code that issues socket syscalls for the data path; everything above sees completions.
namespace blitz::io {

/// What an operation is; packed into the top byte of user_data.
enum class Op : std::uint8_t { None = 0, Accept, Recv, Send, Poll, Connect, UpRecv, UpSend, LogWrite };

/// user_data = op (8 bits) | generation (24 bits) | slot (32 bits). A completion whose
/// generation no longer matches its slot's owner is stale and dropped (its buffer recycled).
constexpr std::uint64_t pack(Op op, std::uint32_t generation, std::uint32_t slot) noexcept {
    return (std::uint64_t{static_cast<std::uint8_t>(op)} << 56) |
           (std::uint64_t{generation & 0xFFFFFFu} << 32) | slot;
}
constexpr Op op_of(std::uint64_t ud) noexcept { return static_cast<Op>(ud >> 56); }
constexpr std::uint32_t generation_of(std::uint64_t ud) noexcept {
    return static_cast<std::uint32_t>(ud >> 32) & 0xFFFFFFu;
}
constexpr std::uint32_t slot_of(std::uint64_t ud) noexcept { return static_cast<std::uint32_t>(ud); }

/// One finished operation (or one shot of a multishot one).
struct Completion {
    std::uint64_t user_data = 0;
    /// Bytes, a new fd (accept), or -errno. 0 on Recv means the peer closed.
    std::int32_t res = 0;
    /// The operation stays armed and will complete again (multishot).
    bool more = false;
    /// Receive buffer holding the data (Recv with res > 0), else -1. The handler owns it and
    /// gives it back with BufferPool::release().
    std::int32_t buffer = -1;
};

/// Receives completions from Backend::run().
class CompletionHandler {
public:
    virtual void on_completion(const Completion& c) = 0;

protected:
    ~CompletionHandler() = default;
};

struct BackendOptions {
    blitz::Backend kind = blitz::Backend::Auto;
    std::uint32_t recv_buffer_bytes = 16 * 1024;
    std::uint32_t max_recv_buffers = 4096;
    std::uint32_t ring_entries = 4096;
};

/// Thread: reactor-local; create it on the thread that runs it (io_uring SINGLE_ISSUER).
/// Lifetime: owned by the reactor; destroying it cancels what is in flight.
///
/// Semantics shared by both implementations:
/// - accept(multishot) completes once per accepted fd; multishot stays armed until cancelled
///   or an error ends it (`more` false). Single-shot completes once.
/// - recv is always multishot into pool buffers: `res > 0` with a buffer, `0` = EOF (ends it),
///   `-ENOBUFS` = pool exhausted (ends it; re-arm later), other `-errno` ends it.
/// - send completes once with the bytes written (possibly fewer than asked: send the rest) or
///   -errno. The iovecs and what they point to must stay valid until then. A closed peer gives
///   -EPIPE, never SIGPIPE.
/// - connect completes once with 0 or -errno for a non-blocking socket; `addr` must stay valid
///   until it completes.
/// - write completes once with the bytes written (possibly fewer: write the rest) or -errno;
///   it is for regular files and stderr (access logs). The iovecs and what they point to must
///   stay valid until then. Written at the file's current position, which for an O_APPEND
///   descriptor is its end at the time of the write.
/// - poll_in is multishot readiness for eventfd/signalfd-like descriptors.
/// - cancel(fd) ends every operation on fd: each completes (with -ECANCELED or its last
///   result) without `more`. Completions never run inside the call that submitted them.
class Backend {
public:
    virtual ~Backend() = default;

    /// Creates the requested backend; with Auto, io_uring unless the kernel refuses it (seccomp,
    /// io_uring_disabled, ENOSYS/EPERM), then epoll. `why` receives the reason for a fallback.
    static Result<std::unique_ptr<Backend>, std::string> create(const BackendOptions& options,
                                                                 std::string& why);

    virtual blitz::Backend kind() const noexcept = 0;
    virtual void accept(int fd, std::uint64_t ud, bool multishot) = 0;
    virtual void recv(int fd, std::uint64_t ud) = 0;
    virtual void send(int fd, const iovec* iov, unsigned count, std::uint64_t ud) = 0;
    /// Writes `count` iovecs to `fd` at its current position (regular files cannot be polled:
    /// io_uring runs the write in a kernel worker; epoll writes synchronously, which a file
    /// absorbs in the page cache, and delivers the result from run() like every completion).
    virtual void write(int fd, const iovec* iov, unsigned count, std::uint64_t ud) = 0;
    virtual void poll_in(int fd, std::uint64_t ud) = 0;
    virtual void connect(int fd, const sockaddr* addr, socklen_t len, std::uint64_t ud) = 0;
    virtual void cancel(int fd) = 0;
    /// Ends the multishot recv submitted with `ud` on `fd` (it completes without `more`),
    /// leaving other operations on fd alone: how a connection stops reading under back-pressure.
    virtual void cancel_recv(int fd, std::uint64_t ud) = 0;
    /// Hands what is queued to the kernel now, without waiting: for a cancellation that must
    /// take effect before another thread closes the descriptor (a cancel by descriptor that
    /// reaches the kernel after the close finds nothing, and the operation keeps the socket).
    virtual void submit() = 0;
    /// Submits what is queued, waits up to timeout_ms (-1: no limit) for at least one
    /// completion, and dispatches every completion available. Returns the number dispatched.
    virtual int run(int timeout_ms, CompletionHandler& handler) = 0;

    BufferPool& buffers() noexcept { return buffers_; }

protected:
    explicit Backend(const BackendOptions& o) : buffers_(o.recv_buffer_bytes, o.max_recv_buffers) {}
    BufferPool buffers_;
};

std::unique_ptr<Backend> make_uring_backend(const BackendOptions& options, int& error);
std::unique_ptr<Backend> make_epoll_backend(const BackendOptions& options, int& error);

}  // namespace blitz::io

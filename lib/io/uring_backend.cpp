#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef BLITZ_HAVE_VALGRIND_H
#include <valgrind/valgrind.h>
#endif

#include <cerrno>

#include "io/backend.hpp"

namespace blitz::io {

namespace {

#ifdef BLITZ_HAVE_VALGRIND_H
constexpr int kValgrindWaitMs = 10;
#endif

class UringBackend final : public Backend {
public:
    explicit UringBackend(const BackendOptions& o) : Backend(o) {}
    ~UringBackend() override {
        if (initialised_) {
            io_uring_queue_exit(&ring_);
        }
    }

    int init(const BackendOptions& o) noexcept {
        io_uring_params p{};
        // SINGLE_ISSUER + DEFER_TASKRUN: completions are produced only when this thread enters
        // the kernel to wait, which batches task work and keeps it off other threads.
        p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                  IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
        p.cq_entries = o.ring_entries * 4;
        int rc = io_uring_queue_init_params(o.ring_entries, &ring_, &p);
        if (rc < 0) {
            return rc;
        }
        initialised_ = true;
        const unsigned needed = IORING_FEAT_EXT_ARG | IORING_FEAT_FAST_POLL | IORING_FEAT_NODROP;
        if ((p.features & needed) != needed) {
            return -ENOTSUP;
        }
        io_uring_register_ring_fd(&ring_);  // optional speed-up; ignore failure
        if ((rc = buffers_.attach_ring(&ring_)) < 0) {
            return rc;
        }
        if (!buffers_.grow()) {
            return -ENOMEM;
        }
        return probe_multishot_recv();
    }

    blitz::Backend kind() const noexcept override { return blitz::Backend::IoUring; }

    void accept(int fd, std::uint64_t ud, bool multishot) override {
        io_uring_sqe* s = sqe();
        if (multishot) {
            io_uring_prep_multishot_accept(s, fd, nullptr, nullptr, SOCK_CLOEXEC);
        } else {
            io_uring_prep_accept(s, fd, nullptr, nullptr, SOCK_CLOEXEC);
        }
        io_uring_sqe_set_data64(s, ud);
    }

    void recv(int fd, std::uint64_t ud) override {
        io_uring_sqe* s = sqe();
        io_uring_prep_recv_multishot(s, fd, nullptr, 0, 0);
        s->flags |= IOSQE_BUFFER_SELECT;
        s->buf_group = 0;
        io_uring_sqe_set_data64(s, ud);
    }

    void send(int fd, const iovec* iov, unsigned count, std::uint64_t ud) override {
        io_uring_sqe* s = sqe();
        if (count == 1) {
            io_uring_prep_send(s, fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        } else {
            // writev needs no msghdr kept alive by the caller; SIGPIPE is ignored by the server.
            io_uring_prep_writev(s, fd, iov, count, 0);
        }
        io_uring_sqe_set_data64(s, ud);
    }

    void write(int fd, const iovec* iov, unsigned count, std::uint64_t ud) override {
        io_uring_sqe* s = sqe();
        // Offset -1 means "the file position" (IORING_FEAT_RW_CUR_POS, Linux 5.6); with O_APPEND
        // every write lands at the end, as write(2) would put it.
        io_uring_prep_writev(s, fd, iov, count, static_cast<__u64>(-1));
        io_uring_sqe_set_data64(s, ud);
    }

    void poll_in(int fd, std::uint64_t ud) override {
        io_uring_sqe* s = sqe();
        io_uring_prep_poll_multishot(s, fd, POLLIN);
        io_uring_sqe_set_data64(s, ud);
    }

    void connect(int fd, const sockaddr* addr, socklen_t len, std::uint64_t ud) override {
        io_uring_sqe* s = sqe();
        io_uring_prep_connect(s, fd, addr, len);
        io_uring_sqe_set_data64(s, ud);
    }

    void cancel(int fd) override {
        io_uring_sqe* s = sqe();
        io_uring_prep_cancel_fd(s, fd, IORING_ASYNC_CANCEL_ALL);
        io_uring_sqe_set_data64(s, 0);
    }

    void cancel_recv(int /*fd*/, std::uint64_t ud) override {
        io_uring_sqe* s = sqe();
        io_uring_prep_cancel64(s, ud, 0);
        io_uring_sqe_set_data64(s, 0);
    }

    void submit() override { io_uring_submit(&ring_); }

    int run(int timeout_ms, CompletionHandler& handler) override {
        buffers_.flush();
#ifdef BLITZ_HAVE_VALGRIND_H
        if (RUNNING_ON_VALGRIND) {
            // valgrind keeps its lock through io_uring_enter (it does not know the call may
            // block): let the other threads run first, and wait in short slices.
            sched_yield();
            if (timeout_ms < 0 || timeout_ms > kValgrindWaitMs) {
                timeout_ms = kValgrindWaitMs;
            }
        }
#endif
        io_uring_cqe* cqe = nullptr;
        int rc;
        if (timeout_ms < 0) {
            rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, nullptr, nullptr);
        } else {
            __kernel_timespec ts{};
            ts.tv_sec = timeout_ms / 1000;
            ts.tv_nsec = static_cast<long long>(timeout_ms % 1000) * 1'000'000;
            rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
        }
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
            return rc;
        }
        int n = 0;
        unsigned head;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            ++n;
            if (cqe->user_data == 0) {
                continue;  // cancel requests
            }
            Completion c;
            c.user_data = cqe->user_data;
            c.res = cqe->res;
            c.more = (cqe->flags & IORING_CQE_F_MORE) != 0;
            if (cqe->flags & IORING_CQE_F_BUFFER) {
                c.buffer = static_cast<std::int32_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
                buffers_.note_taken_by_kernel();
            }
            handler.on_completion(c);
        }
        io_uring_cq_advance(&ring_, static_cast<unsigned>(n));
        buffers_.flush();
        return n;
    }

private:
    io_uring_sqe* sqe() {
        io_uring_sqe* s = io_uring_get_sqe(&ring_);
        while (s == nullptr) {
            // The submission queue is full mid-turn: hand it to the kernel and retry; never
            // fail the caller.
            io_uring_submit(&ring_);
            s = io_uring_get_sqe(&ring_);
        }
        return s;
    }

    // Multishot recv with provided buffers needs Linux 6.0; check it once with a socketpair so
    // Auto can fall back to epoll on older kernels.
    int probe_multishot_recv() noexcept {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            return -errno;
        }
        recv(sv[0], 1);
        (void)::write(sv[1], "x", 1);
        struct Probe final : CompletionHandler {
            BufferPool* pool;
            int res = -1;
            void on_completion(const Completion& c) override {
                if (res <= 0) {
                    res = c.res;
                }
                if (c.buffer >= 0) {
                    pool->release(static_cast<std::uint16_t>(c.buffer));
                }
            }
        } probe;
        probe.pool = &buffers_;
        for (int i = 0; i < 10 && probe.res < 0; ++i) {
            run(100, probe);
        }
        cancel(sv[0]);
        run(100, probe);
        ::close(sv[0]);
        ::close(sv[1]);
        if (probe.res != 1) {
            return probe.res < 0 ? probe.res : -ENOTSUP;
        }
        return 0;
    }

    io_uring ring_{};
    bool initialised_ = false;
};

}  // namespace

std::unique_ptr<Backend> make_uring_backend(const BackendOptions& options, int& error) {
    auto b = std::make_unique<UringBackend>(options);
    int rc = b->init(options);
    if (rc < 0) {
        error = -rc;
        return nullptr;
    }
    return b;
}

}  // namespace blitz::io

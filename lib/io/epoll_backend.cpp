#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "io/backend.hpp"

namespace blitz::io {

namespace {

// Emulates the io_uring completion model on epoll (level-triggered): readiness is turned into
// the same completions, delivered from run() only.
class EpollBackend final : public Backend {
public:
    explicit EpollBackend(const BackendOptions& o) : Backend(o) {}
    ~EpollBackend() override {
        if (epfd_ >= 0) {
            ::close(epfd_);
        }
    }

    int init() noexcept {
        epfd_ = epoll_create1(EPOLL_CLOEXEC);
        if (epfd_ < 0) {
            return -errno;
        }
        if (!buffers_.grow()) {
            return -ENOMEM;
        }
        events_.resize(256);
        return 0;
    }

    blitz::Backend kind() const noexcept override { return blitz::Backend::Epoll; }

    void accept(int fd, std::uint64_t ud, bool multishot) override {
        FdState& st = state(fd);
        st.accept_ud = ud;
        st.accept_multishot = multishot;
        update(fd, st);
    }

    void recv(int fd, std::uint64_t ud) override {
        FdState& st = state(fd);
        st.recv_ud = ud;
        update(fd, st);
    }

    void send(int fd, const iovec* iov, unsigned count, std::uint64_t ud) override {
        FdState& st = state(fd);
        st.send_ud = ud;
        st.send_iov = iov;
        st.send_count = count;
        // Attempted at the start of the next run(): completions never run inside submit calls.
        ready_sends_.push_back({fd, st.generation});
    }

    void write(int fd, const iovec* iov, unsigned count, std::uint64_t ud) override {
        // Regular files are always "ready" for epoll (EPERM on EPOLL_CTL_ADD): write now, but
        // deliver the result from run() so completions never run inside the submitting call.
        ssize_t w;
        do {
            w = ::writev(fd, iov, static_cast<int>(count));
        } while (w < 0 && errno == EINTR);
        const std::int32_t res = w < 0 ? -errno : static_cast<std::int32_t>(w);
        immediate_.push_back(Completion{ud, res, false, -1});
    }

    void poll_in(int fd, std::uint64_t ud) override {
        FdState& st = state(fd);
        st.poll_ud = ud;
        update(fd, st);
    }

    void connect(int fd, const sockaddr* addr, socklen_t len, std::uint64_t ud) override {
        FdState& st = state(fd);
        if (::connect(fd, addr, len) == 0) {
            immediate_.push_back(Completion{ud, 0, false, -1});
            return;
        }
        if (errno != EINPROGRESS) {
            immediate_.push_back(Completion{ud, -errno, false, -1});
            return;
        }
        st.connect_ud = ud;
        update(fd, st);
    }

    void cancel(int fd) override {
        if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) {
            return;
        }
        FdState& st = fds_[static_cast<std::size_t>(fd)];
        for (std::uint64_t* ud : {&st.accept_ud, &st.recv_ud, &st.send_ud, &st.poll_ud, &st.connect_ud}) {
            if (*ud != 0) {
                immediate_.push_back(Completion{*ud, -ECANCELED, false, -1});
                *ud = 0;
            }
        }
        st.send_iov = nullptr;
        if (st.registered != 0) {
            epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
            st.registered = 0;
        }
        ++st.generation;  // stale epoll events and queued sends for this fd are ignored
    }

    void cancel_recv(int fd, std::uint64_t ud) override {
        if (fd < 0 || static_cast<std::size_t>(fd) >= fds_.size()) {
            return;
        }
        FdState& st = fds_[static_cast<std::size_t>(fd)];
        if (st.recv_ud == ud && ud != 0) {
            immediate_.push_back(Completion{ud, -ECANCELED, false, -1});
            st.recv_ud = 0;
            update(fd, st);
        }
    }

    // Cancellations take effect at once here; sends are tried by run().
    void submit() override {}

    int run(int timeout_ms, CompletionHandler& handler) override {
        int n = 0;
        // Work queued outside run() (timers, tasks) goes first; if handlers queued more, do
        // not sleep on it.
        if (has_queued()) {
            n += flush_queued(handler);
            if (has_queued()) {
                timeout_ms = 0;
            }
        }
        int ready = epoll_wait(epfd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
        if (ready < 0) {
            return errno == EINTR ? n : -errno;
        }
        for (int i = 0; i < ready; ++i) {
            const auto fd = static_cast<int>(events_[i].data.u64 & 0xFFFFFFFFu);
            const auto gen = static_cast<std::uint32_t>(events_[i].data.u64 >> 32);
            const std::uint32_t ev = events_[i].events;
            if (fds_[static_cast<std::size_t>(fd)].generation != gen) {
                continue;
            }
            if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                n += on_readable(fd, gen, handler);
            }
            FdState& st = fds_[static_cast<std::size_t>(fd)];
            if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && st.generation == gen && st.connect_ud != 0) {
                n += finish_connect(fd, handler);
            }
            if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && st.generation == gen && st.send_ud != 0 &&
                st.send_blocked) {
                n += try_send(fd, handler);
            }
        }
        if (ready == static_cast<int>(events_.size()) && events_.size() < 4096) {
            events_.resize(events_.size() * 2);
        }
        // Sends the handlers just queued (the responses of this turn) go out now, as io_uring
        // submits them with its next enter: one epoll_wait per turn, not two.
        if (has_queued()) {
            n += flush_queued(handler);
        }
        return n;
    }

    bool has_queued() const noexcept { return !immediate_.empty() || !ready_sends_.empty(); }

private:
    struct FdState {
        std::uint64_t accept_ud = 0;
        std::uint64_t recv_ud = 0;
        std::uint64_t send_ud = 0;
        std::uint64_t poll_ud = 0;
        std::uint64_t connect_ud = 0;
        const iovec* send_iov = nullptr;
        unsigned send_count = 0;
        std::uint32_t generation = 0;
        std::uint32_t registered = 0;  // event mask currently in epoll
        bool accept_multishot = false;
        bool send_blocked = false;
    };
    struct QueuedSend {
        int fd;
        std::uint32_t generation;
    };

    FdState& state(int fd) {
        if (static_cast<std::size_t>(fd) >= fds_.size()) {
            fds_.resize(static_cast<std::size_t>(fd) + 1024);
        }
        return fds_[static_cast<std::size_t>(fd)];
    }

    void update(int fd, FdState& st) {
        std::uint32_t want = 0;
        if (st.accept_ud != 0 || st.recv_ud != 0 || st.poll_ud != 0) {
            want |= EPOLLIN;
        }
        if ((st.send_ud != 0 && st.send_blocked) || st.connect_ud != 0) {
            want |= EPOLLOUT;
        }
        if (want == st.registered) {
            return;
        }
        epoll_event e{};
        e.events = want;
        e.data.u64 = (std::uint64_t{st.generation} << 32) | static_cast<std::uint32_t>(fd);
        if (want == 0) {
            epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
        } else {
            epoll_ctl(epfd_, st.registered == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &e);
        }
        st.registered = want;
    }

    int flush_queued(CompletionHandler& handler) {
        int n = 0;
        // Swap out first: handlers queue new sends and cancellations while we deliver.
        pending_immediate_.swap(immediate_);
        for (const Completion& c : pending_immediate_) {
            handler.on_completion(c);
            ++n;
        }
        pending_immediate_.clear();
        pending_sends_.swap(ready_sends_);
        for (const QueuedSend& q : pending_sends_) {
            FdState& st = fds_[static_cast<std::size_t>(q.fd)];
            if (st.generation == q.generation && st.send_ud != 0 && !st.send_blocked) {
                n += try_send(q.fd, handler);
            }
        }
        pending_sends_.clear();
        return n;
    }

    int try_send(int fd, CompletionHandler& handler) {
        FdState& st = fds_[static_cast<std::size_t>(fd)];
        msghdr msg{};
        msg.msg_iov = const_cast<iovec*>(st.send_iov);
        msg.msg_iovlen = st.send_count;
        ssize_t w = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!st.send_blocked) {
                st.send_blocked = true;
                update(fd, st);
            }
            return 0;
        }
        Completion c{st.send_ud, w < 0 ? -errno : static_cast<std::int32_t>(w), false, -1};
        st.send_ud = 0;
        st.send_iov = nullptr;
        if (st.send_blocked) {
            st.send_blocked = false;
            update(fd, st);
        }
        handler.on_completion(c);
        return 1;
    }

    int finish_connect(int fd, CompletionHandler& handler) {
        FdState& st = fds_[static_cast<std::size_t>(fd)];
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        Completion c{st.connect_ud, -err, false, -1};
        st.connect_ud = 0;
        update(fd, st);
        handler.on_completion(c);
        return 1;
    }

    int on_readable(int fd, std::uint32_t gen, CompletionHandler& handler) {
        int n = 0;
        // Bounded per event so one busy listener cannot starve the rest of the loop.
        for (int i = 0; i < 32; ++i) {
            FdState& st = fds_[static_cast<std::size_t>(fd)];
            if (st.generation != gen || st.accept_ud == 0) {
                break;
            }
            int c = ::accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (c < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                break;
            }
            Completion comp{st.accept_ud, c < 0 ? -errno : c, st.accept_multishot && c >= 0, -1};
            if (!comp.more) {
                st.accept_ud = 0;
                update(fd, st);
            }
            handler.on_completion(comp);
            ++n;
        }
        {
            FdState& st = fds_[static_cast<std::size_t>(fd)];
            if (st.generation == gen && st.poll_ud != 0) {
                handler.on_completion(Completion{st.poll_ud, kPollInResult, true, -1});
                ++n;
            }
        }
        FdState& st = fds_[static_cast<std::size_t>(fd)];
        if (st.generation != gen || st.recv_ud == 0) {
            return n;
        }
        int bid = buffers_.take();
        if (bid < 0) {
            Completion comp{st.recv_ud, -ENOBUFS, false, -1};
            st.recv_ud = 0;
            update(fd, st);
            handler.on_completion(comp);
            return n + 1;
        }
        ssize_t r = ::recv(fd, buffers_.data(static_cast<std::uint16_t>(bid)), buffers_.buffer_bytes(),
                           MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            buffers_.release(static_cast<std::uint16_t>(bid));
            return n;
        }
        Completion comp{st.recv_ud, r < 0 ? -errno : static_cast<std::int32_t>(r), r > 0, -1};
        if (r > 0) {
            comp.buffer = bid;
        } else {
            buffers_.release(static_cast<std::uint16_t>(bid));
            st.recv_ud = 0;
            update(fd, st);
        }
        handler.on_completion(comp);
        return n + 1;
    }

    static constexpr std::int32_t kPollInResult = 1;

    int epfd_ = -1;
    std::vector<FdState> fds_;
    std::vector<epoll_event> events_;
    std::vector<Completion> immediate_;
    std::vector<Completion> pending_immediate_;
    std::vector<QueuedSend> ready_sends_;
    std::vector<QueuedSend> pending_sends_;
};

}  // namespace

std::unique_ptr<Backend> make_epoll_backend(const BackendOptions& options, int& error) {
    auto b = std::make_unique<EpollBackend>(options);
    int rc = b->init();
    if (rc < 0) {
        error = -rc;
        return nullptr;
    }
    return b;
}

}  // namespace blitz::io

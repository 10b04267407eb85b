/// @file
/// @brief `switchboard::redis::attach()`: drives a hiredis asynchronous context
/// (`redisAsyncContext`, hiredis 0.14 `async.h`) from an Asio `io_context`, with no thread of its
/// own. Target `switchboard::redis` (Debian `libhiredis-dev`).
///
/// hiredis' asynchronous API does no I/O by itself: it asks an event library to watch its socket
/// through five hooks (`ev.addRead`, `ev.delRead`, `ev.addWrite`, `ev.delWrite`, `ev.cleanup`;
/// hiredis README, "Asynchronous API" and its `adapters/` folder, e.g. `adapters/libevent.h`) and
/// expects `redisAsyncHandleRead()` / `redisAsyncHandleWrite()` to be called when the socket is
/// ready. Here each hook drives a `posix::stream_descriptor::async_wait()` on hiredis' socket; the
/// descriptor never owns the socket (hiredis closes it in `redisFree()`), it is released in the
/// `cleanup` hook.
///
/// Readiness that is already there: hiredis reads at most 16 KiB per `redisAsyncHandleRead()` and
/// writes what one `write()` takes, so a wait is often armed on a socket that is still readable
/// (writable). Asio's epoll reactor is edge-triggered, but it starts a wait (unlike a speculative
/// read) by re-arming the descriptor with `EPOLL_CTL_MOD`, which makes epoll report a descriptor
/// that is ready at that moment (Asio 1.18 and 1.22 `epoll_reactor::start_op`): no edge is lost,
/// and no extra `poll()` is needed. One wait per direction is pending at most.
///
/// SIGPIPE: hiredis writes with `write(2)`, which raises SIGPIPE on a connection the peer reset
/// (Asio's own sends use `MSG_NOSIGNAL`; a dead Redis must not kill the process). Unless the
/// process ignores SIGPIPE (then nothing is done), SIGPIPE is blocked in the calling thread
/// around `redisAsyncHandleWrite()` and one raised by that write is consumed: SIGPIPE from a
/// write is sent to the writing thread, so while blocked it stays pending there, and
/// `sigtimedwait()` with a zero timeout takes it (the usual technique for code that cannot pass
/// `MSG_NOSIGNAL`). hiredis then sees EPIPE and drops the connection as for any error.
#pragma once

#include "../asio/backend.hpp"

#if defined(SWITCHBOARD_USE_BOOST_ASIO)
#include <boost/asio/posix/stream_descriptor.hpp>
#else
#include <asio/posix/stream_descriptor.hpp>
#endif

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <exception>
#include <memory>
#include <utility>

namespace switchboard::redis {

namespace detail {

/// The state behind one attached context. hiredis holds a heap `std::shared_ptr` to it in
/// `ev.data`; each pending wait holds another, so the state outlives `cleanup` until the waits
/// it cancelled have completed.
class hiredis_asio_events : public std::enable_shared_from_this<hiredis_asio_events> {
public:
    hiredis_asio_events(net::io_context& io, redisAsyncContext* ac, int fd)
        : ac_(ac), descriptor_(io, fd) {}

    static void add_read(void* p) { holder(p)->set_read(true); }
    static void del_read(void* p) { holder(p)->set_read(false); }
    static void add_write(void* p) { holder(p)->set_write(true); }
    static void del_write(void* p) { holder(p)->set_write(false); }
    static void cleanup(void* p) {
        auto* h = static_cast<std::shared_ptr<hiredis_asio_events>*>(p);
        (*h)->close();
        delete h; // the pending waits keep the state alive until they complete
    }

private:
    static hiredis_asio_events* holder(void* p) {
        return static_cast<std::shared_ptr<hiredis_asio_events>*>(p)->get();
    }

    struct direction {
        bool wanted = false;  // hiredis asked for this readiness (addRead / addWrite)
        bool waiting = false; // an async_wait is pending
    };

    void set_read(bool on) {
        read_.wanted = on;
        if (on) arm(true);
    }
    void set_write(bool on) {
        write_.wanted = on;
        if (on) arm(false);
    }

    void close() {
        ac_ = nullptr;
        read_.wanted = false;
        write_.wanted = false;
        // release(): the socket stays open (hiredis closes it) and the pending waits complete
        // with operation_aborted.
        (void)descriptor_.release();
    }

    void arm(bool read) {
        direction& d = read ? read_ : write_;
        if (ac_ == nullptr || !d.wanted || d.waiting) return;
        d.waiting = true;
        descriptor_.async_wait(read ? net::posix::stream_descriptor::wait_read
                                    : net::posix::stream_descriptor::wait_write,
                               [self = shared_from_this(), read](const net_error_code& ec) {
                                   (read ? self->read_ : self->write_).waiting = false;
                                   if (!ec) self->ready(read);
                               });
    }

    void ready(bool read) {
        direction& d = read ? read_ : write_;
        if (ac_ == nullptr || !d.wanted) return;
        // May call any hook, including cleanup (the context is freed): ac_ is then null.
        if (read) {
            redisAsyncHandleRead(ac_);
        } else {
            write_without_sigpipe(ac_);
        }
        arm(read);
    }

    static void write_without_sigpipe(redisAsyncContext* ac) {
        struct sigaction current {};
        if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) {
            redisAsyncHandleWrite(ac); // the process ignores SIGPIPE: EPIPE only
            return;
        }
        sigset_t pipe;
        sigset_t old;
        sigset_t pending;
        ::sigemptyset(&pipe);
        ::sigaddset(&pipe, SIGPIPE);
        ::sigemptyset(&pending);
        ::sigpending(&pending);
        const bool was_pending = ::sigismember(&pending, SIGPIPE) == 1; // someone else's: keep it
        ::pthread_sigmask(SIG_BLOCK, &pipe, &old);
        redisAsyncHandleWrite(ac);
        ::sigemptyset(&pending);
        if (!was_pending && ::sigpending(&pending) == 0 && ::sigismember(&pending, SIGPIPE) == 1) {
            const timespec zero{0, 0};
            (void)::sigtimedwait(&pipe, nullptr, &zero);
        }
        ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }

    redisAsyncContext* ac_;
    net::posix::stream_descriptor descriptor_;
    direction read_;
    direction write_;
};

} // namespace detail

/// @brief Attaches a hiredis asynchronous context to an Asio `io_context`: from now on hiredis'
/// reads and writes are driven by `io` (hiredis README, "Asynchronous API": "hook it into an event
/// library"; the hooks are those of hiredis 0.14 `async.h`, `redisAsyncContext::ev`).
///
/// Call it right after `redisAsyncConnect()` and before `redisAsyncSetConnectCallback()` (which,
/// in hiredis 0.14, asks for the first write event through the hooks set here) and before any
/// command. The context is detached by hiredis itself: `redisAsyncFree()`, `redisAsyncDisconnect()`
/// or a connection error call the `cleanup` hook, which releases hiredis' socket from the
/// descriptor (hiredis closes it) and cancels the waits.
///
/// @param ac a context from `redisAsyncConnect()` whose `err` is 0 and that has no event library
///        attached yet (`ac.ev.data == nullptr`).
/// @param io the io_context whose thread(s) will call hiredis; it must outlive the context or
///        the context must be freed before `io` is destroyed.
/// @return true when attached; false when `ac` already has an event library, has no socket
///         (`ac.c.fd < 0`), or Asio could not register the socket (nothing attached then).
/// @note Thread safety: a `redisAsyncContext` is not thread-safe (hiredis README). Every hiredis
/// call on `ac` (commands, `redisAsyncFree()`, ...) must happen on `io`'s serialisation: a
/// 1-thread `io_context`, or a strand when several threads run it. The handlers this attaches run
/// on `io`'s executor, not on a strand: with several threads running `io`, run everything that
/// touches the context on one thread.
[[nodiscard]] inline bool attach(redisAsyncContext& ac, net::io_context& io) {
    if (ac.ev.data != nullptr || ac.c.fd < 0) return false;
    std::shared_ptr<detail::hiredis_asio_events> events;
    try {
        events = std::make_shared<detail::hiredis_asio_events>(io, &ac, ac.c.fd);
    } catch (const std::exception&) {
        return false; // e.g. epoll_ctl failed: nothing registered, the socket is untouched
    }
    ac.ev.data = new std::shared_ptr<detail::hiredis_asio_events>(std::move(events));
    ac.ev.addRead = &detail::hiredis_asio_events::add_read;
    ac.ev.delRead = &detail::hiredis_asio_events::del_read;
    ac.ev.addWrite = &detail::hiredis_asio_events::add_write;
    ac.ev.delWrite = &detail::hiredis_asio_events::del_write;
    ac.ev.cleanup = &detail::hiredis_asio_events::cleanup;
    return true;
}

} // namespace switchboard::redis

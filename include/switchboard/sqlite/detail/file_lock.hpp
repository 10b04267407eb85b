/// @file
/// @brief `switchboard::detail::exclusive_file_lock`: an exclusive advisory lock on a file of its
/// own, held while the object lives (sqlite_inbox: one store per database file). Internal.
#pragma once

#include <string>
#include <utility>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#endif

namespace switchboard::detail {

/// @brief An exclusive lock on a lock file, taken without waiting, released when the object is
/// destroyed (or the process ends, however it ends: the kernel drops the lock with the last
/// descriptor, so a crashed holder never leaves a stale lock).
///
/// POSIX: `flock(LOCK_EX | LOCK_NB)` on a descriptor of its own. A `flock()` lock belongs to the
/// open file description, so a second lock of the same file conflicts in the same process as in
/// another one (a POSIX `fcntl()` lock would not: a process never conflicts with itself), and it
/// is independent of the `fcntl()` locks SQLite takes on the database (on Linux and the BSDs). The
/// file is a separate one so that closing its descriptor can never drop SQLite's locks: closing
/// any descriptor of a file drops every `fcntl()` lock the process holds on that file
/// (SQLite, "How To Corrupt An SQLite Database File": https://sqlite.org/howtocorrupt.html). The descriptor is close-on-exec. Windows:
/// `LockFileEx` (exclusive, fail immediately) on a handle of its own.
///
/// The lock file is created when missing and never removed: removing it while another process
/// waits to lock it would let two processes each hold a lock, on two different files of one name.
class exclusive_file_lock {
public:
    /// @brief The outcome of `lock()`.
    enum class result {
        locked, ///< this object holds the lock now
        busy,   ///< another holder has it
        failed, ///< the lock file cannot be opened or locked; `error` says why
    };

    exclusive_file_lock() noexcept = default;
    exclusive_file_lock(const exclusive_file_lock&) = delete;
    exclusive_file_lock& operator=(const exclusive_file_lock&) = delete;
    ~exclusive_file_lock() { unlock(); }

    /// @brief Opens (creating it when missing) and locks `path`, without waiting.
    /// @param path the lock file.
    /// @param error set to the system's reason when the result is `failed`.
    [[nodiscard]] result lock(const std::string& path, std::string& error) {
        unlock();
#if defined(_WIN32)
        const HANDLE h = CreateFileA(path.c_str(), GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                                     nullptr, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, nullptr);
        if (h == INVALID_HANDLE_VALUE) {
            error = "cannot open " + path + ": Windows error " + std::to_string(GetLastError());
            return result::failed;
        }
        OVERLAPPED whole{};
        if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, MAXDWORD, MAXDWORD, &whole)) {
            const DWORD e = GetLastError();
            CloseHandle(h);
            if (e == ERROR_LOCK_VIOLATION) return result::busy;
            error = "cannot lock " + path + ": Windows error " + std::to_string(e);
            return result::failed;
        }
        handle_ = h;
#else
        int fd = -1;
        do fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        while (fd < 0 && errno == EINTR);
        if (fd < 0) {
            error = "cannot open " + path + ": " + std::strerror(errno);
            return result::failed;
        }
        int rc = 0;
        do rc = ::flock(fd, LOCK_EX | LOCK_NB);
        while (rc != 0 && errno == EINTR);
        if (rc != 0) {
            const int e = errno;
            (void)::close(fd);
            if (e == EWOULDBLOCK) return result::busy;
            error = "cannot lock " + path + ": " + std::strerror(e);
            return result::failed;
        }
        fd_ = fd;
#endif
        return result::locked;
    }

    /// @brief Releases the lock (closing the descriptor releases it); nothing when not held.
    void unlock() noexcept {
#if defined(_WIN32)
        if (handle_ != INVALID_HANDLE_VALUE) CloseHandle(std::exchange(handle_, INVALID_HANDLE_VALUE));
#else
        if (fd_ >= 0) (void)::close(std::exchange(fd_, -1));
#endif
    }

    /// @brief True while the lock is held.
    [[nodiscard]] bool held() const noexcept {
#if defined(_WIN32)
        return handle_ != INVALID_HANDLE_VALUE;
#else
        return fd_ >= 0;
#endif
    }

private:
#if defined(_WIN32)
    HANDLE handle_ = INVALID_HANDLE_VALUE;
#else
    int fd_ = -1;
#endif
};

} // namespace switchboard::detail

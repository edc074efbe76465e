/*
 * cache_internal.h - the file I/O seam of cache/: every chunk file
 * operation goes through a struct cache_io, so unit tests can inject
 * ENOSPC, EIO, short writes and a crash before rename.
 *
 * Threads: the table is const and shared; its functions must be
 * thread-safe (the default is libc's).
 */
#ifndef HFM_CACHE_CACHE_INTERNAL_H
#define HFM_CACHE_CACHE_INTERNAL_H

#include <sys/types.h>

struct cache;

struct cache_io {
    int (*open)(const char *path, int flags, mode_t mode); /* -1 + errno */
    int (*close)(int fd);
    ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
    ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
    int (*rename)(const char *from, const char *to);
    int (*unlink)(const char *path);
};

extern const struct cache_io cache_io_default;

/* Before any read: replaces the I/O table (tests only). */
void cache_set_io(struct cache *c, const struct cache_io *io);

#endif /* HFM_CACHE_CACHE_INTERNAL_H */

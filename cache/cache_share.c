/*
 * cache_share.c - the files through which the processes on one cache
 * directory coordinate (see cache_share.h for what each one means).
 *
 * DESIGN. Every coordination point is an flock or an atomic in a shared
 * page, never a lock held across network I/O by the caller's choice: the
 * fetch lock is held by the chunk's fetcher (no process lock is held while
 * it waits on the network) and waited for by polling with a short sleep,
 * so a waiter is never stuck behind a dead process (flock ends with its
 * holder) nor for longer than CACHE_SHARE_WAIT_MS behind a live one.
 */
#include "cache/cache_share.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define USAGE_FILE_BYTES 4096
#define PATH_CAP         4200

struct usage_page {
    char magic[8];
    _Atomic uint64_t bytes;
    _Atomic uint64_t chunks;
};

struct cache_share {
    char dir[PATH_CAP];
    struct usage_page *page; /* shared mapping, or private memory */
    bool mapped;
    int evict_fd; /* DIR/evict.lock, or -1 */
    int proc_fd;  /* DIR/procs/PID-N, flock'd for our life, or -1 */
    char proc_path[PATH_CAP + 64];
};

static int map_usage(struct cache_share *s)
{
    char path[PATH_CAP + 16];
    struct stat st;
    void *p;
    int fd;

    snprintf(path, sizeof(path), "%s/usage", s->dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    /* the first process sizes it; the zero page means "no counts yet" */
    if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (st.st_size < USAGE_FILE_BYTES && ftruncate(fd, USAGE_FILE_BYTES) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    p = mmap(NULL, USAGE_FILE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = -errno;
        close(fd);
        return e;
    }
    s->page = p;
    if (memcmp(s->page->magic, CACHE_SHARE_MAGIC, 8) != 0) {
        atomic_store(&s->page->bytes, 0);
        atomic_store(&s->page->chunks, 0);
        memcpy(s->page->magic, CACHE_SHARE_MAGIC, 8);
    }
    (void)flock(fd, LOCK_UN);
    close(fd); /* the mapping stays */
    s->mapped = true;
    return 0;
}

static void register_proc(struct cache_share *s)
{
    char dir[PATH_CAP + 16], tmp[PATH_CAP + 80];
    struct timespec ts;

    snprintf(dir, sizeof(dir), "%s/procs", s->dir);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* pid plus a time stamp: pids of other pid namespaces may repeat. Made
     * under a ".new" name and locked before it gets its real one, so a
     * count never sees it unlocked and removes it. */
    snprintf(s->proc_path, sizeof(s->proc_path), "%s/%d-%lx", dir,
             (int)getpid(),
             (unsigned long)ts.tv_nsec ^ (unsigned long)ts.tv_sec);
    snprintf(tmp, sizeof(tmp), "%s.new", s->proc_path);
    s->proc_fd = open(tmp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->proc_fd >= 0 && (flock(s->proc_fd, LOCK_EX | LOCK_NB) < 0 ||
                            rename(tmp, s->proc_path) < 0)) {
        (void)unlink(tmp);
        close(s->proc_fd);
        s->proc_fd = -1;
    }
    if (s->proc_fd < 0)
        s->proc_path[0] = '\0';
}

int cache_share_open(const char *dir, struct cache_share **out)
{
    struct cache_share *s;
    char path[PATH_CAP + 16];

    *out = NULL;
    if (strlen(dir) >= PATH_CAP - 64)
        return -ENAMETOOLONG;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    s->evict_fd = -1;
    s->proc_fd = -1;
    if (map_usage(s) < 0) {
        s->page = calloc(1, sizeof(*s->page));
        if (!s->page) {
            free(s);
            return -ENOMEM;
        }
    }
    snprintf(path, sizeof(path), "%s/evict.lock", dir);
    s->evict_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    snprintf(path, sizeof(path), "%s/locks", dir);
    (void)mkdir(path, 0700);
    register_proc(s);
    *out = s;
    return 0;
}

void cache_share_close(struct cache_share *s)
{
    if (!s)
        return;
    if (s->mapped)
        munmap(s->page, USAGE_FILE_BYTES);
    else
        free(s->page);
    if (s->evict_fd >= 0)
        close(s->evict_fd);
    if (s->proc_fd >= 0) {
        (void)unlink(s->proc_path);
        close(s->proc_fd);
    }
    free(s);
}

uint64_t cache_share_bytes(struct cache_share *s)
{
    return atomic_load(&s->page->bytes);
}

uint64_t cache_share_chunks(struct cache_share *s)
{
    return atomic_load(&s->page->chunks);
}

/* Adds a signed delta, never below zero (a recount after a crash may
 * have counted a file a late unlink then removes). */
static void add_clamped(_Atomic uint64_t *v, int64_t d)
{
    uint64_t old = atomic_load(v), nv;
    do {
        if (d < 0 && (uint64_t)(-d) > old)
            nv = 0;
        else
            nv = old + (uint64_t)d;
    } while (!atomic_compare_exchange_weak(v, &old, nv));
}

void cache_share_add(struct cache_share *s, int64_t bytes, int64_t chunks)
{
    if (!s)
        return;
    add_clamped(&s->page->bytes, bytes);
    add_clamped(&s->page->chunks, chunks);
}

void cache_share_set(struct cache_share *s, uint64_t bytes, uint64_t chunks)
{
    if (!s)
        return;
    atomic_store(&s->page->bytes, bytes);
    atomic_store(&s->page->chunks, chunks);
}

void cache_share_evict_lock(struct cache_share *s, bool exclusive)
{
    if (!s || s->evict_fd < 0)
        return;
    while (flock(s->evict_fd, exclusive ? LOCK_EX : LOCK_SH) < 0 &&
           errno == EINTR) {
    }
}

void cache_share_evict_unlock(struct cache_share *s)
{
    if (s && s->evict_fd >= 0)
        (void)flock(s->evict_fd, LOCK_UN);
}

static int lock_path(const struct cache_share *s, const char *key, uint64_t idx,
                     char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/locks/%s.%llu", s->dir, key,
                     (unsigned long long)idx);
    return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

static void nap(long *us)
{
    struct timespec ts = {0, *us * 1000};
    nanosleep(&ts, NULL);
    if (*us < 20000)
        *us *= 2;
}

int cache_share_fetch_lock(struct cache_share *s, const char *key, uint64_t idx,
                           bool wait, int *fd)
{
    char path[PATH_CAP + 128];
    struct timespec t0, now;
    long us = 500;
    int rc = lock_path(s, key, idx, path, sizeof(path));

    *fd = -1;
    if (rc < 0)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct stat a, b;
        int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (f < 0)
            return -errno;
        if (flock(f, LOCK_EX | LOCK_NB) == 0) {
            /* the holder before us may have removed the file after we
             * opened it: then our lock is on a name nobody sees */
            if (fstat(f, &a) == 0 && stat(path, &b) == 0 &&
                a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
                *fd = f;
                return 0;
            }
            close(f);
            continue;
        }
        rc = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
        close(f);
        if (rc != -EWOULDBLOCK || !wait)
            return rc;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - t0.tv_sec) * 1000 +
                (now.tv_nsec - t0.tv_nsec) / 1000000 >=
            CACHE_SHARE_WAIT_MS)
            return -ETIMEDOUT;
        nap(&us);
    }
}

void cache_share_fetch_unlock(struct cache_share *s, const char *key,
                              uint64_t idx, int fd)
{
    char path[PATH_CAP + 128];
    if (!s || fd < 0)
        return;
    if (lock_path(s, key, idx, path, sizeof(path)) == 0)
        (void)unlink(path); /* before the unlock: see fetch_lock */
    close(fd);
}

int cache_share_processes(struct cache_share *s)
{
    char dir[PATH_CAP + 16];
    DIR *d;
    struct dirent *de;
    int n = 0;

    snprintf(dir, sizeof(dir), "%s/procs", s->dir);
    d = opendir(dir);
    if (!d)
        return 1;
    while ((de = readdir(d))) {
        char path[PATH_CAP + 300];
        int f;
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' ||
            (len > 4 && strcmp(de->d_name + len - 4, ".new") == 0))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        f = open(path, O_RDONLY | O_CLOEXEC);
        if (f < 0)
            continue;
        if (flock(f, LOCK_SH | LOCK_NB) < 0) {
            n++; /* held: alive */
        } else {
            (void)unlink(path); /* left by a process that died */
        }
        close(f);
    }
    closedir(d);
    return n > 0 ? n : 1;
}

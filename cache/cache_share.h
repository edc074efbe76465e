/*
 * cache_share.h - what the hfmount processes sharing one cache directory
 * agree on: the store's byte count, who fetches a chunk, who is alive.
 *
 * Several mounts of a node (one per container or user, whole-Hub or
 * single-repo) and `hfmount prefetch` / `cache ls` / `cache clean` may use
 * one --cache-dir at once. They share:
 *  - DIR/usage: the store's bytes and chunk files, two counters in a
 *    MAP_SHARED page that every process adds to when it stores a chunk and
 *    subtracts from when its unlink removed one. The size bound applies to
 *    that sum, so it holds for all processes together.
 *  - DIR/evict.lock: flock shared while a process stores or unlinks (the
 *    file and the counter move together), exclusive while one recounts the
 *    store from a directory scan (at start, after `cache clean`, when its
 *    own index has nothing left to evict). A process killed between the two
 *    leaves the counter one chunk off until the next recount.
 *  - DIR/locks/KEY.IDX: the fetch lock of one chunk (flock exclusive),
 *    held from before its range request until its file is stored: another
 *    process that needs the chunk waits for the lock, then reads the file,
 *    so each chunk is fetched once for all of them. flock ends with its
 *    holder, so kill -9 of a fetcher frees the chunk for the next.
 *  - DIR/procs/PID-N: one file per process, flock'd for its life, so
 *    `hfmount status` can count who uses the store.
 *
 * Ownership: struct cache_share from cache_share_open(), freed by
 * cache_share_close(). A fetch lock is a file descriptor owned by the
 * caller until cache_share_fetch_unlock().
 *
 * Calls that change something accept a NULL struct cache_share (a store
 * without a disk) and do nothing.
 *
 * Threads: all calls are thread-safe; the counters are atomics in shared
 * memory (lock-free, so they work across processes).
 *
 * Errors: 0 / -errno. A store whose shared files cannot be made runs as
 * if alone (counters in private memory): correct, but the bound is then
 * this process's own.
 *
 * Limits: CACHE_SHARE_WAIT_MS is the longest wait for another process's
 * fetch of a chunk; after it the waiter fetches the chunk itself.
 */
#ifndef HFM_CACHE_CACHE_SHARE_H
#define HFM_CACHE_CACHE_SHARE_H

#include <stdbool.h>
#include <stdint.h>

#include "net/hub_err.h" /* HFM_MUST_CHECK */

#define CACHE_SHARE_WAIT_MS 120000
#define CACHE_SHARE_MAGIC   "HFMUSE01"

struct cache_share;

int cache_share_open(const char *dir, struct cache_share **out) HFM_MUST_CHECK;
void cache_share_close(struct cache_share *s);

/* The store's totals as all processes count them. */
uint64_t cache_share_bytes(struct cache_share *s);
uint64_t cache_share_chunks(struct cache_share *s);
void cache_share_add(struct cache_share *s, int64_t bytes, int64_t chunks);
/* After a recount (under the exclusive evict lock). */
void cache_share_set(struct cache_share *s, uint64_t bytes, uint64_t chunks);

/* DIR/evict.lock, shared or exclusive; blocking. */
void cache_share_evict_lock(struct cache_share *s, bool exclusive);
void cache_share_evict_unlock(struct cache_share *s);

/* Takes the fetch lock of chunk (key, idx): 0 and *fd on success;
 * -EWOULDBLOCK when another process holds it and wait is false; -ETIMEDOUT
 * after CACHE_SHARE_WAIT_MS; other -errno when the lock file cannot be
 * made (fetch without it). */
int cache_share_fetch_lock(struct cache_share *s, const char *key, uint64_t idx,
                           bool wait, int *fd) HFM_MUST_CHECK;
/* Releases and removes the lock file; fd < 0 is a no-op. */
void cache_share_fetch_unlock(struct cache_share *s, const char *key,
                              uint64_t idx, int fd);

/* Processes using the store now, this one included (>= 1). */
int cache_share_processes(struct cache_share *s);

#endif /* HFM_CACHE_CACHE_SHARE_H */

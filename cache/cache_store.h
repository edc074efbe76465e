/*
 * cache_store.h - the disk store of chunk files: where they are, what they
 * take, which go first when the store is full (LRU eviction), and the
 * count every process on the directory shares (cache_share.h).
 *
 * The store keeps an index of the chunk files it knows (scanned at start,
 * then its own stores and the files it reads), oldest first by the files'
 * time stamps, which every process sets when it reads a chunk from disk.
 * It evicts from that index until the shared count leaves room, sparing a
 * file another process read since (its time stamp moved), and recounts
 * the directory when its index runs dry with the store still over.
 *
 * Ownership: struct cache_store from cache_store_new(), freed by
 * cache_store_free(); it owns its struct cache_share.
 *
 * Threads: thread-safe (one mutex over the index, never held across I/O).
 * cache_store_put() and the eviction it does run on one thread at a time
 * (the cache's writer thread).
 *
 * Errors: 0 / -errno. Limits: the store stays under max_bytes plus one
 * chunk per process writing, and under max_bytes once the writes end
 * (invariant 5 of cache.c).
 */
#ifndef HFM_CACHE_CACHE_STORE_H
#define HFM_CACHE_CACHE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"

struct cache_io;
struct cache_share;
struct cache_store;

/* io points at the cache's I/O table (tests swap it). */
int cache_store_new(const char *dir, uint64_t max_bytes,
                    const struct cache_io *const *io,
                    struct cache_store **out) HFM_MUST_CHECK;
void cache_store_free(struct cache_store *s);
struct cache_share *cache_store_share(struct cache_store *s);

int cache_store_path(const struct cache_store *s, const char *key,
                     uint64_t idx, char *out, size_t cap) HFM_MUST_CHECK;
/* Indexed with at least bytes (a complete chunk file: readahead skips). */
bool cache_store_holds(struct cache_store *s, const char *key, uint64_t idx,
                       uint64_t bytes);
/* The file was just read (time stamp set): youngest; indexed if another
 * process stored it. bytes: what it takes. */
void cache_store_touch(struct cache_store *s, const char *key, uint64_t idx,
                       uint64_t bytes);
/* The file is gone (another process evicted or cleaned it). */
void cache_store_forget(struct cache_store *s, const char *key, uint64_t idx);
/* Removes a file that must not be used (bad, or its file failed the
 * whole-file check). */
/* true if this call removed it (so one of several readers that found it
 * bad logs it). */
bool cache_store_drop(struct cache_store *s, const char *key, uint64_t idx,
                      uint64_t file_id);
/* file_id: cache_fmt_load's, or 0 for whatever file has the name. */
/* Stores blocks add of chunk (key, idx) of len bytes from buf, evicting
 * first what must go, and after it this process's older files while the
 * shared count is over (another process stored at the same time). Writer
 * thread. */
int cache_store_put(struct cache_store *s, const char *key, uint64_t idx,
                    uint64_t len, uint64_t add,
                    const char *buf) HFM_MUST_CHECK;
/* Recount from a scan (at start; a smaller bound than last time). */
void cache_store_recount(struct cache_store *s);
void cache_store_make_room(struct cache_store *s, uint64_t need);
/* Every chunk and metadata file removed, under the exclusive lock. */
int cache_store_clean(struct cache_store *s) HFM_MUST_CHECK;

struct cache_store_stats {
    uint64_t bytes, chunks; /* the whole store, every process's */
    uint64_t evicted;       /* by this process */
    int processes;
};
void cache_store_get_stats(struct cache_store *s,
                           struct cache_store_stats *out);

#endif /* HFM_CACHE_CACHE_STORE_H */

/*
 * cache.h - the on-disk chunk store, the in-memory chunk buffers, readahead,
 * and the metadata store (revision -> commit, tree listings).
 *
 * A file's bytes are cut in fixed CACHE_CHUNK_SIZE chunks, keyed by the
 * file's content identity (LFS sha256 or git blob oid) and the chunk's
 * index, never by path: the same blob under two revisions or repos is
 * stored once. A chunk is fetched, stored, verified and served by blocks
 * (CACHE_BLOCK_SIZE, cache_format.h), so a small read moves and checks
 * only the blocks it touches. See docs/architecture.md, cache.c's
 * invariants (memory and fetches), cache_store.h (the disk store),
 * cache_format.h (the chunk file) and cache_share.h (processes sharing a
 * directory).
 *
 * Ownership: struct cache from cache_new(), freed by cache_free() after
 * the last cache_file_put(). struct cache_file from cache_file_new(), a
 * reference count: cache_file_get() / cache_file_put(). struct
 * cache_stream is caller storage (one per open file handle).
 *
 * Threads: everything is thread-safe except a struct cache_stream, which
 * belongs to one reader at a time. cache_read() blocks its caller until
 * its chunks are in memory (disk or network) but never holds a lock while
 * it waits.
 *
 * Errors: 0 / -errno; a non-NULL why gets the Hub's cause when a network
 * fetch failed (cache_read returns hub_err_to_errno of it).
 *
 * Limits: CACHE_MEM_CHUNKS buffers in memory at most (in flight included);
 * the disk store stays under max_bytes plus one chunk per active writer
 * (one per process on the directory).
 */
#ifndef HFM_CACHE_CACHE_H
#define HFM_CACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "net/hub.h"

#define CACHE_CHUNK_SIZE (4u * 1024 * 1024)
#define CACHE_MEM_CHUNKS 19
#define CACHE_RA_MAX_CHUNKS 14 /* readahead window, chunks */
#define CACHE_DEFAULT_MAX_BYTES (10ull * 1024 * 1024 * 1024)
#define CACHE_KEY_MAX 72
/* a read that starts this close to where its stream's reads ended
 * continues the stream (the kernel's parallel reads come out of order) */
#define CACHE_SEQ_SLACK (8u * 1024 * 1024)
/* the last chunk's reader waits this long for earlier chunks still
 * arriving, so the whole-file check ends at its read */
#define CACHE_HASH_WAIT_S 10

struct cache_config {
    const char *dir;    /* created if missing (0700) */
    uint64_t max_bytes; /* 0: CACHE_DEFAULT_MAX_BYTES */
    int mem_chunks;     /* 0: CACHE_MEM_CHUNKS */
    int ra_max_chunks;  /* 0: mem_chunks - 5, at least CACHE_RA_MAX_CHUNKS
                         * (within mem_chunks - 4); < 0: no readahead */
};

struct cache_stats {
    uint64_t hits_mem;     /* chunk already in memory */
    uint64_t hits_disk;    /* chunk read back from the disk store */
    uint64_t misses;       /* range requests for chunk blocks */
    uint64_t readahead;    /* chunks fetched ahead of the reader */
    uint64_t corrupt;      /* chunks that failed verification */
    uint64_t disk_bytes;   /* bytes in the disk store now, every process's */
    uint64_t disk_chunks;
    uint64_t evicted;      /* chunks evicted from disk */
    uint64_t write_errors; /* chunks that could not be stored */
    uint64_t stored;       /* writes of fetched blocks to chunk files */
    uint64_t from_peers;   /* chunks another process fetched while this one
                            * waited for them (one fetch for both) */
    uint64_t files_checked; /* whole-file sha256 checks that matched */
    int processes;         /* hfmount processes using the store now */
};

struct cache;
struct cache_file;

struct cache_stream {
    uint64_t next_off; /* where the stream's reads ended */
    uint64_t run;      /* bytes read in sequence: sizes the requests */
    uint64_t last_idx; /* chunk the last readahead started from */
    int window;        /* readahead window in chunks */
    bool started;
};

/* Opens (creating) the store at cfg->dir. Other hfmount processes may
 * use the same directory at the same time: they share its chunks, fetch
 * each chunk once between them and keep the size bound for their sum
 * (cache_share.h). A directory that cannot be created or written
 * (read-only, no permission) is not an error: one warning, and the cache
 * runs in memory only (see cache_disk_ok()). Starts no thread (so it may
 * run before a fork); the metadata store works at once, chunk reads need
 * cache_start(). */
int cache_new(const struct cache_config *cfg,
              struct cache **out) HFM_MUST_CHECK;
/* Starts the writer and hasher threads; chunk fetches go through hub from
 * now on. */
int cache_start(struct cache *c, struct hub *hub) HFM_MUST_CHECK;
void cache_free(struct cache *c);
void cache_get_stats(struct cache *c, struct cache_stats *out);
const char *cache_dir(const struct cache *c);
/* false when the disk store is unusable: chunks and metadata are not kept */
bool cache_disk_ok(const struct cache *c);
/* Removes every chunk and metadata file, also while other processes use
 * the store (they fetch again what they need). -EROFS without a disk. */
int cache_clean(struct cache *c) HFM_MUST_CHECK;

/* key: 64-hex sha256 or 40-hex oid; the rest says where to fetch from. */
int cache_file_new(struct cache *c, const char *key, uint64_t size,
                   enum hub_repo_type type, const char *id, const char *sha,
                   const char *path, struct cache_file **out) HFM_MUST_CHECK;
void cache_file_get(struct cache_file *f);
void cache_file_put(struct cache_file *f);

void cache_stream_init(struct cache_stream *s);

/* Notes a read of [off, off+len) on stream s (sequential or random) and
 * starts readahead fetches; never waits. Returns the read's "ahead": how
 * many bytes past it a fetch for it should ask for in the same request (0
 * for a read that does not continue a stream: just its own blocks). The
 * caller holds s exclusively for the call (not for the read itself). */
uint64_t cache_advise(struct cache *c, struct cache_file *f,
                      struct cache_stream *s, uint64_t off, size_t len);

/* Reads up to len bytes at off (short only at end of file); a fetch asks
 * for ahead bytes more (cache_advise's answer; 0: only the read's
 * blocks). Returns the byte count or -errno; why gets the cause of a
 * network failure. */
ssize_t cache_read(struct cache *c, struct cache_file *f, uint64_t off,
                   size_t len, uint64_t ahead, char *buf,
                   struct hub_why *why) HFM_MUST_CHECK;

/* The bytes of a read left where they are, in the chunk buffer: one
 * span, pinned in memory (neither evicted nor reused) until
 * cache_span_release(). For replying without a copy. One chunk only: a
 * reader holding one pin while waiting for a buffer for the next could
 * deadlock with others doing the same (invariant 3 in cache.c). */
struct cache_span {
    const char *ptr;
    size_t len;
    void *pin; /* the chunk, opaque; NULL when nothing is pinned */
};

/* As cache_read, but out (caller storage) gets the span. -E2BIG, and
 * nothing pinned, if the range crosses a chunk boundary (use cache_read).
 * After any return, cache_span_release(out) (a no-op when unpinned). */
ssize_t cache_read_span(struct cache *c, struct cache_file *f, uint64_t off,
                        size_t len, uint64_t ahead, struct cache_span *out,
                        struct hub_why *why) HFM_MUST_CHECK;
void cache_span_release(struct cache *c, struct cache_span *s);

/* ---- metadata store (cache_meta.c) -------------------------------- */

/* A listing at a commit never changes: stored forever (until cleaned).
 * 0, -ENOENT if not stored (or unreadable: dropped), -errno. */
int cache_meta_get_tree(struct cache *c, enum hub_repo_type type,
                        const char *id, const char *sha, const char *dir,
                        struct hub_tree *out) HFM_MUST_CHECK;
int cache_meta_put_tree(struct cache *c, enum hub_repo_type type,
                        const char *id, const char *sha, const char *dir,
                        const struct hub_tree *tree) HFM_MUST_CHECK;

/* rev "" is the default branch. */
int cache_meta_get_rev(struct cache *c, enum hub_repo_type type,
                       const char *id, const char *rev,
                       struct hub_info *out) HFM_MUST_CHECK;
int cache_meta_put_rev(struct cache *c, enum hub_repo_type type,
                       const char *id, const char *rev,
                       const struct hub_info *info) HFM_MUST_CHECK;

/* A namespace the Hub showed repos of (so a remount needs no request to
 * know it). 0, -ENOENT if never seen. */
int cache_meta_get_ns(struct cache *c, enum hub_repo_type type,
                      const char *ns) HFM_MUST_CHECK;
int cache_meta_put_ns(struct cache *c, enum hub_repo_type type,
                      const char *ns) HFM_MUST_CHECK;

#endif /* HFM_CACHE_CACHE_H */

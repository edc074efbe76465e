/*
 * cache.c - chunks in memory: buffers, single-flight loads and fetches of
 * blocks, readahead, the whole-file check (the hasher thread), and the
 * writer thread that hands fetched blocks to the disk store
 * (cache_store.c; the file format is cache_format.c's).
 *
 * DESIGN. A file is cut into CACHE_CHUNK_SIZE chunks, a chunk into
 * CACHE_BLOCK_SIZE blocks. A chunk in memory has one buffer for all its
 * bytes and a bitmap of the blocks in it (have); a read waits only for the
 * blocks it touches. A block comes from the chunk file when the file holds
 * it (checked against its own hash), else from one range request for the
 * blocks the read needs, widened by what the reader's stream asks for
 * (cache_advise): a read that does not continue a stream asks for just its
 * blocks; a sequential stream asks for more with each read and then for
 * whole chunks ahead. The writer thread stores fetched blocks, so no
 * reader or the network thread waits on disk writes; the hasher thread
 * runs the whole-file check, so no reader waits on hashing but the last
 * chunk's.
 *
 * A block of a chunk in memory:
 *
 *   (missing) --a reader takes it (busy)--> disk load --ok--> have
 *                                              |
 *                                              +--not on disk--> fetch --ok--> have, dirty
 *                                                                  |             |
 *                                                           failed (missing    writer stores
 *                                                           again, waiters     it (dirty
 *                                                           get the error)     cleared)
 *
 * A chunk stays in the table while pinned or while it has blocks (then on
 * the LRU of unpinned chunks, freed when a buffer is needed).
 *
 * Invariants:
 *  1. A block is loaded or fetched by one reader at a time (busy): N
 *     readers of it cause one disk read or range request.
 *  2. A chunk with pins > 0 is never freed or evicted from memory; pins
 *     count readers using or waiting for it, each fetch in flight, and the
 *     writer's pending store. A block in have is never written again
 *     until the chunk is freed, so the writer and readers read it without
 *     a lock.
 *  3. Memory holds at most mem_chunks buffers; readahead never starts a
 *     fetch that would pass that, readers wait for an unpinned buffer
 *     that the whole-file check does not await (check_awaits: the hasher
 *     always gets on to free it). A reader holds at most one pin while it
 *     waits, so readers waiting for buffers never hold all of them.
 *  4. Chunk files are cache_format.c's: new ones through a temporary name
 *     and a rename, blocks added in place before the header that lists
 *     them; every block is checked against its hash when read, a header
 *     or block that fails drops the file, and it is fetched again. Nothing
 *     unverified is served.
 *  5. The disk store's byte count, shared by every process on the
 *     directory, stays <= max_bytes + one chunk per process writing: the
 *     writer evicts before it stores. Two processes that made room at
 *     once may both store; each writer trims after it stores too, so the
 *     store is back under max_bytes once the writes end.
 *  6. No lock is held across network I/O, disk I/O or a wait.
 *  7. Across processes, a whole-chunk fetch (a sequential stream, or
 *     readahead) holds the chunk's fetch lock (cache_share.h) until its
 *     blocks are stored; another process wanting the chunk waits, then
 *     reads the file. Small fetches for random reads take no lock.
 *
 * Lock order: c->lock, then the store's lock (never the reverse); hub
 * locks are taken inside hub_ calls, which never call back here with a
 * lock held.
 */
#include "cache/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "cache/cache_format.h"
#include "cache/cache_internal.h"
#include "cache/cache_share.h"
#include "cache/cache_store.h"
#include "cache/sha256.h"
#include "net/log.h"

/* Range requests one file may have in flight at once (of the hub's
 * HUB_DEFAULT_CONNS per host): all but two, which stay free for other
 * files while this one's CDN stalls. */
#define FILE_FETCHES_MAX (HUB_DEFAULT_CONNS - 2)

#define TABLE_BUCKETS 1024

struct chunk {
    char key[CACHE_KEY_MAX];
    uint64_t idx;
    char *buf;
    size_t len;
    uint64_t all;      /* every block of the chunk */
    uint64_t have;     /* blocks in buf, verified; protected by c->lock */
    uint64_t busy;     /* blocks being loaded or fetched; c->lock */
    uint64_t dirty;    /* fetched blocks not yet stored; c->lock */
    uint64_t on_disk;  /* blocks the chunk file held when looked at */
    bool disk_seen;    /* on_disk is known; c->lock */
    unsigned drops;    /* bumped when its file is found bad; c->lock */
    uint64_t failed;   /* blocks whose last fetch failed; c->lock */
    unsigned fail_gen; /* bumped at each failed fetch; c->lock */
    int err;           /* the last failure: -errno and cause */
    struct hub_why why;
    int pins;       /* protected by c->lock */
    int inflight;   /* fetches in flight; c->lock */
    bool in_table;  /* protected by c->lock */
    bool queued;    /* on the writer queue; c->lock */
    bool readahead; /* fetched ahead, not yet used */
    bool unhashed;  /* the whole-file check has yet to pass it; c->lock */
    struct cache_file *file; /* its file while open (no reference); c->lock */
    int fetch_fd;   /* the cross-process fetch lock (invariant 7), or -1 */
    struct chunk *hnext;
    struct chunk *lprev, *lnext; /* LRU of unpinned chunks with blocks */
    struct chunk *wnext;         /* writer queue */
};

/* One range request: blocks mask of chunk ch, from file f. */
struct fetch {
    struct chunk *ch;
    struct cache_file *f; /* a reference */
    uint64_t mask;
};

struct cache_file {
    struct cache *c;
    char key[CACHE_KEY_MAX];
    uint64_t size;
    struct hub_file *hf;
    int refs;     /* protected by c->lock */
    int fetching; /* range requests in flight; protected by c->lock */
    char *name; /* "repo: path", for log lines */

    /* Whole-file check (LFS files, whose key is their sha256): complete
     * chunks are hashed in order from the first by the hasher thread,
     * off the readers' path; the last chunk by its reader. */
    bool hash_on;
    bool hq_queued;              /* on the hasher's queue; c->lock */
    struct cache_file *hq_next;  /* hasher queue; c->lock */
    pthread_mutex_t hash_lock;
    struct sha256 hash;         /* protected by hash_lock */
    _Atomic uint64_t hash_next; /* next chunk to hash; written under hash_lock */
    _Atomic bool hash_bad;      /* the last complete pass did not match */
};

struct cache {
    char dir[4096];
    uint64_t max_bytes;
    int mem_chunks;
    int ra_max;
    struct hub *hub;
    struct cache_store *store; /* NULL when the disk is unusable */
    bool disk_ok; /* the store can be written: set once in cache_new */
    const struct cache_io *io;

    pthread_mutex_t lock;
    pthread_cond_t cond;                /* a chunk changed or was unpinned */
    struct chunk *table[TABLE_BUCKETS]; /* protected by lock */
    int nbuf;        /* buffers allocated; protected by lock */
    char *free_bufs; /* full-size buffers to reuse, linked through their
                      * first bytes; protected by lock */
    struct chunk *lru_head, *lru_tail; /* protected by lock */
    struct chunk *wq_head, *wq_tail;   /* protected by lock */
    bool stopping;                     /* protected by lock */
    pthread_cond_t wcond;              /* writer queue */
    pthread_t writer;
    bool writer_started;
    /* files whose check may go on, each with a reference; lock */
    struct cache_file *hq_head, *hq_tail;
    pthread_cond_t hcond; /* hasher queue */
    pthread_t hasher;
    bool hasher_started;

    struct cache_stats st; /* protected by lock */
    bool warned_write;     /* protected by lock */
};

static uint64_t hash_key(const char *key, uint64_t idx)
{
    return XXH3_64bits_withSeed(key, strlen(key), idx);
}

static int mkdir_p(const char *path, mode_t mode)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (len >= sizeof(tmp))
        return -ENAMETOOLONG;
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, mode) < 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

static struct cache_share *share_of(struct cache *c)
{
    return c->store ? cache_store_share(c->store) : NULL;
}

/* ---- chunk table (protected by c->lock) ----------------------------- */

static struct chunk **table_slot(struct cache *c, const char *key,
                                 uint64_t idx)
{
    struct chunk **pp = &c->table[hash_key(key, idx) % TABLE_BUCKETS];
    while (*pp && ((*pp)->idx != idx || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->hnext;
    return pp;
}

static void lru_unlink(struct cache *c, struct chunk *ch)
{
    if (ch->lprev)
        ch->lprev->lnext = ch->lnext;
    else if (c->lru_head == ch)
        c->lru_head = ch->lnext;
    else
        return; /* not on the list */
    if (ch->lnext)
        ch->lnext->lprev = ch->lprev;
    else
        c->lru_tail = ch->lprev;
    ch->lprev = ch->lnext = NULL;
}

static void lru_push_tail(struct cache *c, struct chunk *ch)
{
    ch->lnext = NULL;
    ch->lprev = c->lru_tail;
    if (c->lru_tail)
        c->lru_tail->lnext = ch;
    else
        c->lru_head = ch;
    c->lru_tail = ch;
}

/*
 * Chunk buffers. A full-size one (CACHE_CHUNK_SIZE) is mapped once and,
 * when its chunk goes, kept on c->free_bufs for the next: at most
 * mem_chunks are ever mapped (invariant 3), their memory is never handed
 * back to malloc's arenas to grow them, and a reused buffer costs no page
 * faults. A smaller one (a file's last chunk, a small file) is malloc'd.
 * Called with c->lock held.
 */
static char *buf_get(struct cache *c, size_t len)
{
    char *b;

    if (len != CACHE_CHUNK_SIZE)
        return malloc(len ? len : 1);
    if (c->free_bufs) {
        b = c->free_bufs;
        memcpy(&c->free_bufs, b, sizeof(c->free_bufs));
        return b;
    }
    b = mmap(NULL, CACHE_CHUNK_SIZE, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return b == MAP_FAILED ? NULL : b;
}

static void buf_put(struct cache *c, char *b, size_t len)
{
    if (len != CACHE_CHUNK_SIZE) {
        free(b);
        return;
    }
    memcpy(b, &c->free_bufs, sizeof(c->free_bufs));
    c->free_bufs = b;
}

static void chunk_destroy(struct cache *c, struct chunk *ch)
{
    if (ch->fetch_fd >= 0) /* never stored (memory-only, or stopping) */
        cache_share_fetch_unlock(share_of(c), ch->key, ch->idx, ch->fetch_fd);
    if (ch->buf) {
        buf_put(c, ch->buf, ch->len);
        c->nbuf--;
    }
    free(ch);
}

static void table_remove(struct cache *c, struct chunk *ch)
{
    struct chunk **pp;
    if (!ch->in_table)
        return;
    pp = table_slot(c, ch->key, ch->idx);
    if (*pp == ch)
        *pp = ch->hnext;
    ch->in_table = false;
    lru_unlink(c, ch);
}

static void unpin(struct cache *c, struct chunk *ch)
{
    ch->pins--;
    if (ch->pins > 0)
        return;
    if (ch->in_table && ch->have == 0)
        table_remove(c, ch); /* nothing worth keeping */
    if (!ch->in_table)
        chunk_destroy(c, ch);
    else
        lru_push_tail(c, ch);
    pthread_cond_broadcast(&c->cond);
}

/* The whole-file check will reach ch: it is not past it, and every chunk
 * from where it stands to ch is in memory, complete or arriving. Gone,
 * ch would end the check's pass unchecked. The last chunk is its
 * reader's, who loads it back if need be. Holds c->lock. */
static bool check_awaits(struct cache *c, const struct chunk *ch)
{
    const struct cache_file *f = ch->file;
    uint64_t next;

    if (!ch->unhashed || !f || !f->hash_on ||
        ch->idx >= (f->size - 1) / CACHE_CHUNK_SIZE)
        return false;
    next = atomic_load(&f->hash_next);
    if (ch->idx < next)
        return false;
    for (uint64_t j = next; j < ch->idx; j++) {
        const struct chunk *nc = *table_slot(c, f->key, j);
        if (!nc || (nc->all & ~nc->have & ~nc->busy))
            return false;
    }
    return true;
}

/* Readahead for chunks [from, to] of file key: the chunks it must not
 * evict to make room, as its own reader is about to use them. */
struct ra_keep {
    const char *key;
    uint64_t from, to;
};

static bool ra_kept(const struct ra_keep *k, const struct chunk *ch)
{
    return ch->idx >= k->from && ch->idx <= k->to &&
           strcmp(ch->key, k->key) == 0;
}

/* Frees unpinned chunks until one more buffer fits: oldest first, but
 * chunks done with before the others. A readahead chunk is on the LRU
 * from when it is stored, before the reader reaches it: evicting it would
 * make the reader load it back from disk and verify it again, so a
 * reader evicts one only when nothing else is free, and readahead (keep)
 * never one of the chunks its own reader is about to use (others were
 * passed by a jump). No chunk the whole-file check awaits is evicted: the
 * taker waits for the hasher, which always gets on (the chunks it awaits
 * are complete or arriving). false: wait. */
static bool mem_make_room(struct cache *c, const struct ra_keep *keep)
{
    while (c->nbuf >= c->mem_chunks) {
        struct chunk *ch = NULL;
        for (struct chunk *x = c->lru_head; x && !ch; x = x->lnext)
            if (!x->readahead && !check_awaits(c, x))
                ch = x;
        for (struct chunk *x = c->lru_head; x && !ch; x = x->lnext)
            if ((!keep || !ra_kept(keep, x)) && !check_awaits(c, x))
                ch = x;
        if (!ch)
            return false;
        table_remove(c, ch);
        chunk_destroy(c, ch);
    }
    return true;
}

static void file_destroy(struct cache_file *f);

/* Drops a reference to f; on the last, its chunks forget it. Holds
 * c->lock. */
static void file_release_locked(struct cache_file *f, bool *free_it)
{
    struct cache *c = f->c;
    *free_it = --f->refs == 0;
    if (!*free_it)
        return;
    for (int i = 0; i < TABLE_BUCKETS; i++)
        for (struct chunk *ch = c->table[i]; ch; ch = ch->hnext)
            if (ch->file == f)
                ch->file = NULL;
}

static size_t chunk_len(const struct cache_file *f, uint64_t idx)
{
    uint64_t start = idx * CACHE_CHUNK_SIZE;
    uint64_t left = f->size - start;
    return left < CACHE_CHUNK_SIZE ? (size_t)left : CACHE_CHUNK_SIZE;
}

/* New chunk with a buffer and no blocks, in the table, pinned once. NULL
 * when no buffer may be had now (wait) or on OOM (*oom); keep: for
 * readahead (mem_make_room). Holds c->lock. */
static struct chunk *chunk_create(struct cache *c, struct cache_file *f,
                                  uint64_t idx, const struct ra_keep *keep,
                                  bool *oom)
{
    struct chunk *ch;
    *oom = false;
    if (!mem_make_room(c, keep))
        return NULL;
    ch = calloc(1, sizeof(*ch));
    if (ch)
        ch->len = chunk_len(f, idx);
    if (ch)
        ch->buf = buf_get(c, ch->len);
    if (!ch || !ch->buf) {
        free(ch);
        *oom = true;
        return NULL;
    }
    c->nbuf++;
    snprintf(ch->key, sizeof(ch->key), "%s", f->key);
    ch->idx = idx;
    ch->unhashed = f->hash_on && idx >= atomic_load(&f->hash_next);
    ch->file = f;
    ch->all = cache_fmt_all(ch->len);
    ch->fetch_fd = -1;
    ch->pins = 1;
    ch->in_table = true;
    ch->hnext = NULL;
    *table_slot(c, f->key, idx) = ch;
    return ch;
}

/* The cross-process fetch lock goes when nothing of the chunk is in
 * flight or waiting to be stored (invariant 7). Holds c->lock; returns
 * the fd to release after unlocking, or -1. */
static int take_fetch_lock_if_done(struct chunk *ch)
{
    int fd = -1;
    if (ch->fetch_fd >= 0 && ch->inflight == 0 && !ch->queued &&
        ch->dirty == 0) {
        fd = ch->fetch_fd;
        ch->fetch_fd = -1;
    }
    return fd;
}

/* ---- fetching ------------------------------------------------------- */

/* Blocks add of ch (in have) are to be stored: onto the writer's queue,
 * with its pin (invariant 2). Holds c->lock. */
static void queue_write(struct cache *c, struct chunk *ch, uint64_t add)
{
    if (!c->disk_ok || !add)
        return;
    ch->dirty |= add;
    if (ch->queued)
        return;
    ch->queued = true;
    ch->pins++;
    ch->wnext = NULL;
    if (c->wq_tail)
        c->wq_tail->wnext = ch;
    else
        c->wq_head = ch;
    c->wq_tail = ch;
    pthread_cond_signal(&c->wcond);
}

/* The whole-file check of f may go on (a chunk of it is complete): onto
 * the hasher's queue, with a reference. Holds c->lock. */
static void hash_kick(struct cache *c, struct cache_file *f)
{
    if (!f->hash_on || f->hq_queued)
        return;
    f->hq_queued = true;
    f->refs++;
    f->hq_next = NULL;
    if (c->hq_tail)
        c->hq_tail->hq_next = f;
    else
        c->hq_head = f;
    c->hq_tail = f;
    pthread_cond_signal(&c->hcond);
}

static void fetch_done(void *arg, enum hub_err err, const struct hub_why *why)
{
    struct fetch *fe = arg;
    struct chunk *ch = fe->ch;
    struct cache_file *f = fe->f;
    struct cache *c = f->c;
    bool free_file;
    int lock_fd;
    char key[CACHE_KEY_MAX];
    uint64_t idx = ch->idx;

    snprintf(key, sizeof(key), "%s", ch->key);
    pthread_mutex_lock(&c->lock);
    f->fetching--;
    file_release_locked(f, &free_file);
    ch->busy &= ~fe->mask;
    ch->inflight--;
    if (err == HUB_OK) {
        ch->have |= fe->mask;
        ch->failed &= ~fe->mask;
        queue_write(c, ch, fe->mask);
        if (ch->have == ch->all)
            hash_kick(c, f);
    } else {
        ch->failed |= fe->mask;
        ch->fail_gen++;
        ch->err = hub_err_to_errno(err);
        ch->why = *why;
    }
    /* another process waiting for this chunk goes on (it fetches what
     * failed itself); released before the fetch's pin is dropped, since
     * cache_free() frees the share once nothing is fetching */
    lock_fd = take_fetch_lock_if_done(ch);
    cache_share_fetch_unlock(share_of(c), key, idx, lock_fd);
    unpin(c, ch); /* the fetch's pin */
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    if (free_file)
        file_destroy(f);
    free(fe);
}

/* Starts one range request for the contiguous blocks mask of ch, marked
 * busy and pinned for it by the caller (c->lock held). The request is
 * started after the caller unlocks: it is returned, NULL on OOM (then the
 * blocks are released and the pin dropped here). */
static struct fetch *fetch_prepare(struct cache *c, struct cache_file *f,
                                   struct chunk *ch, uint64_t mask)
{
    struct fetch *fe = malloc(sizeof(*fe));
    if (!fe) {
        ch->busy &= ~mask;
        ch->failed |= mask;
        ch->fail_gen++;
        ch->err = -ENOMEM;
        hub_why_clear(&ch->why);
        unpin(c, ch);
        return NULL;
    }
    fe->ch = ch;
    fe->f = f;
    fe->mask = mask;
    f->refs++;
    f->fetching++;
    ch->inflight++;
    return fe;
}

static void fetch_go(struct cache *c, struct fetch *fe)
{
    uint64_t first = (uint64_t)__builtin_ctzll(fe->mask);
    uint64_t last = 63 - (uint64_t)__builtin_clzll(fe->mask);
    uint64_t off = cache_fmt_block_off(first);
    uint64_t end = cache_fmt_block_off(last) +
                   cache_fmt_block_len(fe->ch->len, last);
    enum hub_err err = hub_file_read_start(
        c->hub, fe->f->hf, fe->ch->idx * CACHE_CHUNK_SIZE + off,
        (size_t)(end - off), fe->ch->buf + off, fetch_done, fe);
    if (err != HUB_OK) {
        struct hub_why why;
        hub_why_clear(&why);
        hub_why_set(&why, "%s", hub_strerror(err));
        fetch_done(fe, err, &why);
    }
}

/* Splits mask into contiguous runs, each one fetch pinned on ch (c->lock
 * held); *out gets up to 64 of them to start after unlocking. */
static int fetch_runs(struct cache *c, struct cache_file *f, struct chunk *ch,
                      uint64_t mask, struct fetch **out)
{
    int n = 0;
    while (mask) {
        uint64_t b = (uint64_t)__builtin_ctzll(mask);
        uint64_t run = 0;
        struct fetch *fe;
        while (b < 64 && (mask & (1ull << b))) {
            run |= 1ull << b;
            b++;
        }
        mask &= ~run;
        ch->pins++;
        fe = fetch_prepare(c, f, ch, run);
        if (fe)
            out[n++] = fe;
    }
    return n;
}

/* ---- loading from disk ---------------------------------------------- */

/* Reads blocks want of ch from its chunk file (no lock held). *got: the
 * blocks read and verified; *present: what the file holds. true when the
 * file was bad and removed. */
static bool disk_load(struct cache *c, struct chunk *ch, uint64_t want,
                      uint64_t *got, uint64_t *present)
{
    char path[4200];
    const char *why = NULL;
    uint64_t file_id;
    int rc;

    *got = *present = 0;
    if (!c->store || cache_store_path(c->store, ch->key, ch->idx, path,
                                      sizeof(path)) < 0)
        return false;
    rc = cache_fmt_load(c->io, path, ch->key, ch->idx, ch->len, want,
                        ch->buf, got, present, &file_id, &why);
    if (rc == 0) {
        if (*got) {
            /* the time stamp is the age every process evicts by */
            (void)utimensat(AT_FDCWD, path, NULL, 0);
            cache_store_touch(c->store, ch->key, ch->idx,
                              cache_fmt_bytes(ch->len, *present));
        }
        return false;
    }
    if (rc == -ENOENT) { /* evicted or cleaned by another process */
        cache_store_forget(c->store, ch->key, ch->idx);
        return false;
    }
    if (rc != -EBADMSG)
        return false; /* cannot open it now: no proof of damage */
    *got = *present = 0;
    if (!cache_store_drop(c->store, ch->key, ch->idx, file_id))
        return true; /* another reader found it bad first, and said so */
    hfm_log(HFM_LOG_WARN,
            "cache chunk %llu of '%s' failed verification (%s), fetching "
            "it again",
            (unsigned long long)ch->idx, ch->key, why ? why : strerror(-rc));
    pthread_mutex_lock(&c->lock);
    c->st.corrupt++;
    pthread_mutex_unlock(&c->lock);
    return true;
}

/* After a disk_load() of ch that began at drop count drops0 (c->lock
 * held, got already in have): when the file was found bad, by this load
 * or by another one meanwhile, the blocks read from the old file are
 * stored anew, since the new file has none of them. */
static void disk_loaded(struct cache *c, struct chunk *ch, bool dropped,
                        unsigned drops0, uint64_t got)
{
    if (dropped) {
        ch->drops++;
        queue_write(c, ch, ch->have);
    } else if (ch->drops != drops0) {
        queue_write(c, ch, got);
    }
}

/* A network fetch across processes (invariant 7): takes the chunk's
 * fetch lock, waiting while another process holds it, then reads what
 * that one stored. Called without c->lock for blocks want of ch, which
 * the caller holds busy. Returns the blocks it loaded (already added to
 * have); *fd the lock (or -1 when it could not be had: fetch without
 * it). */
static uint64_t share_lock_chunk(struct cache *c, struct chunk *ch,
                                 uint64_t want, int *fd, bool *waited)
{
    struct cache_share *sh = share_of(c);
    uint64_t got = 0, present;
    unsigned drops0;
    bool dropped;
    int rc;

    *fd = -1;
    *waited = false;
    if (!sh)
        return 0;
    rc = cache_share_fetch_lock(sh, ch->key, ch->idx, false, fd);
    if (rc == -EWOULDBLOCK) {
        *waited = true;
        rc = cache_share_fetch_lock(sh, ch->key, ch->idx, true, fd);
    }
    if (rc < 0)
        return 0;
    /* stored meanwhile, by the holder we waited for or just before */
    pthread_mutex_lock(&c->lock);
    drops0 = ch->drops;
    pthread_mutex_unlock(&c->lock);
    dropped = disk_load(c, ch, want, &got, &present);
    pthread_mutex_lock(&c->lock);
    ch->have |= got;
    disk_loaded(c, ch, dropped, drops0, got);
    pthread_mutex_unlock(&c->lock);
    return got;
}

/* Blocks of ch a fetch for need should ask for: need, plus the blocks
 * of [from, from + ahead) the stream wants next, that nobody has or is
 * getting. */
static uint64_t widen(const struct chunk *ch, uint64_t need, uint64_t from,
                      uint64_t ahead)
{
    uint64_t m = need;
    if (ahead > 0 && from < ch->len)
        m |= cache_fmt_blocks(ch->len, from, ahead);
    return m & ~ch->have & ~ch->busy;
}

/*
 * Returns chunk idx of f pinned, with the blocks covering [at, at + n)
 * (offsets in the chunk) in memory; NULL with *err set. ahead: bytes past
 * the read a fetch may cover in the same request (the stream's want).
 */
static struct chunk *chunk_get(struct cache *c, struct cache_file *f,
                               uint64_t idx, size_t at, size_t n,
                               uint64_t ahead, int *err, struct hub_why *why)
{
    struct chunk *ch;
    bool oom, counted = false;
    uint64_t need;
    unsigned gen0;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        ch = *table_slot(c, f->key, idx);
        if (ch) {
            ch->pins++;
            lru_unlink(c, ch);
            ch->readahead = false; /* a reader came: readahead paid off */
            break;
        }
        ch = chunk_create(c, f, idx, NULL, &oom);
        if (ch)
            break;
        if (oom) {
            pthread_mutex_unlock(&c->lock);
            *err = -ENOMEM;
            return NULL;
        }
        pthread_cond_wait(&c->cond, &c->lock); /* invariant 3 */
    }
    need = cache_fmt_blocks(ch->len, at, n);
    gen0 = ch->fail_gen;
    if ((need & ~ch->have) == 0) {
        c->st.hits_mem++;
        pthread_mutex_unlock(&c->lock);
        return ch;
    }
    for (;;) {
        uint64_t missing = need & ~ch->have, take, got, present, span;
        struct fetch *fe[64];
        int nfe, lock_fd = -1;
        bool waited = false;

        if (!missing)
            break;
        if (ch->fail_gen != gen0 && (ch->failed & missing)) {
            *err = ch->err;
            if (why)
                *why = ch->why;
            unpin(c, ch);
            pthread_mutex_unlock(&c->lock);
            return NULL;
        }
        take = missing & ~ch->busy;
        if (!take) { /* invariant 1: another reader is getting them */
            pthread_cond_wait(&c->cond, &c->lock);
            continue;
        }
        ch->busy |= take;
        got = 0;
        if (c->disk_ok && (!ch->disk_seen || (ch->on_disk & take))) {
            unsigned drops0 = ch->drops;
            bool dropped;
            pthread_mutex_unlock(&c->lock);
            dropped = disk_load(c, ch, take, &got, &present);
            pthread_mutex_lock(&c->lock);
            ch->disk_seen = true;
            ch->on_disk = present;
            ch->have |= got;
            disk_loaded(c, ch, dropped, drops0, got);
            ch->busy &= ~got;
            if (got && !counted) {
                c->st.hits_disk++;
                counted = true;
            }
        }
        take &= ~got;
        if (!take) {
            pthread_cond_broadcast(&c->cond);
            continue;
        }
        /* a file leaves two connections to other files, so a stalled
         * CDN never holds every transfer slot of its host */
        if (f->fetching >= FILE_FETCHES_MAX) {
            ch->busy &= ~take;
            pthread_cond_broadcast(&c->cond);
            pthread_cond_wait(&c->cond, &c->lock);
            continue;
        }
        /* the network: the blocks still wanted, widened by the stream */
        span = take | widen(ch, 0, at + n, ahead);
        ch->busy |= span;
        /* any network fetch holds the chunk's cross-process lock, so
         * two processes never fetch one block (invariant 7) */
        if (ch->fetch_fd < 0 && share_of(c)) {
            pthread_mutex_unlock(&c->lock);
            got = share_lock_chunk(c, ch, span, &lock_fd, &waited);
            pthread_mutex_lock(&c->lock); /* got is in have already */
            ch->busy &= ~got;
            span &= ~got;
            if (got) {
                ch->disk_seen = false; /* grown: look again next time */
                if (waited)
                    c->st.from_peers++;
                if (!counted)
                    c->st.hits_disk++;
                counted = true;
            }
            if (lock_fd >= 0 && ch->fetch_fd < 0 && span) {
                ch->fetch_fd = lock_fd;
                lock_fd = -1;
            }
        }
        nfe = 0;
        if (span) {
            nfe = fetch_runs(c, f, ch, span, fe);
            c->st.misses += (uint64_t)nfe;
        }
        pthread_mutex_unlock(&c->lock);
        cache_share_fetch_unlock(share_of(c), ch->key, ch->idx, lock_fd);
        for (int i = 0; i < nfe; i++)
            fetch_go(c, fe[i]);
        pthread_mutex_lock(&c->lock);
        pthread_cond_broadcast(&c->cond);
        /* the loop waits for the blocks, or sees them failed */
    }
    pthread_mutex_unlock(&c->lock);
    return ch;
}

static bool chunk_file_exists(struct cache *c, const char *key, uint64_t idx)
{
    char path[4200];
    return c->store &&
           cache_store_path(c->store, key, idx, path, sizeof(path)) == 0 &&
           access(path, F_OK) == 0;
}

/* Starts whole-chunk fetches of chunks [from, to] not in memory or stored
 * complete, as far as memory allows; never waits (invariant 3). */
static void start_readahead(struct cache *c, struct cache_file *f,
                            uint64_t from, uint64_t to)
{
    uint64_t last = (f->size - 1) / CACHE_CHUNK_SIZE;
    struct cache_share *sh = share_of(c);
    struct ra_keep keep = {f->key, from, to};
    if (f->size == 0)
        return;
    if (to > last)
        to = last;
    for (uint64_t idx = from; idx <= to; idx++) {
        struct chunk *ch;
        struct fetch *fe;
        bool oom;
        int fd = -1;
        size_t len = chunk_len(f, idx);
        if (c->store &&
            cache_store_holds(c->store, f->key, idx,
                              cache_fmt_bytes(len, cache_fmt_all(len))))
            continue;
        /* another process fetching it (lock held) or done (file there):
         * the reader will wait for it or load it */
        if (sh && (cache_share_fetch_lock(sh, f->key, idx, false, &fd) ==
                       -EWOULDBLOCK ||
                   (fd >= 0 && chunk_file_exists(c, f->key, idx)))) {
            cache_share_fetch_unlock(sh, f->key, idx, fd);
            continue;
        }
        pthread_mutex_lock(&c->lock);
        if (*table_slot(c, f->key, idx)) {
            pthread_mutex_unlock(&c->lock);
            cache_share_fetch_unlock(sh, f->key, idx, fd);
            continue;
        }
        /* take a free buffer or one done with (chunk_create), and a
         * file's share of the connections */
        if (f->fetching >= FILE_FETCHES_MAX) {
            pthread_mutex_unlock(&c->lock);
            cache_share_fetch_unlock(sh, f->key, idx, fd);
            return;
        }
        ch = chunk_create(c, f, idx, &keep, &oom);
        if (!ch) {
            pthread_mutex_unlock(&c->lock);
            cache_share_fetch_unlock(sh, f->key, idx, fd);
            return;
        }
        ch->fetch_fd = fd;
        ch->readahead = true;
        ch->disk_seen = fd >= 0; /* under the lock, no file: none */
        ch->busy = ch->all;
        c->st.readahead++;
        c->st.misses++;
        fe = fetch_prepare(c, f, ch, ch->all); /* the create pin is its */
        pthread_mutex_unlock(&c->lock);
        if (fe)
            fetch_go(c, fe);
    }
}

/* Drops every chunk of f from memory and disk (a failed whole-file check):
 * the next read fetches them again. */
static void drop_file_chunks(struct cache *c, struct cache_file *f)
{
    uint64_t n = f->size ? (f->size - 1) / CACHE_CHUNK_SIZE + 1 : 0;
    for (uint64_t idx = 0; idx < n; idx++) {
        pthread_mutex_lock(&c->lock);
        struct chunk *ch = *table_slot(c, f->key, idx);
        if (ch) {
            table_remove(c, ch);
            if (ch->pins == 0)
                chunk_destroy(c, ch);
        }
        pthread_mutex_unlock(&c->lock);
        if (c->store)
            (void)cache_store_drop(c->store, f->key, idx, 0);
    }
}

/* Feeds chunk ch, complete, to f's whole-file hash if it is the next in
 * order; at the last chunk compares with the key. -EIO: the file's bytes
 * do not match its sha256, so this (last) chunk must not be served. */
static int hash_chunk(struct cache *c, struct cache_file *f,
                      struct chunk *ch)
{
    uint64_t last = (f->size - 1) / CACHE_CHUNK_SIZE;
    uint8_t d[32];
    char hex[65];
    bool bad = false;

    if (!f->hash_on)
        return 0;
    /* After a failed pass the last chunk stays refused (the kernel retries
     * a failed readahead page with a read of its own) until a new pass
     * from the first chunk matches. */
    if (atomic_load(&f->hash_next) != ch->idx)
        return ch->idx == last && atomic_load(&f->hash_bad) ? -EIO : 0;
    pthread_mutex_lock(&f->hash_lock);
    if (atomic_load(&f->hash_next) != ch->idx) {
        pthread_mutex_unlock(&f->hash_lock);
        return ch->idx == last && atomic_load(&f->hash_bad) ? -EIO : 0;
    }
    sha256_update(&f->hash, ch->buf, ch->len);
    if (ch->idx == last) {
        sha256_final(&f->hash, d);
        sha256_hex(d, hex);
        bad = strcmp(hex, f->key) != 0;
        atomic_store(&f->hash_bad, bad);
        sha256_init(&f->hash);
        atomic_store(&f->hash_next, 0);
    } else {
        atomic_store(&f->hash_next, ch->idx + 1);
    }
    pthread_mutex_unlock(&f->hash_lock);
    pthread_mutex_lock(&c->lock);
    ch->unhashed = false;
    if (ch->idx == last && !bad)
        c->st.files_checked++;
    pthread_mutex_unlock(&c->lock);
    if (!bad)
        return 0;
    hfm_log(HFM_LOG_ERR,
            "%s: the bytes read do not match the file's sha256 %s (got %s); "
            "dropping its cached chunks",
            f->name ? f->name : f->key, f->key, hex);
    return -EIO;
}

/* hash_chunk() of nc, complete and in the table, found under c->lock
 * (held on entry, released on return): pinned for the hashing. */
static int hash_pinned(struct cache *c, struct cache_file *f,
                       struct chunk *nc)
{
    int rc;
    nc->pins++;
    lru_unlink(c, nc);
    pthread_mutex_unlock(&c->lock);
    rc = hash_chunk(c, f, nc);
    pthread_mutex_lock(&c->lock);
    unpin(c, nc);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* Feeds f's whole-file hash with the chunks from idx on that are complete
 * in memory, up to the last one (which its own reader hashes). The hasher
 * thread runs it, so no reader waits for the chunks before its own; it
 * goes on as soon as a chunk is complete, or the chunks readers passed
 * might be evicted first, ending the pass unchecked. */
static void hash_ahead(struct cache *c, struct cache_file *f, uint64_t idx)
{
    uint64_t last = (f->size - 1) / CACHE_CHUNK_SIZE;
    for (; idx < last && atomic_load(&f->hash_next) == idx; idx++) {
        struct chunk *nc;
        int rc;
        pthread_mutex_lock(&c->lock);
        nc = *table_slot(c, f->key, idx);
        if (!nc || nc->have != nc->all) {
            pthread_mutex_unlock(&c->lock);
            return;
        }
        rc = hash_pinned(c, f, nc);
        if (rc < 0)
            return;
    }
}

/* Feeds f's whole-file hash up to and including its last chunk ch
 * (complete, pinned): the chunks before it that are complete in memory
 * first, in order, alongside the hasher. The reader waits a moment for
 * the chunks before it that are still arriving, so the check ends at its
 * read and that read fails when the file is wrong. A chunk that is gone
 * or incomplete ends this pass unchecked (as random reads are). -EIO from
 * hash_chunk(). */
static int hash_catch_up(struct cache *c, struct cache_file *f,
                         struct chunk *ch)
{
    struct timespec until;

    if (!f->hash_on)
        return 0;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += CACHE_HASH_WAIT_S;
    for (;;) {
        uint64_t next = atomic_load(&f->hash_next);
        struct chunk *nc;
        int rc;
        if (next >= ch->idx)
            return hash_chunk(c, f, ch);
        pthread_mutex_lock(&c->lock);
        nc = *table_slot(c, f->key, next);
        while (nc && nc->have != nc->all &&
               (nc->all & ~nc->have & ~nc->busy) == 0) {
            if (pthread_cond_timedwait(&c->cond, &c->lock, &until) != 0)
                break;
            nc = *table_slot(c, f->key, next);
        }
        if (!nc || nc->have != nc->all) {
            pthread_mutex_unlock(&c->lock);
            return hash_chunk(c, f, ch); /* refuses a last chunk once bad */
        }
        rc = hash_pinned(c, f, nc);
        if (rc < 0)
            return rc;
    }
}

/*
 * Streams (one per open file handle). A read continues a stream when it
 * starts within CACHE_SEQ_SLACK of where the stream's reads ended (the
 * kernel's parallel readahead reads arrive a little out of order). A
 * stream's run (bytes read in sequence) sizes its requests: a read that
 * starts a stream asks for its own blocks only; each read of a run asks
 * for as many bytes again past it (a window that doubles), up to the end
 * of the chunk; from one chunk on, whole chunks ahead are fetched, a
 * window that doubles up to ra_max chunks. A jump ends the run and halves
 * the chunk window.
 */
uint64_t cache_advise(struct cache *c, struct cache_file *f,
                      struct cache_stream *s, uint64_t off, size_t len)
{
    uint64_t end, ahead = 0;
    bool seq;

    if (off >= f->size || len == 0)
        return 0;
    if (len > f->size - off)
        len = (size_t)(f->size - off);
    end = off + len;
    seq = s->started && off + CACHE_SEQ_SLACK >= s->next_off &&
          off <= s->next_off + CACHE_SEQ_SLACK;
    if (!s->started && off == 0)
        seq = true; /* a file read from its start: likely to go on */
    if (seq) {
        ahead = s->run;
        s->run += len;
        if (end > s->next_off)
            s->next_off = end;
    } else {
        s->run = len;
        s->next_off = end;
        s->window /= 2;
    }
    s->started = true;
    if (c->ra_max <= 0)
        return ahead;
    if (seq && s->run >= CACHE_CHUNK_SIZE) {
        uint64_t last_idx = (end - 1) / CACHE_CHUNK_SIZE;
        if (last_idx != s->last_idx || s->window == 0)
            s->window = s->window ? s->window * 2 : 1;
        if (s->window > c->ra_max)
            s->window = c->ra_max;
        s->last_idx = last_idx;
        start_readahead(c, f, last_idx + 1, last_idx + (uint64_t)s->window);
        ahead = CACHE_CHUNK_SIZE; /* the rest of this chunk too */
    }
    return ahead;
}

/* Pins the chunk holding byte a of f (a < f->size) with the blocks of
 * [a, a + len) that lie in it: *ptr and *n are the bytes from a to the
 * end of that range in the chunk. NULL with *err set on failure (a failed
 * whole-file check drops the file's chunks). */
static struct chunk *pin_at(struct cache *c, struct cache_file *f,
                            uint64_t a, size_t len, uint64_t ahead,
                            const char **ptr, size_t *n, int *err,
                            struct hub_why *why)
{
    uint64_t idx = a / CACHE_CHUNK_SIZE;
    size_t at = (size_t)(a - idx * CACHE_CHUNK_SIZE);
    uint64_t last = (f->size - 1) / CACHE_CHUNK_SIZE;
    size_t clen = chunk_len(f, idx);
    size_t want = len < clen - at ? len : clen - at;
    struct chunk *ch;
    bool complete;

    if (at >= clen) { /* never: a < f->size */
        *err = -EIO;
        return NULL;
    }
    ch = chunk_get(c, f, idx, at, want, ahead, err, why);
    if (!ch)
        return NULL;
    pthread_mutex_lock(&c->lock);
    complete = ch->have == ch->all;
    /* the hasher checks it, not this reader (the last chunk's reader
     * ends the check, so that its read fails when the file is wrong) */
    if (complete && idx != last && atomic_load(&f->hash_next) <= idx)
        hash_kick(c, f);
    pthread_mutex_unlock(&c->lock);
    if (complete && idx == last && hash_catch_up(c, f, ch) < 0) {
        pthread_mutex_lock(&c->lock);
        unpin(c, ch);
        pthread_mutex_unlock(&c->lock);
        drop_file_chunks(c, f);
        *err = -EIO;
        return NULL;
    }
    *ptr = ch->buf + at;
    *n = want;
    return ch;
}

ssize_t cache_read(struct cache *c, struct cache_file *f, uint64_t off,
                   size_t len, uint64_t ahead, char *buf, struct hub_why *why)
{
    size_t done = 0;

    if (off >= f->size || len == 0)
        return 0;
    if (len > f->size - off)
        len = (size_t)(f->size - off);
    while (done < len) {
        int err = 0;
        const char *p;
        size_t n;
        struct chunk *ch = pin_at(c, f, off + done, len - done, ahead, &p, &n,
                                  &err, why);
        if (!ch)
            return done > 0 ? (ssize_t)done : err;
        memcpy(buf + done, p, n);
        done += n;
        pthread_mutex_lock(&c->lock);
        unpin(c, ch);
        pthread_mutex_unlock(&c->lock);
    }
    return (ssize_t)done;
}

ssize_t cache_read_span(struct cache *c, struct cache_file *f, uint64_t off,
                        size_t len, uint64_t ahead, struct cache_span *out,
                        struct hub_why *why)
{
    int err = 0;

    out->pin = NULL;
    out->len = 0;
    if (off >= f->size || len == 0)
        return 0;
    if (len > f->size - off)
        len = (size_t)(f->size - off);
    if ((off + len - 1) / CACHE_CHUNK_SIZE != off / CACHE_CHUNK_SIZE)
        return -E2BIG;
    out->pin =
        pin_at(c, f, off, len, ahead, &out->ptr, &out->len, &err, why);
    if (!out->pin)
        return err;
    return (ssize_t)out->len;
}

void cache_span_release(struct cache *c, struct cache_span *s)
{
    if (!s->pin)
        return;
    pthread_mutex_lock(&c->lock);
    unpin(c, s->pin);
    pthread_mutex_unlock(&c->lock);
    s->pin = NULL;
}

/* ---- the writer thread ---------------------------------------------- */

static void *writer_main(void *arg)
{
    struct cache *c = arg;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        struct chunk *ch;
        uint64_t add;
        unsigned drops0;
        int rc = 0, lock_fd;
        while (!c->wq_head && !c->stopping)
            pthread_cond_wait(&c->wcond, &c->lock);
        ch = c->wq_head;
        if (!ch)
            break; /* stopping and drained */
        c->wq_head = ch->wnext;
        if (!c->wq_head)
            c->wq_tail = NULL;
        ch->queued = false;
        add = ch->dirty;
        ch->dirty = 0;
        drops0 = ch->drops;
        pthread_mutex_unlock(&c->lock);

        /* blocks in have are never written again (invariant 2) */
        if (add && c->store)
            rc = cache_store_put(c->store, ch->key, ch->idx, ch->len, add,
                                 ch->buf);
        pthread_mutex_lock(&c->lock);
        if (rc == 0 && add && ch->drops != drops0) {
            /* written into the file just found bad: write them again */
            queue_write(c, ch, add);
        } else if (rc == 0 && add) {
            c->st.stored++;
            ch->on_disk |= add;
        } else if (rc < 0) {
            c->st.write_errors++;
            if (!c->warned_write) {
                c->warned_write = true;
                hfm_log(HFM_LOG_WARN,
                        "cannot store chunks in '%s': %s; reading on "
                        "without caching",
                        c->dir, strerror(-rc));
            }
        }
        /* stored (or not): other processes waiting for it go on */
        lock_fd = take_fetch_lock_if_done(ch);
        if (lock_fd >= 0) {
            char key[CACHE_KEY_MAX];
            uint64_t idx = ch->idx;
            snprintf(key, sizeof(key), "%s", ch->key);
            pthread_mutex_unlock(&c->lock);
            cache_share_fetch_unlock(share_of(c), key, idx, lock_fd);
            pthread_mutex_lock(&c->lock);
        }
        unpin(c, ch);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* The whole-file check's thread: for each file kicked (hash_kick: a chunk
 * of it completed by a fetch, or read complete), hashes the complete
 * chunks from where the check stands. Readers at the frontier pass
 * chunks still arriving, and a reader that hashed the chunks behind its
 * own would hold its reply (and the readahead its next read starts) for
 * as long. The last chunk stays its reader's (its read fails if the file
 * is wrong): a mismatch there needs no action here. */
static void *hasher_main(void *arg)
{
    struct cache *c = arg;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        struct cache_file *f;
        while (!c->hq_head && !c->stopping)
            pthread_cond_wait(&c->hcond, &c->lock);
        f = c->hq_head;
        if (!f)
            break; /* stopping and drained */
        c->hq_head = f->hq_next;
        if (!c->hq_head)
            c->hq_tail = NULL;
        f->hq_queued = false; /* a kick from now on runs it again */
        pthread_mutex_unlock(&c->lock);
        hash_ahead(c, f, atomic_load(&f->hash_next));
        cache_file_put(f);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---- life cycle ----------------------------------------------------- */

int cache_new(const struct cache_config *cfg, struct cache **out)
{
    struct cache *c;
    char sub[4200];
    int rc;

    *out = NULL;
    if (strlen(cfg->dir) >= sizeof(c->dir) - 64)
        return -ENAMETOOLONG;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    snprintf(c->dir, sizeof(c->dir), "%s", cfg->dir);
    c->max_bytes = cfg->max_bytes ? cfg->max_bytes : CACHE_DEFAULT_MAX_BYTES;
    c->mem_chunks = cfg->mem_chunks > 0 ? cfg->mem_chunks : CACHE_MEM_CHUNKS;
    if (c->mem_chunks < 4)
        c->mem_chunks = 4;
    /* the window grows with the buffers: all but five of them */
    c->ra_max = cfg->ra_max_chunks != 0 ? cfg->ra_max_chunks
                : c->mem_chunks - 5 > CACHE_RA_MAX_CHUNKS ? c->mem_chunks - 5
                                                           : CACHE_RA_MAX_CHUNKS;
    if (c->ra_max > c->mem_chunks - 4)
        c->ra_max = c->mem_chunks - 4;
    c->io = &cache_io_default;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    pthread_cond_init(&c->wcond, NULL);
    pthread_cond_init(&c->hcond, NULL);

    rc = mkdir_p(c->dir, 0700);
    if (rc == 0) {
        snprintf(sub, sizeof(sub), "%s/chunks", c->dir);
        rc = mkdir_p(sub, 0700);
    }
    if (rc == 0) {
        snprintf(sub, sizeof(sub), "%s/meta", c->dir);
        rc = mkdir_p(sub, 0700);
    }
    if (rc == 0 && access(c->dir, W_OK) < 0)
        rc = -errno;
    if (rc == 0)
        rc = cache_store_new(c->dir, c->max_bytes, &c->io, &c->store);
    if (rc == -ENOMEM || rc == -ENAMETOOLONG)
        goto out_free;
    if (rc < 0) {
        hfm_log(HFM_LOG_WARN,
                "cannot use cache directory '%s': %s; running without a "
                "disk cache (reads go to the network)",
                c->dir, strerror(-rc));
        *out = c;
        return 0;
    }
    c->disk_ok = true;
    *out = c;
    return 0;

out_free:
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    pthread_cond_destroy(&c->wcond);
    pthread_cond_destroy(&c->hcond);
    free(c);
    return rc;
}

int cache_start(struct cache *c, struct hub *hub)
{
    c->hub = hub;
    if (pthread_create(&c->writer, NULL, writer_main, c) != 0)
        return -EAGAIN;
    c->writer_started = true;
    if (pthread_create(&c->hasher, NULL, hasher_main, c) != 0)
        return -EAGAIN;
    c->hasher_started = true;
    return 0;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    /* fetches in flight finish (or fail) before the hub is freed; the
     * caller frees the hub after us, so wait for them to drain */
    pthread_mutex_lock(&c->lock);
    for (;;) {
        bool busy = false;
        for (int i = 0; i < TABLE_BUCKETS && !busy; i++)
            for (struct chunk *ch = c->table[i]; ch; ch = ch->hnext)
                if (ch->inflight > 0) {
                    busy = true;
                    break;
                }
        if (!busy)
            break;
        pthread_cond_wait(&c->cond, &c->lock);
    }
    c->stopping = true;
    pthread_cond_signal(&c->wcond);
    pthread_cond_signal(&c->hcond);
    pthread_mutex_unlock(&c->lock);
    if (c->writer_started)
        pthread_join(c->writer, NULL);
    if (c->hasher_started)
        pthread_join(c->hasher, NULL);
    for (int i = 0; i < TABLE_BUCKETS; i++) {
        struct chunk *ch = c->table[i];
        while (ch) {
            struct chunk *next = ch->hnext;
            chunk_destroy(c, ch);
            ch = next;
        }
    }
    while (c->free_bufs) {
        char *b = c->free_bufs;
        memcpy(&c->free_bufs, b, sizeof(c->free_bufs));
        munmap(b, CACHE_CHUNK_SIZE);
    }
    cache_store_free(c->store);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    pthread_cond_destroy(&c->wcond);
    pthread_cond_destroy(&c->hcond);
    free(c);
}

void cache_get_stats(struct cache *c, struct cache_stats *out)
{
    struct cache_store_stats ss = {0};
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    pthread_mutex_unlock(&c->lock);
    out->processes = 1;
    if (c->store) {
        cache_store_get_stats(c->store, &ss);
        out->disk_bytes = ss.bytes;
        out->disk_chunks = ss.chunks;
        out->evicted = ss.evicted;
        out->processes = ss.processes;
    }
}

int cache_clean(struct cache *c)
{
    if (!c->store)
        return -EROFS;
    return cache_store_clean(c->store);
}

const char *cache_dir(const struct cache *c)
{
    return c->dir;
}

bool cache_disk_ok(const struct cache *c)
{
    return c->disk_ok;
}

static int io_open(const char *path, int flags, mode_t mode)
{
    return open(path, flags, mode);
}

static int io_rename(const char *from, const char *to)
{
    return rename(from, to);
}

const struct cache_io cache_io_default = {
    .open = io_open,
    .close = close,
    .pread = pread,
    .pwrite = pwrite,
    .rename = io_rename,
    .unlink = unlink,
};

void cache_set_io(struct cache *c, const struct cache_io *io)
{
    c->io = io;
}

/* ---- files ---------------------------------------------------------- */

int cache_file_new(struct cache *c, const char *key, uint64_t size,
                   enum hub_repo_type type, const char *id, const char *sha,
                   const char *path, struct cache_file **out)
{
    struct cache_file *f;
    enum hub_err err;

    *out = NULL;
    if (strlen(key) == 0 || strlen(key) >= CACHE_KEY_MAX ||
        strchr(key, '/') || strchr(key, '.') || key[0] == '.')
        return -EINVAL;
    f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    err = hub_file_new(c->hub, type, id, sha, path, size, &f->hf);
    if (err != HUB_OK) {
        free(f);
        return hub_err_to_errno(err);
    }
    f->c = c;
    snprintf(f->key, sizeof(f->key), "%s", key);
    f->size = size;
    f->refs = 1;
    {
        size_t nlen = strlen(id) + strlen(path) + 16;
        f->name = malloc(nlen);
        if (f->name)
            snprintf(f->name, nlen, "'%s' in '%s'", path, id);
    }
    f->hash_on = strlen(key) == 64 && size > 0;
    pthread_mutex_init(&f->hash_lock, NULL);
    sha256_init(&f->hash);
    atomic_store(&f->hash_next, 0);
    atomic_store(&f->hash_bad, false);
    *out = f;
    return 0;
}

static void file_destroy(struct cache_file *f)
{
    hub_file_free(f->hf);
    pthread_mutex_destroy(&f->hash_lock);
    free(f->name);
    free(f);
}

void cache_file_get(struct cache_file *f)
{
    pthread_mutex_lock(&f->c->lock);
    f->refs++;
    pthread_mutex_unlock(&f->c->lock);
}

void cache_file_put(struct cache_file *f)
{
    bool free_it;
    if (!f)
        return;
    pthread_mutex_lock(&f->c->lock);
    file_release_locked(f, &free_it);
    pthread_mutex_unlock(&f->c->lock);
    if (free_it)
        file_destroy(f);
}

void cache_stream_init(struct cache_stream *s)
{
    memset(s, 0, sizeof(*s));
}

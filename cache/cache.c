/*
 * cache.c - chunk store: memory buffers, the disk store, single-flight
 * fetches, readahead, and LRU eviction on disk.
 *
 * DESIGN. A read is served from chunks. Each chunk lives in the chunk table
 * (memory) while someone uses it; its bytes come from the disk store when
 * present and verified, else from one range request. A writer thread
 * persists fetched chunks and evicts old ones from disk, so no reader or
 * the network thread ever waits on disk writes.
 *
 *   (absent) --get--> LOADING --disk ok / fetch ok--> READY --evict--> (absent)
 *                        |                              ^
 *                        +--fetch failed--> FAILED      | (LRU of unpinned
 *                           (unlinked from the table,   |  READY buffers)
 *                            freed at pins == 0)
 *
 * Invariants:
 *  1. At most one LOADING entry per (key, idx): concurrent readers of a chunk
 *     wait on it, so N readers cause one range request.
 *  2. A chunk with pins > 0 is never freed or evicted from memory; pins
 *     count readers using or waiting for it, the fetch in flight, and the
 *     writer's pending write.
 *  3. Memory holds at most mem_chunks buffers; readahead never starts a
 *     fetch that would pass that, readers wait for an unpinned buffer. A
 *     reader holds at most one pin while it waits (cache_read unpins a
 *     chunk before the next; cache_read_span pins one chunk only), so
 *     readers waiting for buffers never hold all of them.
 *  4. A chunk file is written to a temporary name and renamed, and carries
 *     its own XXH3 and header checksum: a torn, truncated, bit-rotted or
 *     edited file fails verification, is unlinked and fetched again. It is
 *     never served.
 *  5. The disk store's byte count (disk index) stays <= max_bytes + one
 *     chunk being written: the writer evicts before it writes.
 *  6. No lock is held across network I/O, disk I/O or a wait.
 *
 * Lock order: c->lock, then c->disk_lock (never the reverse); hub locks are
 * taken inside hub_ calls, which never call back here with a lock held.
 */
#include "cache/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "cache/cache_internal.h"
#include "cache/cache_share.h"
#include "cache/sha256.h"
#include "net/log.h"

#define CHUNK_MAGIC "HFMCHNK1"
#define TABLE_BUCKETS 1024
#define DISK_BUCKETS 8192

struct chunk_hdr {
    char magic[8];
    uint64_t idx;
    uint64_t len;
    uint64_t data_xxh3;
    char key[CACHE_KEY_MAX];
    uint64_t hdr_xxh3; /* of every byte above */
};

enum chunk_state { CH_LOADING, CH_READY, CH_FAILED };

struct chunk {
    char key[CACHE_KEY_MAX];
    uint64_t idx;
    enum chunk_state state;
    char *buf;
    size_t len;
    int pins;           /* protected by c->lock */
    bool in_table;      /* protected by c->lock */
    bool readahead;     /* fetched ahead, not yet used */
    int err;            /* FAILED: -errno */
    struct hub_why why; /* FAILED: cause */
    struct cache_file *file; /* the fetch's source, a reference */
    int fetch_fd; /* the cross-process fetch lock while fetched, or -1 */
    struct chunk *hnext;
    struct chunk *lprev, *lnext; /* LRU of unpinned READY chunks */
    struct chunk *wnext;         /* writer queue */
};

struct disk_ent {
    char key[CACHE_KEY_MAX];
    uint64_t idx;
    uint64_t bytes;
    struct timespec mtime; /* the file's, when we last saw it */
    struct disk_ent *hnext;
    struct disk_ent *lprev, *lnext; /* LRU, head = oldest */
};

struct cache_file {
    struct cache *c;
    char key[CACHE_KEY_MAX];
    uint64_t size;
    struct hub_file *hf;
    int refs; /* protected by c->lock */
    char *name; /* "repo: path", for log lines */

    /* Whole-file check (LFS files, whose key is their sha256): chunks are
     * hashed as a reader reaches them in order from the first. */
    bool hash_on;
    pthread_mutex_t hash_lock;
    struct sha256 hash;        /* protected by hash_lock */
    _Atomic uint64_t hash_next; /* next chunk to hash; written under hash_lock */
    _Atomic bool hash_bad; /* the last complete pass did not match */
};

struct cache {
    char dir[4096];
    uint64_t max_bytes;
    int mem_chunks;
    int ra_max;
    struct hub *hub;
    struct cache_share *share; /* NULL when the store is unusable */
    bool disk_ok; /* the store can be written: set once in cache_new */
    const struct cache_io *io;

    pthread_mutex_t lock;
    pthread_cond_t cond; /* any chunk changed state or was unpinned */
    struct chunk *table[TABLE_BUCKETS]; /* protected by lock */
    int nbuf;                 /* buffers allocated; protected by lock */
    char *free_bufs; /* full-size buffers to reuse, linked through their
                      * first bytes; protected by lock */
    struct chunk *lru_head, *lru_tail; /* protected by lock */
    struct chunk *wq_head, *wq_tail;   /* protected by lock */
    bool stopping;            /* protected by lock */
    pthread_cond_t wcond;     /* writer queue */
    pthread_t writer;
    bool writer_started;

    pthread_mutex_t disk_lock;
    struct disk_ent *disk[DISK_BUCKETS]; /* protected by disk_lock */
    struct disk_ent *dlru_head, *dlru_tail; /* protected by disk_lock */
    uint64_t disk_bytes;   /* protected by disk_lock */
    uint64_t disk_chunks;  /* protected by disk_lock */

    struct cache_stats st; /* protected by lock (disk fields: disk_lock) */
    bool warned_write;     /* protected by lock */
};

static uint64_t hash_key(const char *key, uint64_t idx)
{
    return XXH3_64bits_withSeed(key, strlen(key), idx);
}

/* ---- paths ---------------------------------------------------------- */

static int chunk_path(const struct cache *c, const char *key, uint64_t idx,
                      char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/chunks/%.2s/%s.%llu", c->dir, key, key,
                     (unsigned long long)idx);
    return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
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

/* ---- disk index (protected by disk_lock) ---------------------------- */

static struct disk_ent **disk_slot(struct cache *c, const char *key,
                                   uint64_t idx)
{
    struct disk_ent **pp = &c->disk[hash_key(key, idx) % DISK_BUCKETS];
    while (*pp && ((*pp)->idx != idx || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->hnext;
    return pp;
}

static void dlru_unlink(struct cache *c, struct disk_ent *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        c->dlru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        c->dlru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void dlru_push_tail(struct cache *c, struct disk_ent *e)
{
    e->lnext = NULL;
    e->lprev = c->dlru_tail;
    if (c->dlru_tail)
        c->dlru_tail->lnext = e;
    else
        c->dlru_head = e;
    c->dlru_tail = e;
}

static void disk_add(struct cache *c, const char *key, uint64_t idx,
                     uint64_t bytes, const struct timespec *mtime)
{
    struct disk_ent **pp = disk_slot(c, key, idx);
    struct disk_ent *e = *pp;
    if (e) {
        c->disk_bytes -= e->bytes;
        e->bytes = bytes;
        e->mtime = *mtime;
        c->disk_bytes += bytes;
        dlru_unlink(c, e);
        dlru_push_tail(c, e);
        return;
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return; /* unindexed file: evicted only after a recount */
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->idx = idx;
    e->bytes = bytes;
    e->mtime = *mtime;
    *pp = e;
    dlru_push_tail(c, e);
    c->disk_bytes += bytes;
    c->disk_chunks++;
}

static void disk_remove(struct cache *c, const char *key, uint64_t idx)
{
    struct disk_ent **pp = disk_slot(c, key, idx);
    struct disk_ent *e = *pp;
    if (!e)
        return;
    *pp = e->hnext;
    dlru_unlink(c, e);
    c->disk_bytes -= e->bytes;
    c->disk_chunks--;
    free(e);
}

static void disk_clear(struct cache *c)
{
    for (int i = 0; i < DISK_BUCKETS; i++) {
        struct disk_ent *e = c->disk[i];
        while (e) {
            struct disk_ent *next = e->hnext;
            free(e);
            e = next;
        }
        c->disk[i] = NULL;
    }
    c->dlru_head = c->dlru_tail = NULL;
    c->disk_bytes = 0;
    c->disk_chunks = 0;
}

static bool disk_has(struct cache *c, const char *key, uint64_t idx)
{
    bool has;
    pthread_mutex_lock(&c->disk_lock);
    has = *disk_slot(c, key, idx) != NULL;
    pthread_mutex_unlock(&c->disk_lock);
    return has;
}

/* A chunk file was just read (and its time stamp set to now): youngest in
 * the index; indexed if another process stored it. */
static void disk_touch(struct cache *c, const char *key, uint64_t idx,
                       uint64_t bytes)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&c->disk_lock);
    disk_add(c, key, idx, bytes, &now);
    pthread_mutex_unlock(&c->disk_lock);
}

/* The store's bytes as every process using it counts them. */
static uint64_t store_bytes(struct cache *c)
{
    return c->share ? cache_share_bytes(c->share) : c->disk_bytes;
}

static bool ts_newer(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec != b->tv_sec ? a->tv_sec > b->tv_sec
                                  : a->tv_nsec > b->tv_nsec;
}

static void disk_recount(struct cache *c);

/* Evicts the oldest chunk files until need more bytes fit in the store
 * that all its processes share (invariant 5). Writer thread only. The
 * candidates are this process's index, oldest first; a file another
 * process has read since we saw it (its time stamp moved) goes to the
 * young end instead. When the index runs dry with the store still over
 * (the others' files are not in it), one recount from a directory scan
 * refills it. */
static void disk_make_room(struct cache *c, uint64_t need)
{
    bool recounted = false;
    uint64_t spared = 0;

    for (;;) {
        char path[4200];
        char key[CACHE_KEY_MAX];
        uint64_t idx, bytes;
        struct timespec seen;
        struct stat st;
        int rc;

        pthread_mutex_lock(&c->disk_lock);
        if (store_bytes(c) + need <= c->max_bytes) {
            pthread_mutex_unlock(&c->disk_lock);
            return;
        }
        if (!c->dlru_head || spared > c->disk_chunks) {
            pthread_mutex_unlock(&c->disk_lock);
            if (recounted || !c->share)
                return;
            recounted = true;
            spared = 0;
            disk_recount(c);
            continue;
        }
        snprintf(key, sizeof(key), "%s", c->dlru_head->key);
        idx = c->dlru_head->idx;
        bytes = c->dlru_head->bytes;
        seen = c->dlru_head->mtime;
        pthread_mutex_unlock(&c->disk_lock);
        if (chunk_path(c, key, idx, path, sizeof(path)) < 0)
            rc = -ENAMETOOLONG;
        else if (stat(path, &st) < 0)
            rc = -errno; /* gone already: evicted by another process */
        else if (ts_newer(&st.st_mtim, &seen)) {
            pthread_mutex_lock(&c->disk_lock);
            disk_add(c, key, idx, bytes, &st.st_mtim);
            pthread_mutex_unlock(&c->disk_lock);
            spared++;
            continue;
        } else {
            if (c->share)
                cache_share_evict_lock(c->share, false);
            rc = c->io->unlink(path) < 0 ? -errno : 0;
            if (rc == 0 && c->share)
                cache_share_add(c->share, -(int64_t)bytes, -1);
            if (c->share)
                cache_share_evict_unlock(c->share);
        }
        pthread_mutex_lock(&c->disk_lock);
        disk_remove(c, key, idx);
        if (rc == 0)
            c->st.evicted++;
        pthread_mutex_unlock(&c->disk_lock);
    }
}

/* Scans chunks/: rebuilds the index, oldest first by mtime, and removes
 * temporary files a crash left behind. */
struct scan_ent {
    char key[CACHE_KEY_MAX];
    uint64_t idx;
    uint64_t bytes;
    struct timespec mtime;
};

static int cmp_scan(const void *a, const void *b)
{
    const struct scan_ent *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return 0;
}

static void disk_scan(struct cache *c)
{
    char top[4200];
    DIR *d;
    struct dirent *de;
    struct scan_ent *v = NULL;
    size_t n = 0, cap = 0;

    snprintf(top, sizeof(top), "%s/chunks", c->dir);
    d = opendir(top);
    while (d && (de = readdir(d))) {
        char sub[4400];
        DIR *sd;
        struct dirent *se;
        if (de->d_name[0] == '.' || strlen(de->d_name) != 2)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", top, de->d_name);
        sd = opendir(sub);
        if (!sd)
            continue;
        while ((se = readdir(sd))) {
            char path[4700];
            struct stat stb;
            const char *dot;
            char *end;
            if (se->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", sub, se->d_name);
            if (strstr(se->d_name, ".tmp")) {
                /* under the exclusive evict lock no process is writing
                 * one: this one was never renamed (a crash mid-write) */
                (void)unlink(path);
                continue;
            }
            dot = strrchr(se->d_name, '.');
            if (!dot || (size_t)(dot - se->d_name) >= CACHE_KEY_MAX ||
                stat(path, &stb) < 0 || !S_ISREG(stb.st_mode))
                continue;
            unsigned long long idx = strtoull(dot + 1, &end, 10);
            if (*end != '\0')
                continue;
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 256;
                struct scan_ent *nv = realloc(v, ncap * sizeof(*v));
                if (!nv)
                    break;
                v = nv;
                cap = ncap;
            }
            snprintf(v[n].key, sizeof(v[n].key), "%.*s",
                     (int)(dot - se->d_name), se->d_name);
            v[n].idx = idx;
            v[n].bytes = (uint64_t)stb.st_size;
            v[n].mtime = stb.st_mtim;
            n++;
        }
        closedir(sd);
    }
    if (d)
        closedir(d);
    if (n > 0)
        qsort(v, n, sizeof(*v), cmp_scan);
    pthread_mutex_lock(&c->disk_lock);
    disk_clear(c);
    for (size_t i = 0; i < n; i++)
        disk_add(c, v[i].key, v[i].idx, v[i].bytes, &v[i].mtime);
    pthread_mutex_unlock(&c->disk_lock);
    free(v);
}

/* Counts the store anew from the directory, for every process: at start,
 * after a clean, and when eviction finds its index dry. Under the
 * exclusive evict lock, so no store or eviction is half done. */
static void disk_recount(struct cache *c)
{
    if (c->share)
        cache_share_evict_lock(c->share, true);
    disk_scan(c);
    if (c->share) {
        pthread_mutex_lock(&c->disk_lock);
        cache_share_set(c->share, c->disk_bytes, c->disk_chunks);
        pthread_mutex_unlock(&c->disk_lock);
        cache_share_evict_unlock(c->share);
    }
}

/* ---- chunk files ---------------------------------------------------- */

static void hdr_fill(struct chunk_hdr *h, const char *key, uint64_t idx,
                     const char *buf, size_t len)
{
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, CHUNK_MAGIC, sizeof(h->magic));
    h->idx = idx;
    h->len = len;
    h->data_xxh3 = XXH3_64bits(buf, len);
    snprintf(h->key, sizeof(h->key), "%s", key);
    h->hdr_xxh3 = XXH3_64bits(h, offsetof(struct chunk_hdr, hdr_xxh3));
}

/* 0 if the chunk was read and verified into buf; -ENOENT if absent;
 * -EBADMSG if present but wrong (then it is unlinked). */
static int chunk_load(struct cache *c, const char *key, uint64_t idx,
                      char *buf, size_t len)
{
    char path[4200];
    struct chunk_hdr h;
    int fd, rc;
    const char *bad = NULL;

    if (!c->disk_ok)
        return -ENOENT;
    rc = chunk_path(c, key, idx, path, sizeof(path));
    if (rc < 0)
        return rc;
    fd = c->io->open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        /* evicted or cleaned by another process, if it was indexed */
        pthread_mutex_lock(&c->disk_lock);
        disk_remove(c, key, idx);
        pthread_mutex_unlock(&c->disk_lock);
        return -ENOENT;
    }
    if (c->io->pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
        bad = "short header";
    else if (memcmp(h.magic, CHUNK_MAGIC, sizeof(h.magic)) != 0)
        bad = "bad magic";
    else if (h.hdr_xxh3 !=
             XXH3_64bits(&h, offsetof(struct chunk_hdr, hdr_xxh3)))
        bad = "header checksum mismatch";
    else if (h.idx != idx || h.len != len ||
             strncmp(h.key, key, sizeof(h.key)) != 0)
        bad = "header names another chunk";
    else if (c->io->pread(fd, buf, len, sizeof(h)) != (ssize_t)len)
        bad = "short data";
    else if (XXH3_64bits(buf, len) != h.data_xxh3)
        bad = "data checksum mismatch";
    c->io->close(fd);
    if (!bad) {
        /* the time stamp is the age every process evicts by */
        (void)utimensat(AT_FDCWD, path, NULL, 0);
        disk_touch(c, key, idx, len + sizeof(h));
        return 0;
    }
    hfm_log(HFM_LOG_WARN,
            "cache chunk %llu of '%s' failed verification (%s), fetching "
            "it again",
            (unsigned long long)idx, key, bad);
    if (c->io->unlink(path) == 0 && c->share)
        cache_share_add(c->share, -(int64_t)(len + sizeof(h)), -1);
    pthread_mutex_lock(&c->disk_lock);
    disk_remove(c, key, idx);
    pthread_mutex_unlock(&c->disk_lock);
    pthread_mutex_lock(&c->lock);
    c->st.corrupt++;
    pthread_mutex_unlock(&c->lock);
    return -EBADMSG;
}

static int write_all(struct cache *c, int fd, const void *p, size_t n,
                     off_t off)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = c->io->pwrite(fd, b, n, off);
        if (w < 0)
            return -errno;
        if (w == 0)
            return -EIO;
        b += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

/* Invariant 4: temporary name, then rename. *replaced: a file of that
 * name was there already (another process stored the chunk too). */
static int chunk_store(struct cache *c, const char *key, uint64_t idx,
                       const char *buf, size_t len, bool *replaced)
{
    char path[4200], tmp[4300], dir[4200];
    struct chunk_hdr h;
    int fd, rc;

    *replaced = false;
    if (!c->disk_ok)
        return 0; /* memory-only: nothing to store, nothing to report */
    rc = chunk_path(c, key, idx, path, sizeof(path));
    if (rc < 0)
        return rc;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    fd = c->io->open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) {
        snprintf(dir, sizeof(dir), "%s/chunks/%.2s", c->dir, key);
        (void)mkdir_p(dir, 0700);
        fd = c->io->open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    }
    if (fd < 0)
        return -errno;
    hdr_fill(&h, key, idx, buf, len);
    rc = write_all(c, fd, &h, sizeof(h), 0);
    if (rc == 0)
        rc = write_all(c, fd, buf, len, sizeof(h));
    if (c->io->close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0)
        *replaced = access(path, F_OK) == 0;
    if (rc == 0 && c->io->rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        (void)c->io->unlink(tmp);
    return rc;
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
        cache_share_fetch_unlock(c->share, ch->key, ch->idx, ch->fetch_fd);
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
    if (!ch->in_table) {
        chunk_destroy(c, ch);
    } else if (ch->state == CH_READY) {
        lru_push_tail(c, ch);
    }
    pthread_cond_broadcast(&c->cond);
}

/* Frees unpinned READY buffers, oldest first, until one more fits. */
static bool mem_make_room(struct cache *c)
{
    while (c->nbuf >= c->mem_chunks && c->lru_head) {
        struct chunk *ch = c->lru_head;
        table_remove(c, ch);
        chunk_destroy(c, ch);
    }
    return c->nbuf < c->mem_chunks;
}

static void file_destroy(struct cache_file *f);

static void file_release_locked(struct cache_file *f, bool *free_it)
{
    *free_it = --f->refs == 0;
}

/* ---- fetching ------------------------------------------------------- */

static void fetch_done(void *arg, enum hub_err err, const struct hub_why *why)
{
    struct chunk *ch = arg;
    struct cache *c = ch->file->c;
    struct cache_file *f = ch->file;
    bool free_file;
    int lock_fd = -1;
    char key[CACHE_KEY_MAX];
    uint64_t idx = ch->idx;

    pthread_mutex_lock(&c->lock);
    ch->file = NULL;
    file_release_locked(f, &free_file);
    if (err == HUB_OK) {
        ch->state = CH_READY;
        /* the fetch's pin passes to the writer (invariant 2) */
        ch->wnext = NULL;
        if (c->wq_tail)
            c->wq_tail->wnext = ch;
        else
            c->wq_head = ch;
        c->wq_tail = ch;
        pthread_cond_signal(&c->wcond);
    } else {
        ch->state = CH_FAILED;
        ch->err = hub_err_to_errno(err);
        ch->why = *why;
        /* another process waiting for this chunk fetches it itself;
         * released before the chunk stops LOADING, since cache_free()
         * frees c->share once nothing is LOADING */
        lock_fd = ch->fetch_fd;
        ch->fetch_fd = -1;
        snprintf(key, sizeof(key), "%s", ch->key);
        cache_share_fetch_unlock(c->share, key, idx, lock_fd);
        table_remove(c, ch);
        unpin(c, ch);
    }
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    if (free_file)
        file_destroy(f);
}

static size_t chunk_len(const struct cache_file *f, uint64_t idx)
{
    uint64_t start = idx * CACHE_CHUNK_SIZE;
    uint64_t left = f->size - start;
    return left < CACHE_CHUNK_SIZE ? (size_t)left : CACHE_CHUNK_SIZE;
}

/* Starts the network fetch of a LOADING chunk that holds a pin for it.
 * Called without c->lock. */
static void fetch_start(struct cache *c, struct cache_file *f,
                        struct chunk *ch)
{
    enum hub_err err;

    pthread_mutex_lock(&c->lock);
    f->refs++;
    ch->file = f;
    pthread_mutex_unlock(&c->lock);
    err = hub_file_read_start(c->hub, f->hf, ch->idx * CACHE_CHUNK_SIZE,
                              ch->len, ch->buf, fetch_done, ch);
    if (err != HUB_OK) {
        struct hub_why why;
        hub_why_clear(&why);
        hub_why_set(&why, "%s", hub_strerror(err));
        fetch_done(ch, err, &why);
    }
}

/* New LOADING chunk with a buffer, in the table, pinned once. NULL when no
 * buffer may be had now (wait) or on OOM (*oom). Holds c->lock. */
static struct chunk *chunk_create(struct cache *c, struct cache_file *f,
                                  uint64_t idx, bool *oom)
{
    struct chunk *ch;
    *oom = false;
    if (!mem_make_room(c))
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
    ch->state = CH_LOADING;
    ch->fetch_fd = -1;
    ch->pins = 1;
    ch->in_table = true;
    ch->hnext = NULL;
    *table_slot(c, f->key, idx) = ch;
    return ch;
}

/* The LOADING chunk we own was read from disk: READY. from_peer: another
 * process fetched it while we waited. */
static struct chunk *chunk_loaded(struct cache *c, struct chunk *ch,
                                  bool from_peer)
{
    pthread_mutex_lock(&c->lock);
    c->st.hits_disk++;
    if (from_peer)
        c->st.from_peers++;
    ch->state = CH_READY;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    return ch;
}

/* Returns chunk idx of f READY and pinned, or NULL with *err set. */
static struct chunk *chunk_get(struct cache *c, struct cache_file *f,
                               uint64_t idx, int *err, struct hub_why *why)
{
    struct chunk *ch;
    bool oom;

    pthread_mutex_lock(&c->lock);
    for (;;) {
        ch = *table_slot(c, f->key, idx);
        if (ch) {
            ch->pins++;
            lru_unlink(c, ch);
            while (ch->state == CH_LOADING)
                pthread_cond_wait(&c->cond, &c->lock);
            if (ch->state == CH_READY) {
                if (ch->readahead) {
                    ch->readahead = false;
                    c->st.hits_mem++; /* readahead paid off */
                } else {
                    c->st.hits_mem++;
                }
                pthread_mutex_unlock(&c->lock);
                return ch;
            }
            /* FAILED: report it; a later read tries again */
            *err = ch->err;
            if (why)
                *why = ch->why;
            unpin(c, ch);
            pthread_mutex_unlock(&c->lock);
            return NULL;
        }
        ch = chunk_create(c, f, idx, &oom);
        if (ch)
            break;
        if (oom) {
            pthread_mutex_unlock(&c->lock);
            *err = -ENOMEM;
            return NULL;
        }
        pthread_cond_wait(&c->cond, &c->lock); /* invariant 3 */
    }
    pthread_mutex_unlock(&c->lock);

    /* We own the LOADING chunk: disk first, then the network. */
    if (chunk_load(c, f->key, idx, ch->buf, ch->len) == 0)
        return chunk_loaded(c, ch, false);
    if (c->share) {
        /* single flight across processes: whoever holds the chunk's fetch
         * lock fetches it; we wait, then read what it stored */
        int fd = -1;
        int rc = cache_share_fetch_lock(c->share, f->key, idx, false, &fd);
        bool waited = rc == -EWOULDBLOCK;
        if (waited)
            rc = cache_share_fetch_lock(c->share, f->key, idx, true, &fd);
        if (rc == 0 && chunk_load(c, f->key, idx, ch->buf, ch->len) == 0) {
            cache_share_fetch_unlock(c->share, f->key, idx, fd);
            return chunk_loaded(c, ch, waited);
        }
        ch->fetch_fd = rc == 0 ? fd : -1; /* held until stored */
    }
    pthread_mutex_lock(&c->lock);
    c->st.misses++;
    ch->pins++; /* the fetch's pin */
    pthread_mutex_unlock(&c->lock);
    fetch_start(c, f, ch);

    pthread_mutex_lock(&c->lock);
    while (ch->state == CH_LOADING)
        pthread_cond_wait(&c->cond, &c->lock);
    if (ch->state == CH_READY) {
        pthread_mutex_unlock(&c->lock);
        return ch;
    }
    *err = ch->err;
    if (why)
        *why = ch->why;
    unpin(c, ch);
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

static bool chunk_file_exists(struct cache *c, const char *key, uint64_t idx)
{
    char path[4200];
    return chunk_path(c, key, idx, path, sizeof(path)) == 0 &&
           access(path, F_OK) == 0;
}

/* Starts fetches of chunks [from, to] not in memory or on disk, as far as
 * memory allows; never waits (invariant 3). */
static void start_readahead(struct cache *c, struct cache_file *f, uint64_t from,
                      uint64_t to)
{
    uint64_t last = (f->size - 1) / CACHE_CHUNK_SIZE;
    if (f->size == 0)
        return;
    if (to > last)
        to = last;
    for (uint64_t idx = from; idx <= to; idx++) {
        struct chunk *ch;
        bool oom;
        int fd = -1;
        if (disk_has(c, f->key, idx))
            continue;
        /* another process fetching it (lock held) or done (file there):
         * the reader will wait for it or load it */
        if (c->share &&
            (cache_share_fetch_lock(c->share, f->key, idx, false, &fd) ==
                 -EWOULDBLOCK ||
             (fd >= 0 && chunk_file_exists(c, f->key, idx)))) {
            cache_share_fetch_unlock(c->share, f->key, idx, fd);
            continue;
        }
        pthread_mutex_lock(&c->lock);
        if (*table_slot(c, f->key, idx)) {
            pthread_mutex_unlock(&c->lock);
            cache_share_fetch_unlock(c->share, f->key, idx, fd);
            continue;
        }
        /* keep room for readers: use at most all but two buffers */
        if (c->nbuf >= c->mem_chunks - 2 && !c->lru_head) {
            pthread_mutex_unlock(&c->lock);
            cache_share_fetch_unlock(c->share, f->key, idx, fd);
            return;
        }
        ch = chunk_create(c, f, idx, &oom);
        if (!ch) {
            pthread_mutex_unlock(&c->lock);
            cache_share_fetch_unlock(c->share, f->key, idx, fd);
            return;
        }
        ch->fetch_fd = fd;
        ch->readahead = true;
        c->st.readahead++;
        c->st.misses++;
        pthread_mutex_unlock(&c->lock);
        fetch_start(c, f, ch); /* the create pin becomes the fetch's pin */
    }
}

/* Drops every chunk of f from memory and disk (a failed whole-file check):
 * the next read fetches them again. */
static void drop_file_chunks(struct cache *c, struct cache_file *f)
{
    uint64_t n = f->size ? (f->size - 1) / CACHE_CHUNK_SIZE + 1 : 0;
    for (uint64_t idx = 0; idx < n; idx++) {
        char path[4200];
        pthread_mutex_lock(&c->lock);
        struct chunk *ch = *table_slot(c, f->key, idx);
        if (ch && ch->state == CH_READY) {
            table_remove(c, ch);
            if (ch->pins == 0)
                chunk_destroy(c, ch);
        }
        pthread_mutex_unlock(&c->lock);
        pthread_mutex_lock(&c->disk_lock);
        disk_remove(c, f->key, idx);
        pthread_mutex_unlock(&c->disk_lock);
        if (c->disk_ok &&
            chunk_path(c, f->key, idx, path, sizeof(path)) == 0 &&
            c->io->unlink(path) == 0)
            cache_share_add(c->share, -(int64_t)(chunk_len(f, idx) +
                                                 sizeof(struct chunk_hdr)),
                            -1);
    }
}

/* Feeds chunk ch to f's whole-file hash if it is the next in order; at the
 * last chunk compares with the key. -EIO: the file's bytes do not match
 * its sha256, so this (last) chunk must not be served. */
static int hash_chunk(struct cache_file *f,
                      const struct chunk *ch)
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
    if (!bad)
        return 0;
    hfm_log(HFM_LOG_ERR,
            "%s: the bytes read do not match the file's sha256 %s (got %s); "
            "dropping its cached chunks",
            f->name ? f->name : f->key, f->key, hex);
    return -EIO;
}

void cache_advise(struct cache *c, struct cache_file *f,
                  struct cache_stream *s, uint64_t off, size_t len)
{
    uint64_t first_idx, last_idx;

    if (c->ra_max <= 0 || off >= f->size || len == 0)
        return;
    if (len > f->size - off)
        len = (size_t)(f->size - off);
    first_idx = off / CACHE_CHUNK_SIZE;
    last_idx = (off + len - 1) / CACHE_CHUNK_SIZE;

    /* Sequential if this read starts in the chunk the last one ended in, or
     * the next: the kernel's parallel async reads arrive a little out of
     * order. Random access halves the window. */
    if (s->started &&
        (first_idx == s->last_idx || first_idx == s->last_idx + 1)) {
        if (first_idx != s->last_idx || s->window == 0)
            s->window = s->window ? s->window * 2 : 1;
        if (s->window > c->ra_max)
            s->window = c->ra_max;
    } else if (s->started) {
        s->window /= 2;
    } else {
        s->window = off == 0 ? 1 : 0;
    }
    s->started = true;
    s->last_idx = last_idx;
    s->next_off = off + len;
    if (s->window > 0)
        start_readahead(c, f, last_idx + 1, last_idx + (uint64_t)s->window);
}

/* Pins the verified chunk holding byte a of f (a < f->size): *ptr and *n
 * are the bytes from a to the chunk's end. NULL with *err set on failure
 * (a failed whole-file check drops the file's chunks). */
static struct chunk *pin_at(struct cache *c, struct cache_file *f,
                            uint64_t a, const char **ptr, size_t *n,
                            int *err, struct hub_why *why)
{
    uint64_t idx = a / CACHE_CHUNK_SIZE;
    struct chunk *ch = chunk_get(c, f, idx, err, why);
    size_t at = (size_t)(a - idx * CACHE_CHUNK_SIZE);

    if (!ch)
        return NULL;
    if (at >= ch->len) { /* a chunk shorter than the file says: no loop */
        pthread_mutex_lock(&c->lock);
        unpin(c, ch);
        pthread_mutex_unlock(&c->lock);
        *err = -EIO;
        return NULL;
    }
    if (hash_chunk(f, ch) < 0) {
        pthread_mutex_lock(&c->lock);
        unpin(c, ch);
        pthread_mutex_unlock(&c->lock);
        drop_file_chunks(c, f);
        *err = -EIO;
        return NULL;
    }
    *ptr = ch->buf + at;
    *n = ch->len - at;
    return ch;
}

ssize_t cache_read(struct cache *c, struct cache_file *f, uint64_t off,
                   size_t len, char *buf, struct hub_why *why)
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
        struct chunk *ch = pin_at(c, f, off + done, &p, &n, &err, why);
        if (!ch)
            return done > 0 ? (ssize_t)done : err;
        if (n > len - done)
            n = len - done;
        memcpy(buf + done, p, n);
        done += n;
        pthread_mutex_lock(&c->lock);
        unpin(c, ch);
        pthread_mutex_unlock(&c->lock);
    }
    return (ssize_t)done;
}

ssize_t cache_read_span(struct cache *c, struct cache_file *f, uint64_t off,
                        size_t len, struct cache_span *out,
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
    out->pin = pin_at(c, f, off, &out->ptr, &out->len, &err, why);
    if (!out->pin)
        return err;
    if (out->len > len)
        out->len = len;
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
        int rc;
        while (!c->wq_head && !c->stopping)
            pthread_cond_wait(&c->wcond, &c->lock);
        ch = c->wq_head;
        if (!ch)
            break; /* stopping and drained */
        c->wq_head = ch->wnext;
        if (!c->wq_head)
            c->wq_tail = NULL;
        pthread_mutex_unlock(&c->lock);

        if (c->disk_ok) {
            uint64_t bytes = ch->len + sizeof(struct chunk_hdr);
            bool replaced = false;
            struct timespec now;
            disk_make_room(c, bytes);
            /* the file and the shared count move together (see
             * cache_share.h: evict.lock) */
            cache_share_evict_lock(c->share, false);
            rc = chunk_store(c, ch->key, ch->idx, ch->buf, ch->len,
                             &replaced);
            if (rc == 0 && !replaced)
                cache_share_add(c->share, (int64_t)bytes, 1);
            cache_share_evict_unlock(c->share);
            if (rc == 0) {
                clock_gettime(CLOCK_REALTIME, &now);
                pthread_mutex_lock(&c->disk_lock);
                disk_add(c, ch->key, ch->idx, bytes, &now);
                pthread_mutex_unlock(&c->disk_lock);
            }
        } else {
            rc = 0; /* memory-only: nothing to store, nothing to report */
        }
        /* stored (or not): other processes waiting for it go on */
        cache_share_fetch_unlock(c->share, ch->key, ch->idx, ch->fetch_fd);
        ch->fetch_fd = -1;

        pthread_mutex_lock(&c->lock);
        if (rc == 0 && c->disk_ok)
            c->st.stored++;
        if (rc < 0) {
            c->st.write_errors++;
            if (!c->warned_write) {
                c->warned_write = true;
                hfm_log(HFM_LOG_WARN,
                        "cannot store chunks in '%s': %s; reading on "
                        "without caching",
                        c->dir, strerror(-rc));
            }
        }
        unpin(c, ch);
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
    c->ra_max = cfg->ra_max_chunks == 0 ? CACHE_RA_MAX_CHUNKS
                                        : cfg->ra_max_chunks;
    if (c->ra_max > c->mem_chunks - 4)
        c->ra_max = c->mem_chunks - 4;
    c->io = &cache_io_default;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->disk_lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    pthread_cond_init(&c->wcond, NULL);

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
        rc = cache_share_open(c->dir, &c->share);
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
    disk_recount(c);
    disk_make_room(c, 0); /* a smaller --cache-size than last time */
    *out = c;
    return 0;

out_free:
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->disk_lock);
    pthread_cond_destroy(&c->cond);
    pthread_cond_destroy(&c->wcond);
    free(c);
    return rc;
}

int cache_start(struct cache *c, struct hub *hub)
{
    c->hub = hub;
    if (pthread_create(&c->writer, NULL, writer_main, c) != 0)
        return -EAGAIN;
    c->writer_started = true;
    return 0;
}

void cache_free(struct cache *c)
{
    if (!c)
        return;
    /* fetches in flight finish (or fail) before the hub is freed; the
     * caller frees the hub after us, so wait for pins to drain */
    pthread_mutex_lock(&c->lock);
    for (;;) {
        bool busy = false;
        for (int i = 0; i < TABLE_BUCKETS && !busy; i++)
            for (struct chunk *ch = c->table[i]; ch; ch = ch->hnext)
                if (ch->state == CH_LOADING) {
                    busy = true;
                    break;
                }
        if (!busy)
            break;
        pthread_cond_wait(&c->cond, &c->lock);
    }
    c->stopping = true;
    pthread_cond_signal(&c->wcond);
    pthread_mutex_unlock(&c->lock);
    if (c->writer_started)
        pthread_join(c->writer, NULL);
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
    disk_clear(c);
    cache_share_close(c->share);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->disk_lock);
    pthread_cond_destroy(&c->cond);
    pthread_cond_destroy(&c->wcond);
    free(c);
}

void cache_get_stats(struct cache *c, struct cache_stats *out)
{
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    pthread_mutex_unlock(&c->lock);
    pthread_mutex_lock(&c->disk_lock);
    out->disk_bytes = c->share ? cache_share_bytes(c->share) : c->disk_bytes;
    out->disk_chunks = c->share ? cache_share_chunks(c->share)
                                : c->disk_chunks;
    pthread_mutex_unlock(&c->disk_lock);
    out->processes = c->share ? cache_share_processes(c->share) : 1;
}

static int remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int rc = 0;
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    while ((de = readdir(d))) {
        char p[4800];
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
        if (lstat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            int r = remove_tree(p);
            if (r < 0)
                rc = r;
            if (rmdir(p) < 0 && errno != ENOENT)
                rc = -errno;
        } else if (unlink(p) < 0 && errno != ENOENT) {
            rc = -errno;
        }
    }
    closedir(d);
    return rc;
}

int cache_clean(struct cache *c)
{
    char p[4200];
    int rc;

    if (!c->disk_ok)
        return -EROFS;
    cache_share_evict_lock(c->share, true);
    snprintf(p, sizeof(p), "%s/chunks", c->dir);
    rc = remove_tree(p);
    snprintf(p, sizeof(p), "%s/meta", c->dir);
    if (rc == 0)
        rc = remove_tree(p);
    cache_share_evict_unlock(c->share);
    disk_recount(c); /* what others stored meanwhile stays counted */
    return rc;
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
        strchr(key, '/') || key[0] == '.')
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

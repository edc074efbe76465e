/*
 * cache_store.c - the disk store: index, LRU eviction, recount, clean
 * (see cache_store.h; the files' layout is cache_format.c's alone).
 *
 * DESIGN. The index is a hash table plus an LRU list (head = oldest) of
 * the chunk files this process knows, with the bytes each takes and its
 * time stamp when last seen. The byte count that the bound is checked
 * against is the shared one (cache_share.h), so several processes keep
 * one bound. Eviction and stores run on the cache's writer thread only;
 * readers only touch, forget and drop.
 *
 * Lock order: the cache's lock before s->lock; no I/O under s->lock.
 */
#include "cache/cache_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "cache/cache_format.h"
#include "cache/cache_internal.h"
#include "cache/cache_share.h"

#define DISK_BUCKETS 8192

struct disk_ent {
    char key[CACHE_KEY_MAX];
    uint64_t idx;
    uint64_t bytes;
    struct timespec mtime; /* the file's, when we last saw it */
    struct disk_ent *hnext;
    struct disk_ent *lprev, *lnext; /* LRU, head = oldest */
};

struct cache_store {
    char dir[4096];
    uint64_t max_bytes;
    const struct cache_io *const *io;
    struct cache_share *share;

    pthread_mutex_t lock;
    struct disk_ent *disk[DISK_BUCKETS];    /* protected by lock */
    struct disk_ent *dlru_head, *dlru_tail; /* protected by lock */
    uint64_t bytes;                         /* protected by lock */
    uint64_t chunks;                        /* protected by lock */
    uint64_t evicted;                       /* protected by lock */
};

static uint64_t hash_key(const char *key, uint64_t idx)
{
    return XXH3_64bits_withSeed(key, strlen(key), idx);
}

/* ---- index (s->lock held) --------------------------------------------- */

static struct disk_ent **slot(struct cache_store *s, const char *key,
                              uint64_t idx)
{
    struct disk_ent **pp = &s->disk[hash_key(key, idx) % DISK_BUCKETS];
    while (*pp && ((*pp)->idx != idx || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->hnext;
    return pp;
}

static void lru_unlink(struct cache_store *s, struct disk_ent *e)
{
    if (e->lprev)
        e->lprev->lnext = e->lnext;
    else
        s->dlru_head = e->lnext;
    if (e->lnext)
        e->lnext->lprev = e->lprev;
    else
        s->dlru_tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push_tail(struct cache_store *s, struct disk_ent *e)
{
    e->lnext = NULL;
    e->lprev = s->dlru_tail;
    if (s->dlru_tail)
        s->dlru_tail->lnext = e;
    else
        s->dlru_head = e;
    s->dlru_tail = e;
}

static void index_add(struct cache_store *s, const char *key, uint64_t idx,
                      uint64_t bytes, const struct timespec *mtime)
{
    struct disk_ent **pp = slot(s, key, idx);
    struct disk_ent *e = *pp;
    if (e) {
        s->bytes -= e->bytes;
        e->bytes = bytes;
        e->mtime = *mtime;
        s->bytes += bytes;
        lru_unlink(s, e);
        lru_push_tail(s, e);
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
    lru_push_tail(s, e);
    s->bytes += bytes;
    s->chunks++;
}

static uint64_t index_remove(struct cache_store *s, const char *key,
                             uint64_t idx)
{
    struct disk_ent **pp = slot(s, key, idx);
    struct disk_ent *e = *pp;
    uint64_t bytes;
    if (!e)
        return 0;
    *pp = e->hnext;
    lru_unlink(s, e);
    bytes = e->bytes;
    s->bytes -= e->bytes;
    s->chunks--;
    free(e);
    return bytes;
}

static void index_clear(struct cache_store *s)
{
    for (int i = 0; i < DISK_BUCKETS; i++) {
        struct disk_ent *e = s->disk[i];
        while (e) {
            struct disk_ent *next = e->hnext;
            free(e);
            e = next;
        }
        s->disk[i] = NULL;
    }
    s->dlru_head = s->dlru_tail = NULL;
    s->bytes = 0;
    s->chunks = 0;
}

/* ---- queries and updates ---------------------------------------------- */

int cache_store_path(const struct cache_store *s, const char *key,
                     uint64_t idx, char *out, size_t cap)
{
    return cache_fmt_path(s->dir, key, idx, out, cap);
}

struct cache_share *cache_store_share(struct cache_store *s)
{
    return s->share;
}

bool cache_store_holds(struct cache_store *s, const char *key, uint64_t idx,
                       uint64_t bytes)
{
    struct disk_ent *e;
    bool has;
    pthread_mutex_lock(&s->lock);
    e = *slot(s, key, idx);
    has = e && e->bytes >= bytes;
    pthread_mutex_unlock(&s->lock);
    return has;
}

void cache_store_touch(struct cache_store *s, const char *key, uint64_t idx,
                       uint64_t bytes)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&s->lock);
    index_add(s, key, idx, bytes, &now);
    pthread_mutex_unlock(&s->lock);
}

void cache_store_forget(struct cache_store *s, const char *key, uint64_t idx)
{
    pthread_mutex_lock(&s->lock);
    (void)index_remove(s, key, idx);
    pthread_mutex_unlock(&s->lock);
}

/* What the count holds for the file at path, just before this process
 * unlinks it: its header's blocks, as whoever stored them added them, or
 * its allocation if the header is unreadable. Not the index's figure:
 * that is what the file held when this process last wrote or saw it, and
 * another process may since have evicted it and stored a new one with
 * fewer blocks under the name (subtracting the old figure would leave the
 * count under the disk, and the disk over the bound). */
static uint64_t counted_bytes(const char *path, const struct stat *st)
{
    struct cache_fmt_info info;
    if (cache_fmt_inspect(path, &info) == 0)
        return info.bytes;
    return cache_fmt_disk_bytes(st);
}

bool cache_store_drop(struct cache_store *s, const char *key, uint64_t idx,
                      uint64_t file_id)
{
    char path[4200];
    struct stat st;
    uint64_t bytes;

    pthread_mutex_lock(&s->lock);
    (void)index_remove(s, key, idx);
    pthread_mutex_unlock(&s->lock);
    if (cache_store_path(s, key, idx, path, sizeof(path)) < 0)
        return false;
    if (stat(path, &st) < 0)
        return false;
    if (file_id && cache_fmt_file_id(&st) != file_id)
        return false; /* a new file under the name: not the bad one */
    bytes = counted_bytes(path, &st);
    if ((*s->io)->unlink(path) < 0)
        return false;
    cache_share_add(s->share, -(int64_t)bytes, -1);
    return true;
}

static bool ts_newer(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec != b->tv_sec ? a->tv_sec > b->tv_sec
                                  : a->tv_nsec > b->tv_nsec;
}

static bool is_chunk(const struct disk_ent *e, const char *key, uint64_t idx)
{
    return key && e->idx == idx && strcmp(e->key, key) == 0;
}

/* Evicts the oldest chunk files until need more bytes fit in the store
 * all its processes share (invariant 5), never chunk (keep, keep_idx)
 * (NULL: any). Writer thread only. The candidates are this process's
 * index, oldest first; a file another process has read since we saw it
 * (its time stamp moved) goes to the young end instead. When the index
 * runs dry with the store still over (the others' files are not in it),
 * one recount refills it. */
static void evict_until(struct cache_store *s, uint64_t need, const char *keep,
                        uint64_t keep_idx)
{
    bool recounted = false;
    uint64_t spared = 0;

    for (;;) {
        char path[4200];
        char key[CACHE_KEY_MAX];
        uint64_t idx, bytes, total;
        struct timespec seen;
        struct stat st;
        int rc;

        pthread_mutex_lock(&s->lock);
        total = s->share ? cache_share_bytes(s->share) : s->bytes;
        if (total + need <= s->max_bytes) {
            pthread_mutex_unlock(&s->lock);
            return;
        }
        if (s->dlru_head && is_chunk(s->dlru_head, keep, keep_idx)) {
            pthread_mutex_unlock(&s->lock);
            return; /* nothing older of ours: the others trim theirs */
        }
        if (!s->dlru_head || spared > s->chunks) {
            pthread_mutex_unlock(&s->lock);
            if (recounted || !s->share)
                return;
            recounted = true;
            spared = 0;
            cache_store_recount(s);
            continue;
        }
        snprintf(key, sizeof(key), "%s", s->dlru_head->key);
        idx = s->dlru_head->idx;
        bytes = s->dlru_head->bytes;
        seen = s->dlru_head->mtime;
        pthread_mutex_unlock(&s->lock);
        if (cache_store_path(s, key, idx, path, sizeof(path)) < 0) {
            rc = -ENAMETOOLONG;
        } else if (stat(path, &st) < 0) {
            rc = -errno; /* gone already: evicted by another process */
        } else if (ts_newer(&st.st_mtim, &seen)) {
            pthread_mutex_lock(&s->lock);
            index_add(s, key, idx, bytes, &st.st_mtim);
            pthread_mutex_unlock(&s->lock);
            spared++;
            continue;
        } else {
            cache_share_evict_lock(s->share, false);
            bytes = counted_bytes(path, &st);
            rc = (*s->io)->unlink(path) < 0 ? -errno : 0;
            if (rc == 0)
                cache_share_add(s->share, -(int64_t)bytes, -1);
            cache_share_evict_unlock(s->share);
        }
        pthread_mutex_lock(&s->lock);
        (void)index_remove(s, key, idx);
        if (rc == 0)
            s->evicted++;
        pthread_mutex_unlock(&s->lock);
    }
}

void cache_store_make_room(struct cache_store *s, uint64_t need)
{
    evict_until(s, need, NULL, 0);
}

int cache_store_put(struct cache_store *s, const char *key, uint64_t idx,
                    uint64_t len, uint64_t add, const char *buf)
{
    char path[4200];
    struct timespec now;
    int64_t grew = 0;
    uint64_t holds = 0;
    bool created = false;
    int rc = cache_store_path(s, key, idx, path, sizeof(path));

    if (rc < 0)
        return rc;
    cache_store_make_room(s, cache_fmt_bytes(len, add));
    /* the file and the shared count move together (cache_share.h) */
    cache_share_evict_lock(s->share, false);
    rc = cache_fmt_store(*s->io, path, key, idx, len, add, buf, &grew,
                         &created, &holds);
    if (rc == 0)
        cache_share_add(s->share, grew, created ? 1 : 0);
    cache_share_evict_unlock(s->share);
    if (rc < 0 || holds == 0)
        return rc;
    /* the index records what the file holds now, not its old figure plus
     * the growth: the file may be a new one (ours or another process's)
     * since another process evicted the one we indexed */
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&s->lock);
    index_add(s, key, idx, holds, &now);
    pthread_mutex_unlock(&s->lock);
    /* Two processes that made room at once have both stored: the store
     * may now be over by a chunk. Whoever stores last trims it back (older
     * files than this one), so the bound holds again once the writes end. */
    evict_until(s, 0, key, idx);
    return 0;
}

/* ---- scan, recount, clean --------------------------------------------- */

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

struct scan {
    struct scan_ent *v;
    size_t n, cap;
};

static bool scan_one(const struct cache_fmt_entry *e, void *arg)
{
    struct scan *sc = arg;
    struct stat stb;
    if (e->tmp) {
        (void)unlink(e->path);
        return true;
    }
    if (stat(e->path, &stb) < 0 || !S_ISREG(stb.st_mode))
        return true;
    if (sc->n == sc->cap) {
        size_t ncap = sc->cap ? sc->cap * 2 : 256;
        struct scan_ent *nv = realloc(sc->v, ncap * sizeof(*nv));
        if (!nv)
            return false;
        sc->v = nv;
        sc->cap = ncap;
    }
    snprintf(sc->v[sc->n].key, sizeof(sc->v[sc->n].key), "%s", e->key);
    sc->v[sc->n].idx = e->idx;
    sc->v[sc->n].bytes = cache_fmt_disk_bytes(&stb);
    sc->v[sc->n].mtime = stb.st_mtim;
    sc->n++;
    return true;
}

/* Rebuilds the index from chunks/, oldest first, and removes temporary
 * files: under the exclusive evict lock no process is writing one, so
 * each was left by a crash mid-write. */
static void scan(struct cache_store *s)
{
    struct scan sc = {0};
    struct scan_ent *v;
    size_t n;

    (void)cache_fmt_walk(s->dir, scan_one, &sc);
    v = sc.v;
    n = sc.n;
    if (n > 0)
        qsort(v, n, sizeof(*v), cmp_scan);
    pthread_mutex_lock(&s->lock);
    index_clear(s);
    for (size_t i = 0; i < n; i++)
        index_add(s, v[i].key, v[i].idx, v[i].bytes, &v[i].mtime);
    pthread_mutex_unlock(&s->lock);
    free(v);
}

/* Counts the store anew from the directory, for every process: at start,
 * after a clean, and when eviction finds its index dry. */
void cache_store_recount(struct cache_store *s)
{
    cache_share_evict_lock(s->share, true);
    scan(s);
    pthread_mutex_lock(&s->lock);
    cache_share_set(s->share, s->bytes, s->chunks);
    pthread_mutex_unlock(&s->lock);
    cache_share_evict_unlock(s->share);
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

int cache_store_clean(struct cache_store *s)
{
    char p[4200];
    int rc;

    cache_share_evict_lock(s->share, true);
    snprintf(p, sizeof(p), "%s/chunks", s->dir);
    rc = remove_tree(p);
    snprintf(p, sizeof(p), "%s/meta", s->dir);
    if (rc == 0)
        rc = remove_tree(p);
    cache_share_evict_unlock(s->share);
    cache_store_recount(s); /* what others stored meanwhile stays counted */
    return rc;
}

/* ---- life cycle -------------------------------------------------------- */

int cache_store_new(const char *dir, uint64_t max_bytes,
                    const struct cache_io *const *io,
                    struct cache_store **out)
{
    struct cache_store *s;
    int rc;

    *out = NULL;
    if (strlen(dir) >= sizeof(s->dir) - 64)
        return -ENAMETOOLONG;
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    s->max_bytes = max_bytes;
    s->io = io;
    pthread_mutex_init(&s->lock, NULL);
    rc = cache_share_open(dir, &s->share);
    if (rc < 0) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        return rc;
    }
    cache_store_recount(s);
    cache_store_make_room(s, 0); /* a smaller --cache-size than last time */
    *out = s;
    return 0;
}

void cache_store_free(struct cache_store *s)
{
    if (!s)
        return;
    index_clear(s);
    cache_share_close(s->share);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void cache_store_get_stats(struct cache_store *s,
                           struct cache_store_stats *out)
{
    pthread_mutex_lock(&s->lock);
    out->bytes = cache_share_bytes(s->share);
    out->chunks = cache_share_chunks(s->share);
    out->evicted = s->evicted;
    pthread_mutex_unlock(&s->lock);
    out->processes = cache_share_processes(s->share);
}

/*
 * test_cache.c - unit tests of cache/ without a network: the store's
 * directory lock, the metadata store (round trips; damaged files dropped),
 * and the chunk file format read back through cache_read() with an
 * offline hub (nothing can be fetched, so a chunk either comes from disk,
 * verified, or the read fails: never wrong bytes). Also: temporary files
 * a crash left are removed at start, a smaller --cache-size evicts the
 * oldest chunks at start, and injected I/O errors (cache_set_io) are never
 * served.
 *
 * Chunk files are written with cache_format.c's own writer, then damaged
 * at the places cache_format.h names: the header from byte 0 (magic, then
 * idx, then len at byte 16), block data from CACHE_FMT_DATA_OFF.
 * Invariants cited are cache/cache.c's.
 */
#include "cache/cache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "cache/cache_format.h"
#include "cache/cache_internal.h"
#include "cache/cache_store.h"
#include "cache/sha256.h"
#include "check.h"
#include "net/hub.h"

#define SHA      "8760ad50772480c4b86a3b7568a565ca0dd6a714"
#define DATA_LEN 1000

static char root[64];

static void path_of(char *out, size_t cap, const char *dir, const char *key,
                    uint64_t idx)
{
    snprintf(out, cap, "%s/chunks/%.2s/%s.%llu", dir, key, key,
             (unsigned long long)idx);
}

static void fill(char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)((i * 131 + seed * 7) & 0xff);
}

/* Writes chunk idx of key, every block, as the store would. */
static int write_chunk(const char *dir, const char *key, uint64_t idx,
                       const char *data, size_t len)
{
    char path[512], sub[512];
    int64_t grew;
    uint64_t holds;
    bool created;

    snprintf(sub, sizeof(sub), "%s/chunks", dir);
    mkdir(sub, 0700);
    path_of(path, sizeof(path), dir, key, idx);
    return cache_fmt_store(&cache_io_default, path, key, idx, len,
                           cache_fmt_all(len), data, &grew, &created, &holds);
}

static void flip_byte(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    unsigned char b;
    if (fd < 0)
        return;
    if (pread(fd, &b, 1, off) == 1) {
        b ^= 0x40;
        if (pwrite(fd, &b, 1, off) != 1)
            perror("pwrite");
    }
    close(fd);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void key_of(char *out, unsigned n)
{
    snprintf(out, 41, "%02x%038x", n & 0xff, n);
}

static int new_cache(const char *dir, uint64_t max, struct cache **out)
{
    struct cache_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = dir;
    cfg.max_bytes = max;
    return cache_new(&cfg, out);
}

/* Two stores on one directory (as two processes would open it): both
 * work, both count each other (cache_share.h: procs/), and the one that
 * closes is no longer counted. */
static void test_shared_dir(void)
{
    char dir[128], sub[160];
    struct cache_config cfg;
    struct cache *a = NULL, *b = NULL;
    struct cache_stats st;

    snprintf(dir, sizeof(dir), "%s/shared", root);
    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = dir;
    CHECK(cache_new(&cfg, &a) == 0 && a);
    CHECK(cache_disk_ok(a));
    snprintf(sub, sizeof(sub), "%s/chunks", dir);
    CHECK(exists(sub));
    snprintf(sub, sizeof(sub), "%s/meta", dir);
    CHECK(exists(sub));
    snprintf(sub, sizeof(sub), "%s/usage", dir);
    CHECK(exists(sub));
    CHECK(cache_new(&cfg, &b) == 0 && b);
    CHECK(cache_disk_ok(b));
    cache_get_stats(a, &st);
    CHECK(st.processes == 2);
    cache_free(b);
    cache_get_stats(a, &st);
    CHECK(st.processes == 1);
    cache_free(a);
}

/* The shared count follows the disk when two processes evict and store
 * one chunk in turn (invariant 5 across processes): b evicts the file a
 * indexed, then a new file with fewer blocks is stored under its name.
 * Whoever evicts it next subtracts what that file holds, not the figure
 * a's index kept, so the count never falls under the bytes on disk (it
 * did: the disk then ended over --cache-size). */
static uint64_t store_bytes(struct cache_store *s)
{
    struct cache_store_stats st;
    cache_store_get_stats(s, &st);
    return st.bytes;
}

/* Two stores on ROOT/name (as two processes would open it), a on io_a,
 * and *data: len bytes of a pattern. false (and nothing to free) when
 * one of them cannot be made. */
static bool two_stores(const char *name, uint64_t max,
                       const struct cache_io *const *io_a, uint64_t len,
                       char *dir, size_t cap, struct cache_store **a,
                       struct cache_store **b, char **data)
{
    static const struct cache_io *io = &cache_io_default;
    char sub[200];

    *a = *b = NULL;
    *data = malloc(len);
    CHECK(*data != NULL);
    if (!*data)
        return false;
    fill(*data, len, (unsigned)len);
    snprintf(dir, cap, "%s/%s", root, name);
    mkdir(dir, 0700);
    snprintf(sub, sizeof(sub), "%s/chunks", dir);
    mkdir(sub, 0700);
    CHECK(cache_store_new(dir, max, io_a, a) == 0 && *a);
    CHECK(cache_store_new(dir, max, &io, b) == 0 && *b);
    if (*a && *b)
        return true;
    cache_store_free(*b);
    cache_store_free(*a);
    free(*data);
    return false;
}

static void test_shared_count(void)
{
    static const struct cache_io *io = &cache_io_default;
    char dir[128], k1[48], k2[48], k3[48];
    const uint64_t len = 2 * CACHE_BLOCK_SIZE + 100; /* 3 blocks */
    const uint64_t full = CACHE_FMT_DATA_OFF + len;
    const uint64_t one = CACHE_FMT_DATA_OFF + CACHE_BLOCK_SIZE;
    struct cache_store *a, *b;
    char *data;

    if (!two_stores("count", 64u << 20, &io, len, dir, sizeof(dir), &a, &b,
                    &data))
        return;
    key_of(k1, 0x4400);
    key_of(k2, 0x4401);
    key_of(k3, 0x4402);

    /* a stores k1 whole; b (after a recount) evicts it; a stores it again */
    CHECK(cache_store_put(a, k1, 0, len, cache_fmt_all(len), data) == 0);
    CHECK(store_bytes(a) == full);
    cache_store_recount(b);
    CHECK(cache_store_drop(b, k1, 0, 0));
    CHECK(store_bytes(a) == 0);
    CHECK(cache_store_put(a, k1, 0, len, cache_fmt_all(len), data) == 0);
    CHECK(cache_store_put(a, k2, 0, len, cache_fmt_all(len), data) == 0);
    CHECK(store_bytes(a) == 2 * full);
    /* a's eviction of k1 (the oldest) takes away one file's bytes, not
     * two: room for max - full leaves k2 alone */
    cache_store_make_room(a, (64u << 20) - full);
    CHECK(store_bytes(a) == full);

    /* b evicts k2, then stores one block of it: a, whose index says k2 is
     * whole, removes that file and subtracts one block */
    CHECK(cache_store_put(a, k3, 0, len, cache_fmt_all(len), data) == 0);
    CHECK(store_bytes(a) == 2 * full);
    cache_store_recount(b);
    CHECK(cache_store_drop(b, k2, 0, 0));
    CHECK(cache_store_put(b, k2, 0, len, 1, data) == 0);
    CHECK(store_bytes(b) == full + one);
    CHECK(cache_store_drop(a, k2, 0, 0));
    CHECK(store_bytes(a) == full && store_bytes(b) == full);
    cache_store_recount(a);
    CHECK(store_bytes(a) == full); /* the recount agrees: k3 on disk */
    cache_store_free(b);
    cache_store_free(a);
    free(data);
}

/* Two processes that make room at the same moment both store (the store
 * is then over by a chunk); the one whose store ends last trims its older
 * files, so the store is back under the bound once the writes end. The
 * race is staged: b's whole store runs inside a's, between a's eviction
 * and a's rename. */
static struct cache_store *race_b;
static const char *race_key;
static const char *race_data;
static uint64_t race_len;

static int racing_rename(const char *from, const char *to)
{
    int rc = rename(from, to);
    struct cache_store *b = race_b;
    race_b = NULL;
    if (b)
        CHECK(cache_store_put(b, race_key, 0, race_len,
                              cache_fmt_all(race_len), race_data) == 0);
    return rc;
}

static void test_racing_stores_trim(void)
{
    static struct cache_io racing;
    static const struct cache_io *rio = &racing;
    char dir[128], k0[48], k1[48], k2[48], path[512];
    const uint64_t len = 2 * CACHE_BLOCK_SIZE + 100;
    const uint64_t full = CACHE_FMT_DATA_OFF + len;
    struct cache_store *a, *b;
    char *data;

    racing = cache_io_default;
    racing.rename = racing_rename;
    if (!two_stores("race", 2 * full, &rio, len, dir, sizeof(dir), &a, &b,
                    &data))
        return;
    key_of(k0, 0x4500);
    key_of(k1, 0x4501);
    key_of(k2, 0x4502);
    CHECK(cache_store_put(a, k0, 0, len, cache_fmt_all(len), data) == 0);
    race_b = b;
    race_key = k2;
    race_data = data;
    race_len = len;
    /* a makes room for k1 (none needed), b stores k2 meanwhile, then a's
     * k1 lands: three files for a bound of two, until a trims k0 */
    CHECK(cache_store_put(a, k1, 0, len, cache_fmt_all(len), data) == 0);
    CHECK(race_b == NULL); /* b's store ran */
    CHECK(store_bytes(a) == 2 * full);
    path_of(path, sizeof(path), dir, k0, 0);
    CHECK(!exists(path));
    path_of(path, sizeof(path), dir, k1, 0);
    CHECK(exists(path));
    path_of(path, sizeof(path), dir, k2, 0);
    CHECK(exists(path));
    race_b = NULL;
    cache_store_free(b);
    cache_store_free(a);
    free(data);
}

static void add_entry(struct hub_tree *t, const char *name, bool dir,
                      uint64_t size, const char *oid, const char *sha256)
{
    struct hub_tree_entry *e;
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->entries = realloc(t->entries, t->cap * sizeof(*e));
    }
    e = &t->entries[t->count++];
    memset(e, 0, sizeof(*e));
    e->name = strdup(name);
    e->is_dir = dir;
    e->size = size;
    snprintf(e->oid, sizeof(e->oid), "%s", oid);
    snprintf(e->sha256, sizeof(e->sha256), "%s", sha256);
}

static void sample_tree(struct hub_tree *t)
{
    hub_tree_init(t);
    add_entry(t, "nested", true, 0, "1111111111111111111111111111111111111111",
              "");
    add_entry(t, "config.json", false, 176,
              "2222222222222222222222222222222222222222", "");
    add_entry(
        t, "model.safetensors", false, 16793792,
        "3333333333333333333333333333333333333333",
        "4999f10d6c66816d93d408d7fd63b1b7a5615f4b3d765efe967affb2ba80ef0e");
    add_entry(t, "dir with space", true, 0, "", "");
}

static bool same_entry(const struct hub_tree *t, const char *name, bool dir,
                       uint64_t size, const char *oid, const char *sha256)
{
    for (size_t i = 0; i < t->count; i++) {
        const struct hub_tree_entry *e = &t->entries[i];
        if (strcmp(e->name, name) == 0)
            return e->is_dir == dir && e->size == size &&
                   strcmp(e->oid, oid) == 0 && strcmp(e->sha256, sha256) == 0;
    }
    return false;
}

static void check_sample(const struct hub_tree *t)
{
    CHECK(t->count == 4);
    CHECK(same_entry(t, "nested", true, 0,
                     "1111111111111111111111111111111111111111", ""));
    CHECK(same_entry(t, "config.json", false, 176,
                     "2222222222222222222222222222222222222222", ""));
    CHECK(same_entry(t, "model.safetensors", false, 16793792,
                     "3333333333333333333333333333333333333333",
                     "4999f10d6c66816d93d408d7fd63b1b7a5615f4b3d765efe967aff"
                     "b2ba80ef0e"));
    CHECK(same_entry(t, "dir with space", true, 0, "", ""));
    for (size_t i = 1; i < t->count; i++)
        CHECK(strcmp(t->entries[i - 1].name, t->entries[i].name) < 0);
}

/* The one regular file under dir/meta (a fresh store holds one answer). */
static int only_meta_file(const char *dir, char *out, size_t cap)
{
    char top[256], sub[512];
    DIR *d, *sd;
    struct dirent *de, *se;
    int n = 0;

    snprintf(top, sizeof(top), "%s/meta", dir);
    d = opendir(top);
    if (!d)
        return 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", top, de->d_name);
        sd = opendir(sub);
        if (!sd)
            continue;
        while ((se = readdir(sd))) {
            if (se->d_name[0] == '.')
                continue;
            snprintf(out, cap, "%s/%s", sub, se->d_name);
            n++;
        }
        closedir(sd);
    }
    closedir(d);
    return n;
}

static void test_meta_round_trip(void)
{
    char dir[128];
    struct cache *c;
    struct hub_tree t, got;
    struct hub_info info, ginfo;

    snprintf(dir, sizeof(dir), "%s/meta_rt", root);
    CHECK(new_cache(dir, 0, &c) == 0);
    if (!c)
        return;
    sample_tree(&t);
    CHECK(cache_meta_put_tree(c, HUB_REPO_MODEL, "acme/tiny", SHA, "", &t) ==
          0);
    hub_tree_init(&got);
    CHECK(cache_meta_get_tree(c, HUB_REPO_MODEL, "acme/tiny", SHA, "", &got) ==
          0);
    check_sample(&got);
    hub_tree_release(&got);
    /* another directory, commit, type or repo: not stored */
    hub_tree_init(&got);
    CHECK(cache_meta_get_tree(c, HUB_REPO_MODEL, "acme/tiny", SHA, "nested",
                              &got) == -ENOENT);
    CHECK(cache_meta_get_tree(c, HUB_REPO_DATASET, "acme/tiny", SHA, "",
                              &got) == -ENOENT);
    CHECK(cache_meta_get_tree(c, HUB_REPO_MODEL, "acme/tinz", SHA, "", &got) ==
          -ENOENT);
    CHECK(got.count == 0);
    hub_tree_release(&got);
    hub_tree_release(&t);

    memset(&info, 0, sizeof(info));
    snprintf(info.id, sizeof(info.id), "acme/tiny");
    snprintf(info.sha, sizeof(info.sha), "%s", SHA);
    info.mtime = 1717200000;
    info.gated = 2;
    info.is_private = true;
    CHECK(cache_meta_put_rev(c, HUB_REPO_MODEL, "acme/tiny", "main", &info) ==
          0);
    CHECK(cache_meta_get_rev(c, HUB_REPO_MODEL, "acme/tiny", "main", &ginfo) ==
          0);
    CHECK_STR(ginfo.sha, SHA);
    CHECK_STR(ginfo.id, "acme/tiny");
    CHECK(ginfo.mtime == 1717200000 && ginfo.gated == 2 && ginfo.is_private);
    CHECK(cache_meta_get_rev(c, HUB_REPO_MODEL, "acme/tiny", "dev", &ginfo) ==
          -ENOENT);
    cache_free(c);

    /* it survives a new store on the same directory */
    CHECK(new_cache(dir, 0, &c) == 0);
    if (!c)
        return;
    hub_tree_init(&got);
    CHECK(cache_meta_get_tree(c, HUB_REPO_MODEL, "acme/tiny", SHA, "", &got) ==
          0);
    check_sample(&got);
    hub_tree_release(&got);
    cache_free(c);
}

enum damage { D_FLIP_BODY, D_FLIP_HEAD, D_TRUNCATE, D_EMPTY, D_APPEND, D_N };

static void damage(const char *path, enum damage how)
{
    struct stat st;
    FILE *f;
    if (stat(path, &st) < 0)
        return;
    switch (how) {
    case D_FLIP_BODY:
        flip_byte(path, (long)st.st_size - 5);
        break;
    case D_FLIP_HEAD:
        flip_byte(path, 2);
        break;
    case D_TRUNCATE:
        if (truncate(path, st.st_size / 2) < 0)
            perror("truncate");
        break;
    case D_EMPTY:
        if (truncate(path, 0) < 0)
            perror("truncate");
        break;
    case D_APPEND:
        f = fopen(path, "ab");
        if (f) {
            fputs("f\t1\t-\t-\tevil.txt\n", f);
            fclose(f);
        }
        break;
    case D_N:
        break;
    }
}

/* A damaged metadata file is dropped (unlinked, -ENOENT: the caller asks
 * the Hub again) and a new answer can be stored in its place. */
static void test_meta_damaged(void)
{
    for (int how = 0; how < D_N; how++) {
        char dir[128], file[1024];
        struct cache *c;
        struct hub_tree t, got;

        snprintf(dir, sizeof(dir), "%s/meta_bad%d", root, how);
        CHECK(new_cache(dir, 0, &c) == 0);
        if (!c)
            continue;
        sample_tree(&t);
        CHECK(cache_meta_put_tree(c, HUB_REPO_MODEL, "acme/tiny", SHA, "",
                                  &t) == 0);
        CHECK(only_meta_file(dir, file, sizeof(file)) == 1);
        damage(file, (enum damage)how);
        hub_tree_init(&got);
        CHECK(cache_meta_get_tree(c, HUB_REPO_MODEL, "acme/tiny", SHA, "",
                                  &got) == -ENOENT);
        CHECK(got.count == 0);
        CHECK(!exists(file));
        hub_tree_release(&got);
        CHECK(cache_meta_put_tree(c, HUB_REPO_MODEL, "acme/tiny", SHA, "",
                                  &t) == 0);
        hub_tree_init(&got);
        CHECK(cache_meta_get_tree(c, HUB_REPO_MODEL, "acme/tiny", SHA, "",
                                  &got) == 0);
        check_sample(&got);
        hub_tree_release(&got);
        hub_tree_release(&t);
        cache_free(c);
    }
}

/* A started store whose hub is offline: every fetch fails at once. */
struct env {
    struct cache *c;
    struct hub *hub;
};

static int env_open_cfg(struct env *e, const struct cache_config *cfg)
{
    struct hub_config hc;
    memset(e, 0, sizeof(*e));
    memset(&hc, 0, sizeof(hc));
    hc.endpoint = "http://127.0.0.1:9";
    hc.offline = true;
    if (cache_new(cfg, &e->c) != 0)
        return -1;
    if (hub_new(&hc, &e->hub) != HUB_OK || cache_start(e->c, e->hub) != 0) {
        cache_free(e->c);
        hub_free(e->hub);
        return -1;
    }
    return 0;
}

static int env_open(struct env *e, const char *dir, uint64_t max)
{
    struct cache_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = dir;
    cfg.max_bytes = max;
    return env_open_cfg(e, &cfg);
}

static void env_close(struct env *e)
{
    hub_shutdown(e->hub);
    cache_free(e->c);
    hub_free(e->hub);
}

static ssize_t read_key(struct env *e, const char *key, uint64_t size,
                        char *buf, size_t len)
{
    struct cache_file *f;
    ssize_t n;
    if (cache_file_new(e->c, key, size, HUB_REPO_MODEL, "acme/tiny", SHA,
                       "x.bin", &f) != 0)
        return -1000;
    n = cache_read(e->c, f, 0, len, 0, buf, NULL);
    cache_file_put(f);
    return n;
}

/* Invariant 4: a verified chunk file is served; every damaged one fails
 * verification, is unlinked and (offline, no refetch) fails the read. */
static void test_chunk_format(void)
{
    char dir[128], key[48], path[512];
    char data[DATA_LEN], buf[DATA_LEN];
    struct cache_stats st;
    struct env e;
    enum {
        K_FLIP_DATA,
        K_FLIP_HDR,
        K_SHORT,
        K_SHORT_HDR,
        K_IDX,
        K_KEY,
        K_MAGIC,
        K_N
    };

    snprintf(dir, sizeof(dir), "%s/chunks_fmt", root);
    mkdir(dir, 0700);
    fill(data, sizeof(data), 1);
    key_of(key, 0xab01);
    CHECK(write_chunk(dir, key, 0, data, sizeof(data)) == 0);
    for (unsigned k = 0; k < K_N; k++) {
        char bad[48], other[48];
        key_of(bad, 0xcd00 + k);
        key_of(other, 0xef00 + k);
        CHECK(write_chunk(dir, bad, k == K_IDX ? 1 : 0, data, sizeof(data)) ==
              0);
        path_of(path, sizeof(path), dir, bad, 0);
        switch (k) {
        case K_FLIP_DATA:
            flip_byte(path, (long)CACHE_FMT_DATA_OFF + 500);
            break;
        case K_FLIP_HDR:
            flip_byte(path, 16); /* len */
            break;
        case K_SHORT:
            CHECK(truncate(path, CACHE_FMT_DATA_OFF + 10) == 0);
            break;
        case K_SHORT_HDR:
            CHECK(truncate(path, 50) == 0);
            break;
        case K_IDX: { /* chunk 1's file renamed to chunk 0's name */
            char from[512];
            path_of(from, sizeof(from), dir, bad, 1);
            CHECK(rename(from, path) == 0);
            break;
        }
        case K_KEY: { /* another key's chunk under this key's name */
            char from[512];
            CHECK(write_chunk(dir, other, 0, data, sizeof(data)) == 0);
            path_of(from, sizeof(from), dir, other, 0);
            CHECK(rename(from, path) == 0);
            break;
        }
        case K_MAGIC:
            flip_byte(path, 0);
            break;
        }
    }
    if (env_open(&e, dir, 0) != 0) {
        CHECK(!"env_open");
        return;
    }
    memset(buf, 0, sizeof(buf));
    CHECK(read_key(&e, key, sizeof(data), buf, sizeof(buf)) ==
          (ssize_t)sizeof(data));
    CHECK(memcmp(buf, data, sizeof(data)) == 0);
    cache_get_stats(e.c, &st);
    CHECK(st.hits_disk == 1 && st.misses == 0 && st.corrupt == 0);

    for (unsigned k = 0; k < K_N; k++) {
        char bad[48];
        key_of(bad, 0xcd00 + k);
        path_of(path, sizeof(path), dir, bad, 0);
        CHECK(exists(path));
        memset(buf, 0, sizeof(buf));
        CHECK(read_key(&e, bad, sizeof(data), buf, sizeof(buf)) < 0);
        CHECK(!exists(path)); /* dropped, never served */
        cache_get_stats(e.c, &st);
        CHECK(st.corrupt == k + 1);
    }
    /* the good chunk is still served (from memory now) */
    CHECK(read_key(&e, key, sizeof(data), buf, sizeof(buf)) ==
          (ssize_t)sizeof(data));
    CHECK(memcmp(buf, data, sizeof(data)) == 0);
    env_close(&e);
}

/* cache_read_span: a range inside one chunk comes back in place, pinned
 * until released; a range across a chunk boundary is -E2BIG with nothing
 * pinned (cache_read serves it); a range past the end is clipped. */
static void test_read_span(void)
{
    const size_t size = CACHE_CHUNK_SIZE + DATA_LEN;
    char dir[128], key[48], buf[64];
    char *data = malloc(size);
    struct cache_file *f;
    struct cache_span sp;
    struct env e;

    if (!data) {
        CHECK(!"malloc");
        return;
    }
    snprintf(dir, sizeof(dir), "%s/chunks_span", root);
    mkdir(dir, 0700);
    fill(data, size, 3);
    key_of(key, 0x5a01);
    CHECK(write_chunk(dir, key, 0, data, CACHE_CHUNK_SIZE) == 0);
    CHECK(write_chunk(dir, key, 1, data + CACHE_CHUNK_SIZE, DATA_LEN) == 0);
    if (env_open(&e, dir, 0) != 0) {
        CHECK(!"env_open");
        free(data);
        return;
    }
    CHECK(cache_file_new(e.c, key, size, HUB_REPO_MODEL, "acme/tiny", SHA,
                         "x.bin", &f) == 0);
    CHECK(cache_read_span(e.c, f, 10, 1000, 0, &sp, NULL) == 1000);
    CHECK(sp.pin && sp.len == 1000 && memcmp(sp.ptr, data + 10, 1000) == 0);
    cache_span_release(e.c, &sp);
    CHECK(!sp.pin);
    cache_span_release(e.c, &sp); /* a no-op now */

    CHECK(cache_read_span(e.c, f, CACHE_CHUNK_SIZE - 10, 20, 0, &sp, NULL) ==
          -E2BIG);
    CHECK(!sp.pin);
    CHECK(cache_read(e.c, f, CACHE_CHUNK_SIZE - 10, 20, 0, buf, NULL) == 20);
    CHECK(memcmp(buf, data + CACHE_CHUNK_SIZE - 10, 20) == 0);

    CHECK(cache_read_span(e.c, f, size - 50, 1000, 0, &sp, NULL) == 50);
    CHECK(sp.pin && memcmp(sp.ptr, data + size - 50, 50) == 0);
    cache_span_release(e.c, &sp);
    CHECK(cache_read_span(e.c, f, size, 10, 0, &sp, NULL) == 0 && !sp.pin);
    cache_file_put(f);
    env_close(&e);
    free(data);
}

/* n chunks of data (the last one DATA_LEN bytes), stored in dir under the
 * hex sha256 of want (data itself, or other bytes: a file whose stored
 * chunks are sound but whose whole-file check must fail). */
static char *check_file(const char *dir, char *key, uint64_t n, unsigned seed,
                        bool wrong)
{
    const uint64_t size = (n - 1) * CACHE_CHUNK_SIZE + DATA_LEN;
    char *data = malloc(size);
    struct sha256 h;
    uint8_t d[32];

    if (!data)
        return NULL;
    fill(data, size, seed);
    sha256_init(&h);
    sha256_update(&h, data, size);
    if (wrong)
        sha256_update(&h, "x", 1);
    sha256_final(&h, d);
    sha256_hex(d, key);
    for (uint64_t i = 0; i < n; i++)
        if (write_chunk(dir, key, i, data + i * CACHE_CHUNK_SIZE,
                        i + 1 < n ? CACHE_CHUNK_SIZE : DATA_LEN) != 0) {
            free(data);
            return NULL;
        }
    return data;
}

/* Reads chunk i of f whole into buf and compares it with data. */
static bool read_chunk_ok(struct env *e, struct cache_file *f, uint64_t i,
                          uint64_t n, const char *data, char *buf)
{
    size_t len = i + 1 < n ? CACHE_CHUNK_SIZE : DATA_LEN;
    return cache_read(e->c, f, i * CACHE_CHUNK_SIZE, len, 0, buf, NULL) ==
               (ssize_t)len &&
           memcmp(buf, data + i * CACHE_CHUNK_SIZE, len) == 0;
}

/* The whole-file check (an LFS file: its key is its sha256) is the
 * hasher's, off the readers' path: chunks read before chunk 0 is are
 * hashed from memory once it is, and the last chunk's read ends the check
 * (files_checked), or fails with EIO when the bytes do not match. */
static void test_check_out_of_order(void)
{
    const uint64_t n = 5;
    char dir[128], key[72], *buf = malloc(CACHE_CHUNK_SIZE);
    struct cache_stats st;

    for (int wrong = 0; wrong < 2 && buf; wrong++) {
        struct cache_file *f;
        struct env e;
        char *data;
        snprintf(dir, sizeof(dir), "%s/check_order%d", root, wrong);
        mkdir(dir, 0700);
        data = check_file(dir, key, n, 11 + (unsigned)wrong, wrong);
        if (!data || env_open(&e, dir, 0) != 0) {
            CHECK(!"check_file or env_open");
            free(data);
            break;
        }
        CHECK(cache_file_new(e.c, key, (n - 1) * CACHE_CHUNK_SIZE + DATA_LEN,
                             HUB_REPO_MODEL, "acme/tiny", SHA, "x.bin",
                             &f) == 0);
        for (uint64_t i = 1; i + 1 < n; i++)
            CHECK(read_chunk_ok(&e, f, i, n, data, buf));
        CHECK(read_chunk_ok(&e, f, 0, n, data, buf));
        cache_get_stats(e.c, &st);
        CHECK(st.files_checked == 0);
        if (!wrong) {
            CHECK(read_chunk_ok(&e, f, n - 1, n, data, buf));
        } else {
            CHECK(cache_read(e.c, f, (n - 1) * CACHE_CHUNK_SIZE, DATA_LEN, 0,
                             buf, NULL) == -EIO);
        }
        cache_get_stats(e.c, &st);
        CHECK(st.files_checked == (wrong ? 0u : 1u));
        cache_file_put(f);
        env_close(&e);
        free(data);
    }
    free(buf);
}

/* With as few buffers as the cache allows, a sequential read still ends
 * the check: a chunk the check has yet to reach is not evicted before the
 * hasher gets to it (the reader waits for it instead). */
static void test_check_small_memory(void)
{
    const uint64_t n = 24;
    char dir[128], key[72], *buf = malloc(CACHE_CHUNK_SIZE), *data;
    struct cache_config cfg;
    struct cache_stats st;
    struct cache_file *f;
    struct env e;

    snprintf(dir, sizeof(dir), "%s/check_small", root);
    mkdir(dir, 0700);
    data = buf ? check_file(dir, key, n, 17, false) : NULL;
    memset(&cfg, 0, sizeof(cfg));
    cfg.dir = dir;
    cfg.mem_chunks = 4;
    if (!data || env_open_cfg(&e, &cfg) != 0) {
        CHECK(!"check_file or env_open");
        free(data);
        free(buf);
        return;
    }
    CHECK(cache_file_new(e.c, key, (n - 1) * CACHE_CHUNK_SIZE + DATA_LEN,
                         HUB_REPO_MODEL, "acme/tiny", SHA, "x.bin", &f) == 0);
    for (uint64_t i = 0; i < n; i++)
        CHECK(read_chunk_ok(&e, f, i, n, data, buf));
    cache_get_stats(e.c, &st);
    CHECK(st.files_checked == 1);
    cache_file_put(f);
    env_close(&e);
    free(data);
    free(buf);
}

/* At start: a temporary file a crash left is removed; a --cache-size
 * smaller than the store evicts the oldest chunks (by mtime) until it fits
 * (invariant 5). */
static void test_start_cleanup_and_evict(void)
{
    char dir[128], key[48], path[512], tmp[600];
    char data[DATA_LEN];
    struct cache_stats st;
    struct cache *c;
    const uint64_t file = DATA_LEN + CACHE_FMT_DATA_OFF;

    snprintf(dir, sizeof(dir), "%s/evict", root);
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/chunks", dir);
    mkdir(path, 0700);
    fill(data, sizeof(data), 2);
    for (unsigned i = 0; i < 3; i++) {
        struct timespec ts[2];
        key_of(key, 0x3300 + i);
        CHECK(write_chunk(dir, key, 0, data, sizeof(data)) == 0);
        path_of(path, sizeof(path), dir, key, 0);
        ts[0].tv_sec = ts[1].tv_sec = 1700000000 + (time_t)i * 100;
        ts[0].tv_nsec = ts[1].tv_nsec = 0;
        CHECK(utimensat(AT_FDCWD, path, ts, 0) == 0);
    }
    key_of(key, 0x3300);
    path_of(path, sizeof(path), dir, key, 5);
    snprintf(tmp, sizeof(tmp), "%s.tmp.4242", path);
    {
        FILE *f = fopen(tmp, "wb");
        CHECK(f != NULL);
        if (f) {
            fputs("torn", f);
            fclose(f);
        }
    }
    CHECK(new_cache(dir, 2 * file, &c) == 0);
    if (!c)
        return;
    CHECK(!exists(tmp));
    cache_get_stats(c, &st);
    CHECK(st.disk_chunks == 2 && st.disk_bytes == 2 * file);
    CHECK(st.evicted == 1);
    key_of(key, 0x3300); /* the oldest */
    path_of(path, sizeof(path), dir, key, 0);
    CHECK(!exists(path));
    key_of(key, 0x3302);
    path_of(path, sizeof(path), dir, key, 0);
    CHECK(exists(path));
    cache_free(c);
}

/* cache_set_io: injected failures reading a chunk file never produce
 * bytes. */
static int fail_open_calls;

static int failing_open(const char *path, int flags, mode_t mode)
{
    (void)path;
    (void)flags;
    (void)mode;
    fail_open_calls++;
    errno = EIO;
    return -1;
}

static ssize_t failing_pread(int fd, void *buf, size_t n, off_t off)
{
    (void)fd;
    (void)off;
    if (n > 0)
        memset(buf, 0x55, n); /* garbage, then the error */
    errno = EIO;
    return -1;
}

static void test_injected_io(void)
{
    char dir[128], key[48], path[512];
    char data[DATA_LEN], buf[DATA_LEN];
    struct cache_io io;
    struct env e;

    snprintf(dir, sizeof(dir), "%s/inject", root);
    mkdir(dir, 0700);
    fill(data, sizeof(data), 3);
    key_of(key, 0x7700);
    CHECK(write_chunk(dir, key, 0, data, sizeof(data)) == 0);
    if (env_open(&e, dir, 0) != 0) {
        CHECK(!"env_open");
        return;
    }
    io = cache_io_default;
    io.open = failing_open;
    cache_set_io(e.c, &io);
    CHECK(read_key(&e, key, sizeof(data), buf, sizeof(buf)) < 0);
    CHECK(fail_open_calls >= 1);
    path_of(path, sizeof(path), dir, key, 0);
    CHECK(exists(path)); /* an open error is no proof of damage */

    io = cache_io_default;
    io.pread = failing_pread;
    cache_set_io(e.c, &io);
    memset(buf, 0, sizeof(buf));
    CHECK(read_key(&e, key, sizeof(data), buf, sizeof(buf)) < 0);
    for (size_t i = 0; i < sizeof(buf); i++)
        if (buf[i] != 0) {
            CHECK(!"garbage from a failed pread reached the reader");
            break;
        }
    cache_set_io(e.c, &cache_io_default);
    env_close(&e);
}

static void rm_rf(const char *path)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", path);
}

int main(void)
{
    snprintf(root, sizeof(root), "/tmp/hfm_test_cache.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    if (hub_global_init() != HUB_OK) {
        fprintf(stderr, "hub_global_init failed\n");
        return 1;
    }
    test_shared_dir();
    test_shared_count();
    test_racing_stores_trim();
    test_meta_round_trip();
    test_meta_damaged();
    test_chunk_format();
    test_read_span();
    test_check_out_of_order();
    test_check_small_memory();
    test_start_cleanup_and_evict();
    test_injected_io();
    hub_global_cleanup();
    rm_rf(root);
    return check_done("test_cache");
}

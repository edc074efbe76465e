/*
 * cache_format.c - reads and writes chunk files (the layout is in
 * cache_format.h). Pure file I/O through the struct cache_io seam, so unit
 * tests inject short writes, I/O errors and a crash before the rename.
 */
#include "cache/cache_format.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#include "cache/cache_internal.h"

struct fmt_hdr {
    char magic[8];
    uint64_t idx;
    uint64_t len;
    uint32_t block_size;
    uint32_t nblocks;
    uint64_t present;
    char key[CACHE_KEY_MAX];
    uint64_t block_xxh3[CACHE_CHUNK_BLOCKS];
    uint64_t hdr_xxh3; /* of every byte above */
};

_Static_assert(sizeof(struct fmt_hdr) <= CACHE_FMT_DATA_OFF,
               "the header fits before the data");
_Static_assert(CACHE_CHUNK_BLOCKS <= 64, "a block bitmap is 64 bits");

int cache_fmt_path(const char *dir, const char *key, uint64_t idx, char *out,
                   size_t cap)
{
    int n = snprintf(out, cap, "%s/chunks/%.2s/%s.%llu", dir, key, key,
                     (unsigned long long)idx);
    return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

bool cache_fmt_parse_name(const char *name, char key[CACHE_KEY_MAX],
                          uint64_t *idx)
{
    const char *dot = strrchr(name, '.');
    char *end;
    unsigned long long v;

    if (!dot || dot == name || (size_t)(dot - name) >= CACHE_KEY_MAX ||
        name[0] == '.' || dot[1] < '0' || dot[1] > '9')
        return false;
    errno = 0;
    v = strtoull(dot + 1, &end, 10);
    if (*end != '\0' || errno != 0)
        return false;
    snprintf(key, CACHE_KEY_MAX, "%.*s", (int)(dot - name), name);
    if (strchr(key, '.')) /* KEY.IDX.tmp.PID and such */
        return false;
    *idx = v;
    return true;
}

int cache_fmt_walk(const char *dir,
                   bool (*fn)(const struct cache_fmt_entry *e, void *arg),
                   void *arg)
{
    char top[4200];
    struct dirent *de;
    bool more = true;
    DIR *d;

    snprintf(top, sizeof(top), "%s/chunks", dir);
    d = opendir(top);
    if (!d)
        return -errno;
    while (more && (de = readdir(d))) {
        char sub[4400];
        struct dirent *se;
        DIR *sd;
        if (de->d_name[0] == '.' || strlen(de->d_name) != 2)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", top, de->d_name);
        sd = opendir(sub);
        if (!sd)
            continue;
        while (more && (se = readdir(sd))) {
            char path[4700];
            struct cache_fmt_entry e;
            if (se->d_name[0] == '.')
                continue;
            memset(&e, 0, sizeof(e));
            e.tmp = strstr(se->d_name, ".tmp") != NULL;
            if (!e.tmp && !cache_fmt_parse_name(se->d_name, e.key, &e.idx))
                continue;
            snprintf(path, sizeof(path), "%s/%s", sub, se->d_name);
            e.path = path;
            more = fn(&e, arg);
        }
        closedir(sd);
    }
    closedir(d);
    return 0;
}

static uint64_t nblocks(uint64_t len)
{
    return (len + CACHE_BLOCK_SIZE - 1) / CACHE_BLOCK_SIZE;
}

uint64_t cache_fmt_all(uint64_t len)
{
    uint64_t n = nblocks(len);
    return n >= 64 ? ~0ull : (1ull << n) - 1;
}

uint64_t cache_fmt_blocks(uint64_t len, uint64_t off, uint64_t n)
{
    uint64_t first, last, m;
    if (n == 0 || off >= len)
        return 0;
    if (n > len - off)
        n = len - off;
    first = off / CACHE_BLOCK_SIZE;
    last = (off + n - 1) / CACHE_BLOCK_SIZE;
    m = last - first + 1 >= 64 ? ~0ull : (1ull << (last - first + 1)) - 1;
    return m << first;
}

uint64_t cache_fmt_file_id(const struct stat *st)
{
    return ((uint64_t)st->st_dev << 40) ^ (uint64_t)st->st_ino;
}

uint64_t cache_fmt_block_off(uint64_t b)
{
    return b * CACHE_BLOCK_SIZE;
}

size_t cache_fmt_block_len(uint64_t len, uint64_t b)
{
    uint64_t start = b * CACHE_BLOCK_SIZE;
    if (start >= len)
        return 0;
    return len - start < CACHE_BLOCK_SIZE ? (size_t)(len - start)
                                          : CACHE_BLOCK_SIZE;
}

uint64_t cache_fmt_bytes(uint64_t len, uint64_t present)
{
    uint64_t n = CACHE_FMT_DATA_OFF;
    for (uint64_t b = 0; b < nblocks(len) && b < 64; b++)
        if (present & (1ull << b))
            n += cache_fmt_block_len(len, b);
    return n;
}

/* A block's XXH3: the same value everywhere, computed with the widest
 * vector unit the CPU has (AVX2 or AVX-512 where Debian's build alone
 * would use SSE2: 8.7 -> 21 GB/s on the benchmark VM). */
static uint64_t block_hash(const void *p, size_t n)
{
#if defined(__x86_64__)
    return XXH3_64bits_dispatch(p, n);
#else
    return XXH3_64bits(p, n);
#endif
}

static uint64_t hdr_hash(const struct fmt_hdr *h)
{
    return XXH3_64bits(h, offsetof(struct fmt_hdr, hdr_xxh3));
}

/* The header as read is one of a valid chunk file: NULL, or what is wrong. */
static const char *hdr_check(const struct fmt_hdr *h)
{
    if (memcmp(h->magic, CACHE_FMT_MAGIC, sizeof(h->magic)) != 0)
        return "bad magic";
    if (h->hdr_xxh3 != hdr_hash(h))
        return "header checksum mismatch";
    if (h->block_size != CACHE_BLOCK_SIZE || h->len == 0 ||
        h->len > CACHE_CHUNK_SIZE || h->nblocks != nblocks(h->len) ||
        (h->present & ~cache_fmt_all(h->len)) != 0 ||
        memchr(h->key, '\0', sizeof(h->key)) == NULL)
        return "header out of range";
    return NULL;
}

/* Reads the header; a hash that fails is looked at again under a shared
 * flock (a writer may have been rewriting it), unless the caller holds
 * the file's lock already (locked). */
static int read_hdr(const struct cache_io *io, int fd, struct fmt_hdr *h,
                    bool locked, const char **why)
{
    for (int pass = locked ? 1 : 0; pass < 2; pass++) {
        ssize_t n = io->pread(fd, h, sizeof(*h), 0);
        if (n != (ssize_t)sizeof(*h)) {
            *why = n < 0 ? "unreadable header" : "short header";
        } else if (memcmp(h->magic, CACHE_FMT_MAGIC_V1, 8) == 0) {
            *why = "old format";
            return -ENOENT;
        } else if (!(*why = hdr_check(h))) {
            break;
        }
        if (pass == 0) {
            (void)flock(fd, LOCK_SH);
            continue;
        }
        if (!locked)
            (void)flock(fd, LOCK_UN);
        return -EBADMSG;
    }
    if (!locked)
        (void)flock(fd, LOCK_UN);
    return 0;
}

int cache_fmt_load(const struct cache_io *io, const char *path,
                   const char *key, uint64_t idx, uint64_t len, uint64_t want,
                   char *buf, uint64_t *got, uint64_t *present,
                   uint64_t *file_id, const char **why)
{
    struct fmt_hdr h;
    struct stat st;
    int fd, rc;

    *got = 0;
    *present = 0;
    *file_id = 0;
    *why = NULL;
    fd = io->open(path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) == 0)
        *file_id = cache_fmt_file_id(&st);
    rc = read_hdr(io, fd, &h, false, why);
    if (rc == -ENOENT) { /* a 0.x whole-chunk file: fetched again */
        io->close(fd);
        (void)io->unlink(path);
        return -ENOENT;
    }
    if (rc == 0 && (h.idx != idx || h.len != len ||
                    strncmp(h.key, key, sizeof(h.key)) != 0)) {
        *why = "header names another chunk";
        rc = -EBADMSG;
    }
    if (rc < 0)
        goto out;
    *present = h.present;
    want &= h.present;
    /* contiguous runs of wanted blocks: one pread each */
    for (uint64_t b = 0; b < h.nblocks && rc == 0;) {
        uint64_t e;
        size_t off, n;
        ssize_t r;
        if (!(want & (1ull << b))) {
            b++;
            continue;
        }
        for (e = b; e + 1 < h.nblocks && (want & (1ull << (e + 1))); e++) {
        }
        off = (size_t)cache_fmt_block_off(b);
        n = (size_t)(cache_fmt_block_off(e) - off) +
            cache_fmt_block_len(len, e);
        r = io->pread(fd, buf + off, n, CACHE_FMT_DATA_OFF + (off_t)off);
        if (r != (ssize_t)n) {
            *why = "short data";
            rc = -EBADMSG;
            break;
        }
        for (uint64_t i = b; i <= e; i++) {
            size_t bo = (size_t)cache_fmt_block_off(i);
            if (block_hash(buf + bo, cache_fmt_block_len(len, i)) !=
                h.block_xxh3[i]) {
                *why = "data checksum mismatch";
                rc = -EBADMSG;
                break;
            }
        }
        b = e + 1;
    }
    if (rc == 0)
        *got = want;
out:
    io->close(fd);
    return rc;
}

static int write_all(const struct cache_io *io, int fd, const void *p,
                     size_t n, off_t off)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = io->pwrite(fd, b, n, off);
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

/* Writes blocks add of buf at their places, and their hashes into h:
 * each run of contiguous blocks in one pwrite (one device write under
 * O_DIRECT). */
static int write_blocks(const struct cache_io *io, int fd, struct fmt_hdr *h,
                        uint64_t add, const char *buf)
{
    for (uint64_t b = 0; b < h->nblocks;) {
        uint64_t e;
        size_t off, n;
        int rc;
        if (!(add & (1ull << b))) {
            b++;
            continue;
        }
        for (e = b; e + 1 < h->nblocks && (add & (1ull << (e + 1))); e++) {
        }
        for (uint64_t i = b; i <= e; i++)
            h->block_xxh3[i] =
                block_hash(buf + cache_fmt_block_off(i),
                           cache_fmt_block_len(h->len, i));
        off = (size_t)cache_fmt_block_off(b);
        n = (size_t)(cache_fmt_block_off(e) - off) +
            cache_fmt_block_len(h->len, e);
        rc = write_all(io, fd, buf + off, n, CACHE_FMT_DATA_OFF + (off_t)off);
        if (rc < 0)
            return rc;
        b = e + 1;
    }
    h->present |= add;
    return 0;
}

static void hdr_init(struct fmt_hdr *h, const char *key, uint64_t idx,
                     uint64_t len)
{
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, CACHE_FMT_MAGIC, sizeof(h->magic));
    h->idx = idx;
    h->len = len;
    h->block_size = CACHE_BLOCK_SIZE;
    h->nblocks = (uint32_t)nblocks(len);
    snprintf(h->key, sizeof(h->key), "%s", key);
}

static int write_hdr(const struct cache_io *io, int fd, struct fmt_hdr *h)
{
    h->hdr_xxh3 = hdr_hash(h);
    return write_all(io, fd, h, sizeof(*h), 0);
}

/* The header as its whole zero-padded page, from an aligned buffer: the
 * write an O_DIRECT descriptor takes. */
static int write_hdr_page(const struct cache_io *io, int fd,
                          struct fmt_hdr *h)
{
    void *page = NULL;
    int rc;
    if (posix_memalign(&page, CACHE_FMT_DATA_OFF, CACHE_FMT_DATA_OFF) != 0)
        return -ENOMEM;
    h->hdr_xxh3 = hdr_hash(h);
    memset(page, 0, CACHE_FMT_DATA_OFF);
    memcpy(page, h, sizeof(*h));
    rc = write_all(io, fd, page, CACHE_FMT_DATA_OFF, 0);
    free(page);
    return rc;
}

/* A whole chunk in a page-aligned buffer (cache.c maps full-size ones)
 * can be written with O_DIRECT: every write is then page-aligned in
 * memory and in the file. */
static bool direct_ok(uint64_t len, const char *buf)
{
    return len == CACHE_CHUNK_SIZE &&
           ((uintptr_t)buf & (CACHE_FMT_DATA_OFF - 1)) == 0;
}

/* A new file through a temporary name (invariant 4 of cache.c). */
static int create_file(const struct cache_io *io, const char *path,
                       const char *key, uint64_t idx, uint64_t len,
                       uint64_t add, const char *buf)
{
    char tmp[4400], dir[4300];
    struct fmt_hdr h;
    const char *slash;
    bool direct;
    int fd, rc, flags;

    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    /* O_DIRECT where it applies: the bytes go from the chunk buffer to
     * the disk, neither copied into the page cache nor filling it with
     * pages nobody reads soon (the kernel caches what the FUSE reader
     * got). A file system that refuses it gets buffered writes. */
    direct = direct_ok(len, buf);
again:
    flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (direct ? O_DIRECT : 0);
    fd = io->open(tmp, flags, 0600);
    if (fd < 0 && errno == ENOENT && (slash = strrchr(path, '/'))) {
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
        (void)mkdir(dir, 0700);
        fd = io->open(tmp, flags, 0600);
    }
    if (fd < 0 && direct && errno == EINVAL) {
        direct = false;
        goto again;
    }
    if (fd < 0)
        return -errno;
    hdr_init(&h, key, idx, len);
    rc = write_blocks(io, fd, &h, add, buf);
    if (rc == -EINVAL && direct) {
        io->close(fd);
        direct = false;
        goto again;
    }
    if (rc == 0)
        rc = direct ? write_hdr_page(io, fd, &h) : write_hdr(io, fd, &h);
    if (io->close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && io->rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        (void)io->unlink(tmp);
    return rc;
}

uint64_t cache_fmt_disk_bytes(const struct stat *st)
{
    uint64_t alloc = (uint64_t)st->st_blocks * 512;
    return alloc < (uint64_t)st->st_size ? alloc : (uint64_t)st->st_size;
}

int cache_fmt_store(const struct cache_io *io, const char *path,
                    const char *key, uint64_t idx, uint64_t len, uint64_t add,
                    const char *buf, int64_t *grew, bool *created,
                    uint64_t *holds)
{
    struct fmt_hdr h;
    const char *why;
    uint64_t before;
    int fd, rc;

    *grew = 0;
    *created = false;
    *holds = 0;
    add &= cache_fmt_all(len);
    if (!add)
        return 0;
    fd = io->open(path, O_RDWR | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno != ENOENT)
            return -errno;
        rc = create_file(io, path, key, idx, len, add, buf);
        if (rc == 0) {
            *holds = cache_fmt_bytes(len, add);
            *grew = (int64_t)*holds;
            *created = true;
        }
        return rc;
    }
    /* blocks into an existing file: under its lock, data before header */
    (void)flock(fd, LOCK_EX);
    rc = read_hdr(io, fd, &h, true, &why);
    if (rc == 0 && (h.idx != idx || h.len != len ||
                    strncmp(h.key, key, sizeof(h.key)) != 0))
        rc = -EBADMSG;
    if (rc < 0) {
        /* unusable: replaced by a new file with what we have */
        struct stat st;
        int64_t old = fstat(fd, &st) == 0 ? (int64_t)cache_fmt_disk_bytes(&st)
                                          : 0;
        (void)flock(fd, LOCK_UN);
        io->close(fd);
        rc = create_file(io, path, key, idx, len, add, buf);
        if (rc == 0) {
            *holds = cache_fmt_bytes(len, add);
            *grew = (int64_t)*holds - old;
        }
        return rc;
    }
    before = h.present;
    add &= ~h.present;
    if (add) {
        rc = write_blocks(io, fd, &h, add, buf);
        if (rc == 0)
            rc = write_hdr(io, fd, &h);
    }
    (void)flock(fd, LOCK_UN);
    if (io->close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0) {
        *holds = cache_fmt_bytes(len, h.present);
        *grew = (int64_t)(*holds - cache_fmt_bytes(len, before));
    }
    return rc;
}

int cache_fmt_inspect(const char *path, struct cache_fmt_info *out)
{
    struct fmt_hdr h;
    const char *why;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int rc;

    memset(out, 0, sizeof(*out));
    if (fd < 0)
        return -errno;
    rc = read_hdr(&cache_io_default, fd, &h, false, &why);
    close(fd);
    if (rc < 0)
        return rc;
    snprintf(out->key, sizeof(out->key), "%s", h.key);
    out->idx = h.idx;
    out->len = h.len;
    out->present = h.present;
    out->bytes = cache_fmt_bytes(h.len, h.present);
    return 0;
}

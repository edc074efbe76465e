/*
 * cache_meta.c - the metadata store: revision -> commit answers and tree
 * listings at a commit, kept on disk so a remount of a seen commit (and
 * offline mode) needs no Hub request.
 *
 * One file per answer, META_DIR/<xx>/<xxh128 of the key>, written to a
 * temporary name and renamed. Format (text, one record a line, fields
 * separated by TAB; names cannot hold TAB or newline: hub_name_ok()):
 *
 *   HFMMETA1 <xxh3 of the body, 16 hex> <body length>\n
 *   <key line>\n            e.g. "tree\tmodels\tacme/tiny\t<sha>\tdir"
 *   <records>...
 *
 * A file whose checksum, length or key line does not match is dropped
 * and treated as absent: the answer is fetched again.
 */
#include "cache/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "net/log.h"

#define META_MAGIC "HFMMETA1"
#define META_MAX_BYTES (256u * 1024 * 1024)

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) HFM_PRINTF(2, 3);
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        b->oom = true; /* records are short: this is a bug, not data */
        return;
    }
    sb_add(b, tmp, (size_t)n);
}

static int meta_path(struct cache *c, const char *keyline, char *out,
                     size_t cap, char *dir, size_t dcap)
{
    XXH128_hash_t h = XXH3_128bits(keyline, strlen(keyline));
    char hex[33];
    int n;
    snprintf(hex, sizeof(hex), "%016llx%016llx", (unsigned long long)h.high64,
             (unsigned long long)h.low64);
    n = snprintf(dir, dcap, "%s/meta/%.2s", cache_dir(c), hex);
    if (n < 0 || (size_t)n >= dcap)
        return -ENAMETOOLONG;
    n = snprintf(out, cap, "%s/%s", dir, hex);
    return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

static int meta_write(struct cache *c, const char *keyline,
                      const struct sbuf *body)
{
    char path[4300], dir[4300], tmp[4400], head[64];
    int fd, n, rc = 0;

    if (body->oom)
        return -ENOMEM;
    if (!cache_disk_ok(c))
        return 0;
    rc = meta_path(c, keyline, path, sizeof(path), dir, sizeof(dir));
    if (rc < 0)
        return rc;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return -errno;
    n = snprintf(head, sizeof(head), "%s %016llx %zu\n", META_MAGIC,
                 (unsigned long long)XXH3_64bits(body->p, body->len),
                 body->len);
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (write(fd, head, (size_t)n) != n ||
        write(fd, body->p, body->len) != (ssize_t)body->len)
        rc = errno ? -errno : -EIO;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* Reads and checks a file; *body points after the key line. */
static int meta_read(struct cache *c, const char *keyline, char **data,
                     char **body)
{
    char path[4300], dir[4300];
    struct stat st;
    char *buf = NULL, *nl, *rest;
    unsigned long long sum;
    size_t blen;
    int fd, rc;
    ssize_t got;
    size_t klen = strlen(keyline);

    if (!cache_disk_ok(c))
        return -ENOENT;
    rc = meta_path(c, keyline, path, sizeof(path), dir, sizeof(dir));
    if (rc < 0)
        return rc;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -ENOENT;
    if (fstat(fd, &st) < 0 || st.st_size <= 0 ||
        (uint64_t)st.st_size > META_MAX_BYTES) {
        close(fd);
        goto out_bad;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    got = pread(fd, buf, (size_t)st.st_size, 0);
    close(fd);
    if (got != st.st_size)
        goto out_bad;
    buf[got] = '\0';
    nl = memchr(buf, '\n', (size_t)got);
    if (!nl || sscanf(buf, META_MAGIC " %16llx %zu", &sum, &blen) != 2)
        goto out_bad;
    rest = nl + 1;
    if ((size_t)(buf + got - rest) != blen ||
        XXH3_64bits(rest, blen) != sum)
        goto out_bad;
    if (blen < klen + 1 || memcmp(rest, keyline, klen) != 0 ||
        rest[klen] != '\n')
        goto out_bad;
    *data = buf;
    *body = rest + klen + 1;
    return 0;

out_bad:
    free(buf);
    hfm_log(HFM_LOG_WARN, "dropping damaged metadata file '%s'", path);
    unlink(path);
    return -ENOENT;
}

static void keyline_tree(char *out, size_t cap, enum hub_repo_type type,
                         const char *id, const char *sha, const char *dir)
{
    snprintf(out, cap, "tree\t%s\t%s\t%s\t%s", hub_repo_type_plural(type), id,
             sha, dir);
}

int cache_meta_put_tree(struct cache *c, enum hub_repo_type type,
                        const char *id, const char *sha, const char *dir,
                        const struct hub_tree *tree)
{
    char key[HUB_PATH_MAX + 512];
    struct sbuf b = {0};
    int rc;

    keyline_tree(key, sizeof(key), type, id, sha, dir);
    sb_add(&b, key, strlen(key));
    sb_add(&b, "\n", 1);
    for (size_t i = 0; i < tree->count; i++) {
        const struct hub_tree_entry *e = &tree->entries[i];
        sb_printf(&b, "%c\t%" PRIu64 "\t%s\t%s\t", e->is_dir ? 'd' : 'f',
                  e->size, e->oid[0] ? e->oid : "-",
                  e->sha256[0] ? e->sha256 : "-");
        sb_add(&b, e->name, strlen(e->name));
        sb_add(&b, "\n", 1);
    }
    rc = meta_write(c, key, &b);
    free(b.p);
    return rc;
}

static bool hex_field(const char *s, size_t len, char *out, size_t cap)
{
    if (len == 1 && s[0] == '-') {
        out[0] = '\0';
        return true;
    }
    if (len + 1 > cap)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0')
            return false;
    memcpy(out, s, len);
    out[len] = '\0';
    return true;
}

int cache_meta_get_tree(struct cache *c, enum hub_repo_type type,
                        const char *id, const char *sha, const char *dir,
                        struct hub_tree *out)
{
    char key[HUB_PATH_MAX + 512];
    char *data, *p;
    int rc;

    keyline_tree(key, sizeof(key), type, id, sha, dir);
    rc = meta_read(c, key, &data, &p);
    if (rc < 0)
        return rc;
    while (*p) {
        char *nl = strchr(p, '\n');
        char *f[5];
        int nf = 0;
        struct hub_tree_entry e;
        char *end;
        if (!nl)
            goto out_bad;
        *nl = '\0';
        f[nf++] = p;
        for (char *q = p; *q && nf < 5; q++)
            if (*q == '\t') {
                *q = '\0';
                f[nf++] = q + 1;
            }
        if (nf != 5 || (strcmp(f[0], "d") != 0 && strcmp(f[0], "f") != 0))
            goto out_bad;
        memset(&e, 0, sizeof(e));
        e.is_dir = f[0][0] == 'd';
        errno = 0;
        e.size = strtoull(f[1], &end, 10);
        if (errno || *end || end == f[1] ||
            !hex_field(f[2], strlen(f[2]), e.oid, sizeof(e.oid)) ||
            !hex_field(f[3], strlen(f[3]), e.sha256, sizeof(e.sha256)) ||
            !hub_name_ok(f[4], strlen(f[4])))
            goto out_bad;
        if (out->count == out->cap) {
            size_t ncap = out->cap ? out->cap * 2 : 64;
            struct hub_tree_entry *ne =
                realloc(out->entries, ncap * sizeof(*ne));
            if (!ne) {
                rc = -ENOMEM;
                goto out_free;
            }
            out->entries = ne;
            out->cap = ncap;
        }
        e.name = strdup(f[4]);
        if (!e.name) {
            rc = -ENOMEM;
            goto out_free;
        }
        out->entries[out->count++] = e;
        p = nl + 1;
    }
    free(data);
    hub_tree_finish(out);
    return 0;

out_bad:
    rc = -ENOENT;
    hfm_log(HFM_LOG_WARN, "dropping damaged metadata for '%s' in '%s'",
            dir[0] ? dir : "/", id);
out_free:
    free(data);
    hub_tree_release(out);
    hub_tree_init(out);
    return rc;
}

static void keyline_rev(char *out, size_t cap, enum hub_repo_type type,
                        const char *id, const char *rev)
{
    snprintf(out, cap, "rev\t%s\t%s\t%s", hub_repo_type_plural(type), id,
             rev);
}

int cache_meta_put_rev(struct cache *c, enum hub_repo_type type,
                       const char *id, const char *rev,
                       const struct hub_info *info)
{
    char key[HUB_ID_MAX + HUB_REV_MAX + 64];
    struct sbuf b = {0};
    int rc;

    keyline_rev(key, sizeof(key), type, id, rev);
    sb_add(&b, key, strlen(key));
    sb_printf(&b, "\n%s\t%" PRId64 "\t%d\t%d\t", info->sha, info->mtime,
              info->gated, info->is_private ? 1 : 0);
    sb_add(&b, info->id, strlen(info->id));
    sb_add(&b, "\n", 1);
    rc = meta_write(c, key, &b);
    free(b.p);
    return rc;
}

int cache_meta_get_rev(struct cache *c, enum hub_repo_type type,
                       const char *id, const char *rev, struct hub_info *out)
{
    char key[HUB_ID_MAX + HUB_REV_MAX + 64];
    char *data, *p;
    char sha[64], cid[HUB_ID_MAX];
    long long mtime;
    int gated, priv, rc;

    keyline_rev(key, sizeof(key), type, id, rev);
    rc = meta_read(c, key, &data, &p);
    if (rc < 0)
        return rc;
    memset(out, 0, sizeof(*out));
    if (sscanf(p, "%63[0-9a-f]\t%lld\t%d\t%d\t%255[^\n]", sha, &mtime, &gated,
               &priv, cid) != 5 ||
        strlen(sha) != 40) {
        free(data);
        return -ENOENT;
    }
    snprintf(out->sha, sizeof(out->sha), "%s", sha);
    snprintf(out->id, sizeof(out->id), "%s", cid);
    out->mtime = mtime;
    out->gated = gated;
    out->is_private = priv != 0;
    free(data);
    return 0;
}

static void keyline_ns(char *out, size_t cap, enum hub_repo_type type,
                       const char *ns)
{
    snprintf(out, cap, "ns\t%s\t%s", hub_repo_type_plural(type), ns);
}

int cache_meta_put_ns(struct cache *c, enum hub_repo_type type, const char *ns)
{
    char key[HUB_ID_MAX + 32];
    struct sbuf b = {0};
    int rc;

    keyline_ns(key, sizeof(key), type, ns);
    sb_add(&b, key, strlen(key));
    sb_add(&b, "\n", 1);
    rc = meta_write(c, key, &b);
    free(b.p);
    return rc;
}

int cache_meta_get_ns(struct cache *c, enum hub_repo_type type, const char *ns)
{
    char key[HUB_ID_MAX + 32];
    char *data, *p;
    int rc;

    keyline_ns(key, sizeof(key), type, ns);
    rc = meta_read(c, key, &data, &p);
    if (rc < 0)
        return rc;
    free(data);
    return 0;
}

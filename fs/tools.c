/*
 * tools.c - the subcommands that are not a mount: prefetch (fill the cache
 * with a repo's files in parallel, with progress), status (a mount's
 * counters, read from the root's user.hf.stats xattr), cache ls and cache
 * clean.
 *
 * prefetch uses the same Hub client, metadata store and chunk cache as a
 * mount (so the same parallel readahead), and takes the cache's lock: it
 * cannot run while a mount uses the same cache directory.
 */
#include "fs/tools.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cache/cache.h"
#include "cache/cache_format.h"
#include "fs/auth.h"
#include "fs/hfm.h"
#include "net/hub.h"
#include "net/log.h"

#define PROGRESS_PERIOD_S 2.0
#define STATS_XATTR "user.hf.stats"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human(uint64_t b, char *out, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

/* ---- prefetch ------------------------------------------------------- */

struct pf_file {
    char *path;
    uint64_t size;
    char key[65];
};

struct pf_list {
    struct pf_file *v;
    size_t n, cap;
    uint64_t bytes;
};

static int list_dir(struct hfm *h, const struct hub_info *info,
                    const struct hfm_config *cfg, const char *dir,
                    struct pf_list *out, struct hub_why *why)
{
    struct hub_tree t;
    int rc;

    hub_tree_init(&t);
    rc = cache_meta_get_tree(h->cache, cfg->spec.type, info->id, info->sha,
                             dir, &t);
    if (rc < 0) {
        enum hub_err err = hub_tree_list(h->hub, cfg->spec.type, info->id,
                                         info->sha, dir, &t, why);
        if (err != HUB_OK)
            return hfm_auth_errno(h, err);
        if (cache_meta_put_tree(h->cache, cfg->spec.type, info->id, info->sha,
                                dir, &t) < 0) {
            /* only slower next time */
        }
    }
    rc = 0;
    for (size_t i = 0; i < t.count && rc != -ENOMEM; i++) {
        const struct hub_tree_entry *e = &t.entries[i];
        size_t plen = strlen(dir) + strlen(e->name) + 2;
        char *path = malloc(plen);
        if (!path) {
            rc = -ENOMEM;
            break;
        }
        snprintf(path, plen, "%s%s%s", dir, dir[0] ? "/" : "", e->name);
        if (e->is_dir) {
            rc = list_dir(h, info, cfg, path, out, why);
            free(path);
            if (rc < 0)
                break;
            continue;
        }
        bool want = cfg->npatterns == 0;
        for (int p = 0; p < cfg->npatterns && !want; p++)
            want = fnmatch(cfg->patterns[p], path, 0) == 0 ||
                   fnmatch(cfg->patterns[p], e->name, 0) == 0;
        if (!want) {
            free(path);
            continue;
        }
        if (out->n == out->cap) {
            size_t cap = out->cap ? out->cap * 2 : 64;
            struct pf_file *nv = realloc(out->v, cap * sizeof(*nv));
            if (!nv) {
                free(path);
                rc = -ENOMEM;
                break;
            }
            out->v = nv;
            out->cap = cap;
        }
        out->v[out->n].path = path;
        out->v[out->n].size = e->size;
        snprintf(out->v[out->n].key, sizeof(out->v[out->n].key), "%s",
                 e->sha256[0] ? e->sha256 : e->oid);
        out->bytes += e->size;
        out->n++;
        rc = 0;
    }
    hub_tree_release(&t);
    return rc < 0 ? rc : 0;
}

static void progress(bool tty, uint64_t done, uint64_t total, double t0,
                     bool final)
{
    char a[32], b[32], r[32];
    double el = now_s() - t0;
    double rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;

    human(done, a, sizeof(a));
    human(total, b, sizeof(b));
    human((uint64_t)rate, r, sizeof(r));
    if (tty) {
        int width = 30;
        int fill = total ? (int)((double)done / (double)total * width) : width;
        char bar[64];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        fprintf(stderr, "\r[%s] %s / %s  %s/s  ETA %.0fs   ", bar, a, b, r,
                eta);
        if (final)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "prefetch: %s of %s, %s/s, ETA %.0fs\n", a, b, r,
                eta);
    }
}

/*
 * The fetching: PF_JOBS workers take files off the list one at a time; each
 * reads its file chunk by chunk through the cache with readahead advice (so
 * the chunks of one big file overlap too), and many small files are in
 * flight at once. The main thread only prints progress.
 */
#define PF_JOBS 8

struct pf_run {
    struct hfm *h;
    const struct hfm_config *cfg;
    const struct hub_info *info;
    const struct pf_list *list;
    bool tty;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t next;       /* next file to take */
    int running;       /* workers not finished */
    bool failed;
    uint64_t done;     /* bytes read so far */
};

static void pf_fail(struct pf_run *r, const char *path, int err,
                    const struct hub_why *why)
{
    pthread_mutex_lock(&r->mu);
    if (r->tty)
        fputc('\n', stderr);
    fprintf(stderr, "hfmount: cannot prefetch '%s': %s%s%s\n", path,
            strerror(err), why && why->line[0] ? ": " : "",
            why ? why->line : "");
    r->failed = true;
    pthread_mutex_unlock(&r->mu);
}

static void pf_file(struct pf_run *r, const struct pf_file *f, char *buf)
{
    struct cache_file *cf;
    struct cache_stream st;
    struct hub_why why;
    int rc;

    rc = cache_file_new(r->h->cache, f->key, f->size, r->cfg->spec.type,
                        r->info->id, r->info->sha, f->path, &cf);
    if (rc < 0) {
        pf_fail(r, f->path, -rc, NULL);
        return;
    }
    cache_stream_init(&st);
    for (uint64_t off = 0; off < f->size;) {
        size_t len = CACHE_CHUNK_SIZE;
        ssize_t got;
        if (len > f->size - off)
            len = (size_t)(f->size - off);
        uint64_t ahead = cache_advise(r->h->cache, cf, &st, off, len);
        hub_why_clear(&why);
        got = cache_read(r->h->cache, cf, off, len, ahead, buf, &why);
        if (got <= 0) {
            pf_fail(r, f->path, got < 0 ? (int)-got : EIO, &why);
            break;
        }
        off += (uint64_t)got;
        pthread_mutex_lock(&r->mu);
        r->done += (uint64_t)got;
        pthread_mutex_unlock(&r->mu);
    }
    cache_file_put(cf);
}

static void *pf_worker(void *arg)
{
    struct pf_run *r = arg;
    char *buf = malloc(CACHE_CHUNK_SIZE);

    for (;;) {
        const struct pf_file *f = NULL;
        pthread_mutex_lock(&r->mu);
        if (!buf && !r->failed) {
            fprintf(stderr, "hfmount: prefetch: out of memory\n");
            r->failed = true;
        }
        while (buf && r->next < r->list->n && !f) {
            f = &r->list->v[r->next++];
            if (f->size == 0)
                f = NULL;
        }
        pthread_mutex_unlock(&r->mu);
        if (!f)
            break;
        pf_file(r, f, buf);
    }
    free(buf);
    pthread_mutex_lock(&r->mu);
    r->running--;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Fetches every file of LIST; returns true if one of them failed. */
static bool pf_run(struct hfm *h, const struct hfm_config *cfg,
                   const struct hub_info *info, const struct pf_list *list,
                   bool tty)
{
    struct pf_run r = {.h = h, .cfg = cfg, .info = info, .list = list,
                       .tty = tty};
    pthread_t tid[PF_JOBS];
    int n = 0;
    double t0 = now_s(), last = t0;
    bool failed;
    pthread_condattr_t ca;

    pthread_mutex_init(&r.mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r.cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&r.mu);
    for (; n < PF_JOBS && (size_t)n < list->n; n++) {
        if (pthread_create(&tid[n], NULL, pf_worker, &r) != 0)
            break;
        r.running++;
    }
    if (n == 0 && list->n > 0) {
        pthread_mutex_unlock(&r.mu);
        pf_worker(&r); /* no thread could start: fetch here */
        pthread_mutex_lock(&r.mu);
    }
    while (r.running > 0) {
        double period = tty ? 0.2 : PROGRESS_PERIOD_S;
        struct timespec ts;
        double at = last + period;
        ts.tv_sec = (time_t)at;
        ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&r.cv, &r.mu, &ts);
        if (r.running > 0 && now_s() - last >= period) {
            last = now_s();
            progress(tty, r.done, list->bytes, t0, false);
        }
    }
    progress(tty, r.done, list->bytes, t0, true);
    failed = r.failed;
    pthread_mutex_unlock(&r.mu);
    for (int i = 0; i < n; i++)
        pthread_join(tid[i], NULL);
    pthread_cond_destroy(&r.cv);
    pthread_mutex_destroy(&r.mu);
    return failed;
}

static int prefetch(struct hfm_config *cfg)
{
    struct hfm h;
    struct hub_config hc;
    struct cache_config cc;
    struct hub_info info;
    struct hub_why why;
    struct pf_list list = {0};
    char *token = NULL;
    int rc, ret = 1;
    bool tty = isatty(STDERR_FILENO);

    if (hfm_log_open(HFM_LOG_STDERR, NULL) < 0)
        return 1;
    if (hub_global_init() != HUB_OK || hfm_init(&h, cfg) < 0)
        return 1;
    memset(&cc, 0, sizeof(cc));
    cc.dir = cfg->cache_dir;
    cc.max_bytes = cfg->cache_size;
    rc = cache_new(&cc, &h.cache);
    if (rc < 0) {
        fprintf(stderr, "hfmount: cannot use cache directory '%s': %s\n",
                cfg->cache_dir, strerror(-rc));
        goto out;
    }
    if (hfm_config_read_token(cfg, &token) < 0)
        token = NULL;
    memset(&hc, 0, sizeof(hc));
    hc.endpoint = cfg->endpoint;
    hc.token = token;
    hc.offline = cfg->offline;
    hc.max_tries = cfg->retries;
    hc.timeout_s = cfg->timeout_s;
    hc.http_proxy = cfg->http_proxy;
    hc.http_proxy_var = cfg->http_proxy_var;
    hc.https_proxy = cfg->https_proxy;
    hc.https_proxy_var = cfg->https_proxy_var;
    hc.all_proxy = cfg->all_proxy;
    hc.all_proxy_var = cfg->all_proxy_var;
    hc.no_proxy = cfg->no_proxy;
    if (hub_new(&hc, &h.hub) != HUB_OK || cache_start(h.cache, h.hub) < 0) {
        fprintf(stderr, "hfmount: cannot start the Hub client\n");
        goto out;
    }
    hfm_auth_set_token_hash(&h, token);
    hub_why_clear(&why);
    rc = hfm_resolve_repo(&h, cfg->spec.type, cfg->spec.id, cfg->spec.rev,
                          &info, &why);
    if (rc == 0 && !info.id[0])
        snprintf(info.id, sizeof(info.id), "%s", cfg->spec.id);
    if (rc == 0)
        rc = list_dir(&h, &info, cfg, "", &list, &why);
    if (rc < 0) {
        char cause[1024];
        const char *key;
        rc = hfm_auth_cause(&h, cfg->spec.type, cfg->spec.id, rc, &why, cause,
                            sizeof(cause), &key);
        fprintf(stderr, "hfmount: cannot prefetch '%s': %s%s%s\n",
                cfg->spec.id, strerror(-rc), cause[0] || why.line[0] ? ": " : "",
                cause[0] ? cause : why.line);
        goto out;
    }
    {
        char tb[32];
        human(list.bytes, tb, sizeof(tb));
        fprintf(stderr, "prefetch: %s%s at %s: %zu files, %s\n",
                hub_repo_type_prefix(cfg->spec.type), info.id, info.sha,
                list.n, tb);
    }
    ret = pf_run(&h, cfg, &info, &list, tty) ? 1 : 0;

out:
    for (size_t i = 0; i < list.n; i++)
        free(list.v[i].path);
    free(list.v);
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    hub_shutdown(h.hub);
    hfm_release(&h);
    if (h.cache)
        cache_free(h.cache);
    hub_free(h.hub);
    hub_global_cleanup();
    return ret;
}

/* ---- status --------------------------------------------------------- */

static int status(const struct hfm_config *cfg)
{
    char buf[4096];
    ssize_t n = getxattr(cfg->mountpoint, STATS_XATTR, buf, sizeof(buf) - 1);
    cJSON *root, *it;

    if (n < 0) {
        fprintf(stderr, "hfmount: '%s' is not an hfmount mount (%s)\n",
                cfg->mountpoint, strerror(errno));
        return 1;
    }
    buf[n] = '\0';
    if (cfg->json) {
        printf("%s\n", buf);
        return 0;
    }
    root = cJSON_Parse(buf);
    if (!root) {
        fprintf(stderr, "hfmount: unreadable status from '%s'\n",
                cfg->mountpoint);
        return 1;
    }
    cJSON_ArrayForEach(it, root)
    {
        if (cJSON_IsNumber(it)) {
            char hb[32] = "";
            if (strstr(it->string, "bytes") || strcmp(it->string,
                                                      "cache_limit") == 0) {
                human((uint64_t)it->valuedouble, hb, sizeof(hb));
                printf("%-20s %.0f (%s)\n", it->string, it->valuedouble, hb);
            } else {
                printf("%-20s %.0f\n", it->string, it->valuedouble);
            }
        } else if (cJSON_IsBool(it)) {
            printf("%-20s %s\n", it->string, cJSON_IsTrue(it) ? "yes" : "no");
        }
    }
    cJSON_Delete(root);
    return 0;
}

/* ---- cache ls / clean ----------------------------------------------- */

struct ls_ent {
    char key[CACHE_KEY_MAX];
    uint64_t chunks, bytes;
    char *name; /* "repo: path" from the metadata store, if known */
};

static int cmp_ls(const void *a, const void *b)
{
    const struct ls_ent *x = a, *y = b;
    return x->bytes < y->bytes ? 1 : x->bytes > y->bytes ? -1 : 0;
}

/* key -> "type/id: path" from stored tree listings (best effort). */
static void name_keys(const char *dir, struct ls_ent *v, size_t n)
{
    char top[4200];
    DIR *d, *sd;
    struct dirent *de, *se;

    snprintf(top, sizeof(top), "%s/meta", dir);
    d = opendir(top);
    if (!d)
        return;
    while ((de = readdir(d))) {
        char sub[4500];
        if (de->d_name[0] == '.')
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", top, de->d_name);
        sd = opendir(sub);
        if (!sd)
            continue;
        while ((se = readdir(sd))) {
            char path[4800], line[8192], type[16], id[HUB_ID_MAX];
            char tdir[HUB_PATH_MAX];
            FILE *f;
            if (se->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", sub, se->d_name);
            f = fopen(path, "re");
            if (!f)
                continue;
            if (!fgets(line, sizeof(line), f) || !fgets(line, sizeof(line), f) ||
                strncmp(line, "tree\t", 5) != 0) {
                fclose(f);
                continue;
            }
            line[strcspn(line, "\n")] = '\0';
            tdir[0] = '\0';
            if (sscanf(line, "tree\t%15[^\t]\t%255[^\t]\t%*40s\t%4095[^\n]",
                       type, id, tdir) < 2) {
                fclose(f);
                continue;
            }
            while (fgets(line, sizeof(line), f)) {
                char kind, oid[72], sha[72], name[512];
                unsigned long long size;
                line[strcspn(line, "\n")] = '\0';
                if (sscanf(line, "%c\t%llu\t%71[^\t]\t%71[^\t]\t%511[^\n]",
                           &kind, &size, oid, sha, name) != 5 ||
                    kind != 'f')
                    continue;
                const char *key = strcmp(sha, "-") ? sha : oid;
                for (size_t i = 0; i < n; i++) {
                    if (v[i].name || strcmp(v[i].key, key) != 0)
                        continue;
                    size_t len = strlen(type) + strlen(id) + strlen(tdir) +
                                 strlen(name) + 8;
                    v[i].name = malloc(len);
                    if (v[i].name)
                        snprintf(v[i].name, len, "%s%s%s: %s%s%s",
                                 strcmp(type, "models") ? type : "",
                                 strcmp(type, "models") ? "/" : "", id, tdir,
                                 tdir[0] ? "/" : "", name);
                }
            }
            fclose(f);
        }
        closedir(sd);
    }
    closedir(d);
}

struct ls {
    struct ls_ent *v;
    size_t n, cap;
    uint64_t total;
};

static bool ls_one(const struct cache_fmt_entry *e, void *arg)
{
    struct ls *l = arg;
    struct cache_fmt_info info;
    size_t i;
    /* the chunk file format is cache/cache_format.c's to read */
    if (e->tmp || cache_fmt_inspect(e->path, &info) < 0 ||
        strcmp(info.key, e->key) != 0 || info.idx != e->idx)
        return true; /* not a usable chunk file: not listed */
    for (i = 0; i < l->n; i++)
        if (strcmp(l->v[i].key, e->key) == 0)
            break;
    if (i == l->n) {
        if (l->n == l->cap) {
            size_t ncap = l->cap ? l->cap * 2 : 64;
            struct ls_ent *nv = realloc(l->v, ncap * sizeof(*nv));
            if (!nv)
                return false;
            l->v = nv;
            l->cap = ncap;
        }
        memset(&l->v[l->n], 0, sizeof(l->v[l->n]));
        snprintf(l->v[l->n].key, sizeof(l->v[l->n].key), "%s", e->key);
        l->n++;
    }
    l->v[i].chunks++;
    l->v[i].bytes += info.bytes;
    l->total += info.bytes;
    return true;
}

static int cache_ls(const struct hfm_config *cfg)
{
    struct ls l = {0};
    struct ls_ent *v;
    size_t n;
    uint64_t total;

    if (cache_fmt_walk(cfg->cache_dir, ls_one, &l) < 0) {
        printf("cache '%s' is empty\n", cfg->cache_dir);
        return 0;
    }
    v = l.v;
    n = l.n;
    total = l.total;
    name_keys(cfg->cache_dir, v, n);
    if (n > 0)
        qsort(v, n, sizeof(*v), cmp_ls);
    for (size_t i = 0; i < n; i++) {
        char hb[32];
        human(v[i].bytes, hb, sizeof(hb));
        printf("%10s %5" PRIu64 " chunks  %.12s  %s\n", hb, v[i].chunks,
               v[i].key, v[i].name ? v[i].name : "(unknown file)");
        free(v[i].name);
    }
    {
        char hb[32], lb[32];
        human(total, hb, sizeof(hb));
        human(cfg->cache_size, lb, sizeof(lb));
        printf("total %s in %zu files (limit %s) at '%s'\n", hb, n, lb,
               cfg->cache_dir);
    }
    free(v);
    return 0;
}

static int clean_dir(const struct hfm_config *cfg)
{
    struct cache_config cc;
    struct cache *c;
    int rc;

    memset(&cc, 0, sizeof(cc));
    cc.dir = cfg->cache_dir;
    cc.max_bytes = cfg->cache_size;
    rc = cache_new(&cc, &c);
    if (rc < 0) {
        fprintf(stderr, "hfmount: cannot use cache directory '%s': %s\n",
                cfg->cache_dir, strerror(-rc));
        return 1;
    }
    /* mounts using the directory go on: they fetch again what they need */
    rc = cache_clean(c);
    cache_free(c);
    if (rc < 0) {
        fprintf(stderr, "hfmount: cannot clean '%s': %s\n", cfg->cache_dir,
                strerror(-rc));
        return 1;
    }
    printf("cache '%s' emptied\n", cfg->cache_dir);
    return 0;
}

int hfm_tool_main(struct hfm_config *cfg)
{
    switch (cfg->command) {
    case HFM_CMD_PREFETCH:
        return prefetch(cfg);
    case HFM_CMD_STATUS:
        return status(cfg);
    case HFM_CMD_CACHE_LS:
        return cache_ls(cfg);
    case HFM_CMD_CACHE_CLEAN:
        return clean_dir(cfg);
    case HFM_CMD_MOUNT:
        break;
    }
    return 2;
}

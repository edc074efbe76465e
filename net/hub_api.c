/*
 * hub_api.c - the Hub routes hfmount uses, on top of the network thread:
 * revision info, paginated tree listing, whoami, namespace listing, and
 * range reads of a file through resolve.
 *
 * URLs are built here and only here: the revision travels as one fully
 * percent-encoded segment (refs/pr/1 -> refs%2Fpr%2F1), paths keep '/'
 * and encode every other reserved byte. A pagination Link must stay on
 * the endpoint's origin: HH would send the token wherever it points; we
 * refuse instead.
 */
#include "net/hub.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/hub_internal.h"
#include "net/log.h"

static enum hub_err api_get(struct hub *hub, const char *url,
                            struct hub_req **out, struct hub_why *why)
{
    struct hub_req *req = calloc(1, sizeof(*req));
    enum hub_err err;

    *out = NULL;
    if (!req)
        return HUB_E_NOMEM;
    req->kind = HUB_REQ_API;
    req->max_body = HUB_JSON_MAX_BYTES;
    snprintf(req->url, sizeof(req->url), "%s", url);
    err = hub_req_run(hub, req);
    if (err != HUB_OK) {
        if (why)
            *why = req->why;
        hub_req_release(req);
        free(req);
        return err;
    }
    if (!req->body) {
        req->body = strdup("");
        if (!req->body) {
            free(req);
            return HUB_E_NOMEM;
        }
    }
    *out = req;
    return HUB_OK;
}

static void api_free(struct hub_req *req)
{
    if (!req)
        return;
    hub_req_release(req);
    free(req);
}

static bool build(char *out, size_t cap, const char *fmt, ...)
    HFM_PRINTF(3, 4);
static bool build(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(out, cap, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < cap;
}

enum hub_err hub_revision(struct hub *hub, enum hub_repo_type type,
                          const char *id, const char *rev,
                          struct hub_info *out, struct hub_why *why)
{
    char eid[HUB_ID_MAX * 3], erev[HUB_REV_MAX * 3], url[HUB_URL_MAX];
    struct hub_req *req;
    enum hub_err err;

    memset(out, 0, sizeof(*out));
    if (!hub_url_escape(id, true, eid, sizeof(eid)))
        return HUB_E_PROTOCOL;
    if (rev && rev[0]) {
        if (!hub_url_escape(rev, false, erev, sizeof(erev)) ||
            !build(url, sizeof(url), "%s/api/%s/%s/revision/%s",
                   hub->endpoint, hub_repo_type_plural(type), eid, erev))
            return HUB_E_PROTOCOL;
    } else if (!build(url, sizeof(url), "%s/api/%s/%s", hub->endpoint,
                      hub_repo_type_plural(type), eid)) {
        return HUB_E_PROTOCOL;
    }
    err = api_get(hub, url, &req, why);
    if (err != HUB_OK)
        return err;
    err = hub_parse_info(req->body, req->body_len, out);
    if (err != HUB_OK)
        hub_why_set(why, "unreadable repo info for '%s'", id);
    api_free(req);
    return err;
}

/* Drops the entries past max (in the Hub's order, before sorting). */
static void tree_cut(struct hub_tree *t, size_t max)
{
    for (size_t i = max; i < t->count; i++)
        free(t->entries[i].name);
    if (t->count > max)
        t->count = max;
}

/* Follows rel="next" links page by page; parse() eats each page. With max
 * > 0, stops once out holds max entries: out->truncated if pages were
 * left. */
static enum hub_err paginate(struct hub *hub, const char *first_url,
                             enum hub_err (*parse)(const char *, size_t,
                                                   const char *,
                                                   struct hub_tree *,
                                                   struct hub_why *),
                             const char *arg, size_t max,
                             struct hub_tree *out, struct hub_why *why)
{
    char *url = malloc(HUB_URL_MAX);
    char *next = malloc(HUB_URL_MAX);
    enum hub_err err = HUB_E_NOMEM;
    int pages = 0;

    if (!url || !next)
        goto out_free;
    snprintf(url, HUB_URL_MAX, "%s", first_url);
    for (;;) {
        struct hub_req *req;
        err = api_get(hub, url, &req, why);
        if (err != HUB_OK)
            goto out_free;
        err = parse(req->body, req->body_len, arg, out, why);
        bool more = err == HUB_OK && req->hdrs.link[0] &&
                    hub_parse_link_next(req->hdrs.link, next, HUB_URL_MAX);
        if (more) {
            /* a relative next link resolves against the page's URL */
            char *abs = malloc(HUB_URL_MAX);
            if (!abs || !hub_url_join(req->url, next, abs, HUB_URL_MAX)) {
                free(abs);
                api_free(req);
                hub_why_set(why, "unusable pagination link");
                err = HUB_E_PROTOCOL;
                goto out_free;
            }
            snprintf(next, HUB_URL_MAX, "%s", abs);
            free(abs);
        }
        api_free(req);
        if (err != HUB_OK)
            goto out_free;
        if (max > 0 && out->count >= max) {
            out->truncated = more || out->count > max;
            tree_cut(out, max);
            break;
        }
        if (!more)
            break;
        if (!hub_url_is_hub(hub, next)) {
            hub_why_set(why, "pagination link leaves the Hub endpoint");
            err = HUB_E_PROTOCOL;
            goto out_free;
        }
        if (strcmp(next, url) == 0 || ++pages >= HUB_TREE_MAX_PAGES) {
            hub_why_set(why, "pagination does not end (%d pages)", pages);
            err = HUB_E_PROTOCOL;
            goto out_free;
        }
        snprintf(url, HUB_URL_MAX, "%s", next);
    }
    hub_tree_finish(out);
    err = HUB_OK;
out_free:
    free(url);
    free(next);
    return err;
}

enum hub_err hub_tree_list(struct hub *hub, enum hub_repo_type type,
                           const char *id, const char *sha, const char *dir,
                           struct hub_tree *out, struct hub_why *why)
{
    char eid[HUB_ID_MAX * 3], url[HUB_URL_MAX];
    char *edir;
    enum hub_err err;
    size_t cap = strlen(dir) * 3 + 1;

    edir = malloc(cap);
    if (!edir)
        return HUB_E_NOMEM;
    if (!hub_url_escape(id, true, eid, sizeof(eid)) ||
        !hub_url_escape(dir, true, edir, cap) ||
        !build(url, sizeof(url), "%s/api/%s/%s/tree/%s%s%s?recursive=false&expand=false",
               hub->endpoint, hub_repo_type_plural(type), eid, sha,
               dir[0] ? "/" : "", edir)) {
        free(edir);
        return HUB_E_PROTOCOL;
    }
    free(edir);
    err = paginate(hub, url, hub_parse_tree_page, dir, 0, out, why);
    if (err != HUB_OK)
        hub_tree_release(out);
    else if (out->skipped > 0)
        hfm_log(HFM_LOG_WARN,
                "skipped %zu bad entries listing '%s' in '%s': %s",
                out->skipped, dir[0] ? dir : "/", id, why ? why->line : "");
    return err;
}

enum hub_err hub_list_repos(struct hub *hub, enum hub_repo_type type,
                            const char *ns, struct hub_tree *out,
                            struct hub_why *why)
{
    char ens[HUB_ID_MAX * 3], url[HUB_URL_MAX];
    enum hub_err err;

    if (!hub_url_escape(ns, false, ens, sizeof(ens)) ||
        !build(url, sizeof(url), "%s/api/%s?author=%s&limit=%d",
               hub->endpoint, hub_repo_type_plural(type), ens,
               HUB_TREE_PAGE_LIMIT))
        return HUB_E_PROTOCOL;
    err = paginate(hub, url, hub_parse_repo_list, ns, HUB_NS_LIST_MAX, out,
                   why);
    if (err != HUB_OK)
        hub_tree_release(out);
    return err;
}

enum hub_err hub_repos_exist(struct hub *hub, enum hub_repo_type type,
                             const char *ns, bool *exists,
                             struct hub_why *why)
{
    char ens[HUB_ID_MAX * 3], url[HUB_URL_MAX];
    struct hub_req *req;
    struct hub_tree t;
    enum hub_err err;

    *exists = false;
    if (!hub_url_escape(ns, false, ens, sizeof(ens)) ||
        !build(url, sizeof(url), "%s/api/%s?author=%s&limit=1", hub->endpoint,
               hub_repo_type_plural(type), ens))
        return HUB_E_PROTOCOL;
    err = api_get(hub, url, &req, why);
    if (err != HUB_OK)
        return err;
    hub_tree_init(&t);
    err = hub_parse_repo_list(req->body, req->body_len, ns, &t, why);
    *exists = err == HUB_OK && t.count > 0;
    hub_tree_release(&t);
    api_free(req);
    return err;
}

enum hub_err hub_whoami(struct hub *hub, struct hub_whoami *out,
                        struct hub_why *why)
{
    char url[HUB_URL_MAX];
    struct hub_req *req;
    enum hub_err err;

    memset(out, 0, sizeof(*out));
    if (!build(url, sizeof(url), "%s/api/whoami-v2", hub->endpoint))
        return HUB_E_PROTOCOL;
    err = api_get(hub, url, &req, why);
    if (err != HUB_OK)
        return err;
    err = hub_parse_whoami(req->body, req->body_len, out);
    api_free(req);
    return err;
}

/* ---- files -------------------------------------------------------- */

enum hub_err hub_file_new(struct hub *hub, enum hub_repo_type type,
                          const char *id, const char *sha, const char *path,
                          uint64_t size, struct hub_file **out)
{
    struct hub_file *f;
    char eid[HUB_ID_MAX * 3];
    char *epath;
    size_t cap = strlen(path) * 3 + 1;
    bool ok;

    *out = NULL;
    f = calloc(1, sizeof(*f));
    epath = malloc(cap);
    if (!f || !epath) {
        free(f);
        free(epath);
        return HUB_E_NOMEM;
    }
    ok = hub_url_escape(id, true, eid, sizeof(eid)) &&
         hub_url_escape(path, true, epath, cap) &&
         build(f->resolve_url, sizeof(f->resolve_url), "%s/%s%s/resolve/%s/%s",
               hub->endpoint, hub_repo_type_prefix(type), eid, sha, epath);
    free(epath);
    if (!ok) {
        free(f);
        return HUB_E_PROTOCOL;
    }
    f->hub = hub;
    f->size = size;
    pthread_mutex_init(&f->lock, NULL);
    *out = f;
    return HUB_OK;
}

void hub_file_free(struct hub_file *f)
{
    if (!f)
        return;
    free(f->final_url);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

struct read_ctx {
    struct hub_req req;
    hub_read_done_fn done;
    void *arg;
};

static void read_done(struct hub_req *req)
{
    struct read_ctx *ctx = (struct read_ctx *)req;
    ctx->done(ctx->arg, req->err, &req->why);
    free(ctx);
}

enum hub_err hub_file_read_start(struct hub *hub, struct hub_file *f,
                                 uint64_t off, size_t len, char *buf,
                                 hub_read_done_fn done, void *arg)
{
    struct read_ctx *ctx;
    enum hub_err err;

    if (len == 0 || off >= f->size || len > f->size - off)
        return HUB_E_RANGE;
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return HUB_E_NOMEM;
    ctx->done = done;
    ctx->arg = arg;
    ctx->req.kind = HUB_REQ_RANGE;
    ctx->req.file = f;
    ctx->req.off = off;
    ctx->req.len = len;
    ctx->req.dst = buf;
    ctx->req.done = read_done;
    err = hub_file_dispatch(hub, &ctx->req);
    if (err != HUB_OK)
        free(ctx);
    return err;
}

enum hub_err hub_file_dispatch(struct hub *hub, struct hub_req *req)
{
    struct hub_file *f = req->file;

    pthread_mutex_lock(&f->lock);
    req->resolver = false;
    req->using_cached_url = f->final_url != NULL;
    if (f->final_url) {
        snprintf(req->url, sizeof(req->url), "%s", f->final_url);
    } else if (f->resolving) {
        req->next = f->waiters;
        f->waiters = req;
        pthread_mutex_unlock(&f->lock);
        return HUB_OK;
    } else {
        f->resolving = true;
        req->resolver = true;
        snprintf(req->url, sizeof(req->url), "%s", f->resolve_url);
    }
    pthread_mutex_unlock(&f->lock);
    enum hub_err err = hub_req_submit(hub, req);
    if (err != HUB_OK && req->resolver) {
        /* never started: the reads queued behind it must not wait */
        req->resolver = false;
        hub_file_release_waiters(hub, f);
    }
    return err;
}

void hub_file_release_waiters(struct hub *hub, struct hub_file *f)
{
    struct hub_req *w, *next;

    pthread_mutex_lock(&f->lock);
    f->resolving = false;
    w = f->waiters;
    f->waiters = NULL;
    pthread_mutex_unlock(&f->lock);
    for (; w; w = next) {
        next = w->next;
        w->next = NULL;
        enum hub_err err = hub_file_dispatch(hub, w);
        if (err != HUB_OK) {
            hub_why_set(&w->why, "%s", hub_strerror(err));
            w->err = err;
            w->done(w);
        }
    }
}

struct read_wait {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    enum hub_err err;
    struct hub_why *why;
};

static void read_wait_done(void *arg, enum hub_err err,
                           const struct hub_why *why)
{
    struct read_wait *w = arg;
    pthread_mutex_lock(&w->lock);
    w->err = err;
    if (w->why)
        *w->why = *why;
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

enum hub_err hub_file_read(struct hub *hub, struct hub_file *f, uint64_t off,
                           size_t len, char *buf, struct hub_why *why)
{
    struct read_wait w = {.done = false, .why = why};
    enum hub_err err;

    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    err = hub_file_read_start(hub, f, off, len, buf, read_wait_done, &w);
    if (err == HUB_OK) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        err = w.err;
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return err;
}

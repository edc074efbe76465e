/*
 * ops.c - the FUSE low-level operations: lookups become Hub requests
 * (revision, tree listing) one directory at a time, reads go through the
 * chunk cache, and every write is EROFS.
 *
 * DESIGN. Each callback finds its struct hfm through fuse_req_userdata().
 * Table state is read and changed under hfm->lock; Hub requests and cache
 * reads run with no lock held. A directory's listing is loaded once: the
 * first caller marks it LOADING and fetches (disk metadata first, then the
 * Hub); others wait on hfm->cond. A failed load is not remembered, so the
 * next access tries again.
 *
 * Pinning: a repo directory name (NS/NAME or NS/NAME@REV) is resolved to a
 * commit sha the first time it is looked up; the pin map keeps that answer
 * for the life of the mount, even after the kernel forgets the node, so a
 * view never moves to another commit under a reader.
 */
#define FUSE_USE_VERSION 312
#include "fs/hfm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "cache/cache.h"
#include "fs/auth.h"
#include "net/hub.h"
#include "net/log.h"

#define XATTR_COMMIT "user.hf.commit"
#define XATTR_OID "user.hf.oid"
#define XATTR_SIZE "user.hf.size"
#define XATTR_STATS "user.hf.stats" /* mount root: counters as JSON */
#define STATS_MAX 1024
#define FS_MAX_BACKGROUND 128 /* kernel async requests in flight */
#define DIRENT_UNKNOWN_INO 0xffffffffu /* readdir: "ask lookup" */

/* Open files and directories are listed in hfm->open_handles (protected
 * by hfm->lock) so those the kernel never released (unmount by signal)
 * are freed at exit. */
struct fs_open {
    struct fs_open *prev, *next;
    bool is_dir; /* a struct dirbuf, else a struct fs_handle */
};

struct fs_handle {
    struct fs_open link; /* first: hfm_release frees through it */
    struct fs_node *node;
    pthread_mutex_t lock;
    struct cache_stream stream; /* protected by lock */
};

struct dirbuf {
    struct fs_open link; /* first */
    char *p;
    size_t size;
    size_t cap;
};

static void open_add(struct hfm *h, struct fs_open *o)
{
    o->prev = NULL;
    o->next = h->open_handles;
    if (o->next)
        o->next->prev = o;
    h->open_handles = o;
}

static void open_del(struct hfm *h, struct fs_open *o)
{
    if (o->prev)
        o->prev->next = o->next;
    else
        h->open_handles = o->next;
    if (o->next)
        o->next->prev = o->prev;
}

static struct hfm *get_hfm(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

static bool node_in_repo(const struct fs_node *n)
{
    return n->kind == FS_DIR || n->kind == FS_FILE;
}

/* ---- attributes ----------------------------------------------------- */

static void fill_stat(struct hfm *h, const struct fs_node *n, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = n->ino;
    st->st_uid = h->uid;
    st->st_gid = h->gid;
    st->st_blksize = 4096;
    if (n->kind == FS_FILE) {
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = (off_t)n->size;
        st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
    } else {
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
    }
    if (node_in_repo(n) && n->repo) {
        st->st_mtime = st->st_ctime = st->st_atime = (time_t)n->repo->mtime;
    } else {
        st->st_mtime = st->st_ctime = st->st_atime = h->start_time;
    }
}

static double node_timeout(const struct fs_node *n)
{
    return node_in_repo(n) ? HFM_CONTENT_TIMEOUT_S : HFM_VIRTUAL_TIMEOUT_S;
}

/* Rule 1 of inode.h: count the entry, then reply. */
static void reply_entry(fuse_req_t req, struct hfm *h, struct fs_node *n)
{
    struct fuse_entry_param e;

    memset(&e, 0, sizeof(e));
    e.ino = n->ino;
    e.generation = 1;
    fill_stat(h, n, &e.attr);
    e.attr_timeout = node_timeout(n);
    e.entry_timeout = node_timeout(n);
    fs_node_lookup(h, n);
    pthread_mutex_unlock(&h->lock);
    if (fuse_reply_entry(req, &e) != 0) {
        pthread_mutex_lock(&h->lock);
        fs_node_forget(h, n, 1);
        pthread_mutex_unlock(&h->lock);
    }
}

/* ---- listings ------------------------------------------------------- */

/* After a permission failure: a changed token is worth one more try. */
static bool retry_with_new_token(struct hfm *h, int rc,
                                 const struct hub_why *why)
{
    if (rc != -EACCES && rc != -ENOENT)
        return false;
    if (!why || (why->status != 401 && why->status != 403 &&
                 why->status != 404))
        return false;
    return hfm_auth_refresh_token(h);
}

static int load_tree(struct hfm *h, struct fs_node *n, struct hub_tree *out,
                     struct hub_why *why)
{
    struct fs_repo *r = n->repo;
    enum hub_err err;
    int rc;

    rc = cache_meta_get_tree(h->cache, r->type, r->id, r->sha, n->path, out);
    if (rc == 0)
        return 0;
    err = hub_tree_list(h->hub, r->type, r->id, r->sha, n->path, out, why);
    if (err != HUB_OK && retry_with_new_token(h, hfm_auth_errno(h, err), why))
        err = hub_tree_list(h->hub, r->type, r->id, r->sha, n->path, out, why);
    if (err != HUB_OK)
        return hfm_auth_errno(h, err);
    rc = cache_meta_put_tree(h->cache, r->type, r->id, r->sha, n->path, out);
    if (rc < 0)
        hfm_log(HFM_LOG_DEBUG, "cannot store the listing of '%s': %s",
                n->path, strerror(-rc));
    return 0;
}

/* Makes n->list READY (DIR nodes). Called and returns with h->lock held;
 * drops it while loading. */
static int ensure_listing(struct hfm *h, struct fs_node *n)
{
    struct hub_tree tree;
    struct hub_why why;
    int rc;

    for (;;) {
        if (n->list_state == FS_LIST_READY)
            return 0;
        if (n->list_state == FS_LIST_NONE)
            break;
        pthread_cond_wait(&h->cond, &h->lock);
    }
    n->list_state = FS_LIST_LOADING;
    fs_node_ref(h, n);
    pthread_mutex_unlock(&h->lock);

    hub_tree_init(&tree);
    hub_why_clear(&why);
    rc = load_tree(h, n, &tree, &why);
    if (rc < 0)
        rc = hfm_report(h, n->repo->type, n->repo->id, NULL, n->path, "list",
                        rc, &why);

    pthread_mutex_lock(&h->lock);
    if (rc == 0) {
        n->list = tree;
        n->list_state = FS_LIST_READY;
    } else {
        hub_tree_release(&tree);
        n->list_state = FS_LIST_NONE;
    }
    pthread_cond_broadcast(&h->cond);
    fs_node_unref(h, n);
    return rc;
}

static const struct hub_tree_entry *find_entry(const struct hub_tree *t,
                                               const char *name)
{
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->entries[mid].name, name);
        if (c == 0)
            return &t->entries[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static char *child_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s", dir, dir[0] ? "/" : "", name);
    return p;
}

/* ---- names looked up so far ----------------------------------------- */

static void remember_name(struct hub_tree *set, const char *name)
{
    struct hub_tree_entry *ne;
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->entries[i].name, name) == 0)
            return;
    if (set->count == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 16;
        ne = realloc(set->entries, cap * sizeof(*ne));
        if (!ne)
            return;
        set->entries = ne;
        set->cap = cap;
    }
    memset(&set->entries[set->count], 0, sizeof(set->entries[0]));
    set->entries[set->count].name = strdup(name);
    set->entries[set->count].is_dir = true;
    if (set->entries[set->count].name)
        set->count++;
}

/* ---- repo resolution ------------------------------------------------ */

static struct fs_repo *find_pin(struct hfm *h, enum hub_repo_type type,
                                const char *id, const char *rev)
{
    for (struct fs_repo *r = h->pins; r; r = r->next)
        if (r->type == type && strcmp(r->key_id, id) == 0 &&
            strcmp(r->rev, rev) == 0)
            return r;
    return NULL;
}

static bool is_sha(const char *s)
{
    if (strlen(s) != 40)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    return true;
}

int hfm_resolve_repo(struct hfm *h, enum hub_repo_type type, const char *id,
                     const char *rev, struct hub_info *info,
                     struct hub_why *why)
{
    enum hub_err err;
    int rc;

    /* A commit never moves: a cached answer is the answer. A branch or tag
     * may move, so it is asked again unless offline. */
    if (is_sha(rev) || hub_is_offline(h->hub)) {
        rc = cache_meta_get_rev(h->cache, type, id, rev, info);
        if (rc == 0)
            return 0;
        if (hub_is_offline(h->hub)) {
            hub_why_set(why, "not in the cache (offline)");
            return -ENOENT;
        }
    }
    err = hub_revision(h->hub, type, id, rev, info, why);
    if (err != HUB_OK && retry_with_new_token(h, hfm_auth_errno(h, err), why))
        err = hub_revision(h->hub, type, id, rev, info, why);
    if (err != HUB_OK)
        return hfm_auth_errno(h, err);
    rc = cache_meta_put_rev(h->cache, type, id, rev, info);
    if (rc < 0)
        hfm_log(HFM_LOG_DEBUG, "cannot store the revision of '%s': %s", id,
                strerror(-rc));
    if (!is_sha(rev)) {
        /* offline mode finds a branch's answer under its own name and the
         * commit's, so a later @sha mount needs no request either */
        rc = cache_meta_put_rev(h->cache, type, id, info->sha, info);
        (void)rc;
    }
    return 0;
}

static bool valid_id(const char *id)
{
    const char *slash = strchr(id, '/');
    return slash && hub_repo_part_ok(id, (size_t)(slash - id)) &&
           hub_repo_part_ok(slash + 1, strlen(slash + 1));
}

/* The directory name a pin was looked up as: name[@rev, '/' as %2F]. */
static bool pin_name(const struct fs_repo *r, char *out, size_t cap)
{
    const char *name = strchr(r->key_id, '/');
    size_t j;
    int n;

    if (!name)
        return false;
    n = snprintf(out, cap, "%s%s", name + 1, r->rev[0] ? "@" : "");
    if (n < 0 || (size_t)n >= cap)
        return false;
    j = (size_t)n;
    for (const char *p = r->rev; *p; p++) {
        if (j + 4 >= cap)
            return false;
        if (*p == '/') {
            memcpy(out + j, "%2F", 3);
            j += 3;
        } else {
            out[j++] = *p;
        }
    }
    out[j] = '\0';
    return true;
}

/* Pins (type, id, rev) if not pinned yet. Called with h->lock held;
 * drops it while asking the Hub. quiet: no log line on failure. */
static int pin_repo(struct hfm *h, enum hub_repo_type type, const char *id,
                    const char *rev, bool quiet, struct fs_repo **out)
{
    struct hub_info info;
    struct hub_why why;
    struct fs_repo *r;
    int rc;

    r = find_pin(h, type, id, rev);
    if (r) {
        *out = r;
        return 0;
    }
    pthread_mutex_unlock(&h->lock);
    hub_why_clear(&why);
    rc = hfm_resolve_repo(h, type, id, rev, &info, &why);
    if (rc < 0 && quiet) /* a guess (legacy id): its failure is ENOENT */
        rc = why.status >= 400 && why.status < 500 ? -ENOENT : rc;
    else if (rc < 0)
        rc = hfm_report(h, type, id, rev, NULL, "look up", rc, &why);
    pthread_mutex_lock(&h->lock);
    if (rc < 0)
        return rc;
    r = find_pin(h, type, id, rev); /* another thread may have won */
    if (r) {
        *out = r;
        return 0;
    }
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->type = type;
    /* fetch by the canonical id (a renamed repo answers under its new
     * name), find by the name as looked up */
    snprintf(r->id, sizeof(r->id), "%s", valid_id(info.id) ? info.id : id);
    snprintf(r->key_id, sizeof(r->key_id), "%s", id);
    snprintf(r->rev, sizeof(r->rev), "%s", rev);
    snprintf(r->sha, sizeof(r->sha), "%s", info.sha);
    r->mtime = info.mtime;
    r->refs = 1; /* the pin map's */
    r->next = h->pins;
    h->pins = r;
    hfm_log(HFM_LOG_INFO, "pinned '%s%s%s%s' to commit %s", hub_repo_type_prefix(type),
            r->id, rev[0] ? "@" : "", rev, r->sha);
    *out = r;
    return 0;
}

/* "name" or "name@REV" (REV with %2F for '/') under namespace ns, through
 * the same parser as the command line's REPO[@REV]. */
static bool split_repo_name(const char *ns, const char *s, char *id,
                            size_t icap, char *rev, size_t rcap)
{
    struct hub_repo_spec spec;
    char full[HUB_ID_MAX + HUB_REV_MAX * 3];
    int n = snprintf(full, sizeof(full), "%s/%s", ns, s);

    if (n < 0 || (size_t)n >= sizeof(full) ||
        hub_parse_repo_spec(full, (size_t)n, &spec) != HUB_OK ||
        spec.type != HUB_REPO_MODEL)
        return false;
    snprintf(id, icap, "%s", spec.id);
    snprintf(rev, rcap, "%s", spec.rev);
    return true;
}

/* Creates the repo-root DIR node for a pin under parent (lock held). */
static struct fs_node *repo_node(struct hfm *h, struct fs_node *parent,
                                 const char *name, struct fs_repo *r)
{
    struct fs_node *n = fs_node_new(h, parent, name, FS_DIR);
    if (!n)
        return NULL;
    n->path = strdup("");
    if (!n->path) {
        fs_node_forget(h, n, 0);
        return NULL;
    }
    n->repo = r;
    r->refs++;
    snprintf(n->oid, sizeof(n->oid), "%s", r->sha);
    return n;
}

/* ---- lookup --------------------------------------------------------- */

/*
 * A name under the root (models) or under datasets/ or spaces/: a
 * namespace if the Hub lists any repo of that type by that author (asked
 * once per mount: a namespace seen stays known), else, at the root, a
 * legacy id such as "gpt2" if the Hub resolves it as a model (it redirects
 * to the canonical "openai-community/gpt2"), else ENOENT. Offline, every
 * well-formed name is a namespace: the repos below answer from the cache.
 * Called with h->lock held; drops it while asking.
 */
static int lookup_namespace(struct hfm *h, struct fs_node *p,
                            enum hub_repo_type t, const char *name,
                            struct fs_node **out)
{
    struct hub_tree *known = &h->known_ns[t];
    struct hub_why why;
    bool exists = false, listed = false;
    enum hub_err err = HUB_OK;
    struct fs_node *n;
    int rc;

    for (size_t i = 0; i < known->count; i++)
        if (strcmp(known->entries[i].name, name) == 0)
            exists = true;
    if (!exists && cache_meta_get_ns(h->cache, t, name) == 0)
        exists = true; /* seen by an earlier mount */
    if (!exists && !hub_is_offline(h->hub)) {
        pthread_mutex_unlock(&h->lock);
        hub_why_clear(&why);
        err = hub_repos_exist(h->hub, t, name, &exists, &why);
        listed = err == HUB_OK && exists;
        if (err != HUB_OK && (why.status == 401 || why.status == 403)) {
            /* let the repo's own lookup name the cause, with its id */
            err = HUB_OK;
            exists = true;
        }
        if (err != HUB_OK)
            rc = hfm_report(h, t, name, NULL, NULL, "look up namespace",
                            hfm_auth_errno(h, err), &why);
        else if (!exists && !hub_has_token(h->hub))
            hfm_report_hidden(h, t, name);
        else if (listed && cache_meta_put_ns(h->cache, t, name) < 0)
            hfm_log(HFM_LOG_DEBUG, "cannot store namespace '%s'", name);
        pthread_mutex_lock(&h->lock);
        if (err != HUB_OK)
            return rc;
    } else if (hub_is_offline(h->hub)) {
        exists = true;
    }
    n = fs_node_child(h, p, name); /* raced with another lookup? */
    if (n) {
        *out = n;
        return 0;
    }
    if (exists) {
        n = fs_node_new(h, p, name, FS_NS);
        if (!n)
            return -ENOMEM;
        n->type = t;
        n->ns = strdup(name);
        remember_name(known, name);
        *out = n;
        return 0;
    }
    if (p->kind == FS_ROOT) {
        struct fs_repo *r;
        rc = pin_repo(h, HUB_REPO_MODEL, name, "", true, &r);
        if (rc < 0)
            return rc;
        n = fs_node_child(h, p, name);
        if (!n)
            n = repo_node(h, p, name, r);
        if (!n)
            return -ENOMEM;
        remember_name(known, name);
        *out = n;
        return 0;
    }
    return -ENOENT;
}

static int lookup_locked(struct hfm *h, struct fs_node *p, const char *name,
                         struct fs_node **out)
{
    struct fs_node *n = fs_node_child(h, p, name);
    int rc;

    if (n) {
        *out = n;
        return 0;
    }
    switch (p->kind) {
    case FS_ROOT:
    case FS_TYPEDIR: {
        enum hub_repo_type t = p->kind == FS_TYPEDIR ? p->type : HUB_REPO_MODEL;
        if (p->kind == FS_ROOT && strcmp(name, "datasets") == 0) {
            n = fs_node_new(h, p, name, FS_TYPEDIR);
            if (n)
                n->type = HUB_REPO_DATASET;
        } else if (p->kind == FS_ROOT && strcmp(name, "spaces") == 0) {
            n = fs_node_new(h, p, name, FS_TYPEDIR);
            if (n)
                n->type = HUB_REPO_SPACE;
        } else if (hub_repo_part_ok(name, strlen(name)) &&
                   !strchr(name, '.')) {
            /* User and org names hold no '.', so "new.txt" is no
             * namespace (and creating it is EROFS). */
            fs_node_ref(h, p);
            rc = lookup_namespace(h, p, t, name, &n);
            fs_node_unref(h, p);
            if (rc < 0)
                return rc;
        } else {
            return -ENOENT;
        }
        if (!n)
            return -ENOMEM;
        *out = n;
        return 0;
    }
    case FS_NS: {
        char rev[HUB_REV_MAX], id[HUB_ID_MAX];
        struct fs_repo *r;
        if (!split_repo_name(p->ns, name, id, sizeof(id), rev, sizeof(rev)))
            return -ENOENT;
        fs_node_ref(h, p);
        rc = pin_repo(h, p->type, id, rev, false, &r);
        fs_node_unref(h, p); /* p stays: the kernel holds it for us */
        if (rc < 0)
            return rc;
        n = fs_node_child(h, p, name); /* raced with another lookup? */
        if (!n)
            n = repo_node(h, p, name, r);
        if (!n)
            return -ENOMEM;
        *out = n;
        return 0;
    }
    case FS_DIR: {
        const struct hub_tree_entry *e = NULL;
        fs_node_ref(h, p);
        rc = ensure_listing(h, p);
        if (rc == 0) {
            e = find_entry(&p->list, name);
            if (!e)
                rc = -ENOENT;
        }
        if (rc < 0) {
            fs_node_unref(h, p);
            return rc;
        }
        n = fs_node_child(h, p, name);
        if (!n) {
            n = fs_node_new(h, p, name, e->is_dir ? FS_DIR : FS_FILE);
            if (n) {
                n->path = child_path(p->path, name);
                n->repo = p->repo;
                p->repo->refs++;
                n->size = e->size;
                snprintf(n->oid, sizeof(n->oid), "%s", e->oid);
                snprintf(n->sha256, sizeof(n->sha256), "%s", e->sha256);
                if (!n->path) {
                    fs_node_forget(h, n, 0);
                    n = NULL;
                }
            }
        }
        fs_node_unref(h, p);
        if (!n)
            return -ENOMEM;
        *out = n;
        return 0;
    }
    case FS_FILE:
        return -ENOTDIR;
    }
    return -ENOENT;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct hfm *h = get_hfm(req);
    struct fs_node *p, *n = NULL;
    int rc;

    pthread_mutex_lock(&h->lock);
    p = fs_node_find(h, parent);
    if (!p) {
        pthread_mutex_unlock(&h->lock);
        fuse_reply_err(req, ESTALE);
        return;
    }
    rc = lookup_locked(h, p, name, &n);
    if (rc < 0) {
        pthread_mutex_unlock(&h->lock);
        fuse_reply_err(req, -rc);
        return;
    }
    reply_entry(req, h, n); /* unlocks */
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    struct hfm *h = get_hfm(req);
    pthread_mutex_lock(&h->lock);
    struct fs_node *n = fs_node_find(h, ino);
    if (n && n != h->root)
        fs_node_forget(h, n, nlookup);
    pthread_mutex_unlock(&h->lock);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
    struct hfm *h = get_hfm(req);
    pthread_mutex_lock(&h->lock);
    for (size_t i = 0; i < count; i++) {
        struct fs_node *n = fs_node_find(h, forgets[i].ino);
        if (n && n != h->root)
            fs_node_forget(h, n, forgets[i].nlookup);
    }
    pthread_mutex_unlock(&h->lock);
    fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct hfm *h = get_hfm(req);
    struct stat st;
    double t;
    (void)fi;

    pthread_mutex_lock(&h->lock);
    struct fs_node *n = fs_node_find(h, ino);
    if (!n) {
        pthread_mutex_unlock(&h->lock);
        fuse_reply_err(req, ESTALE);
        return;
    }
    fill_stat(h, n, &st);
    t = node_timeout(n);
    pthread_mutex_unlock(&h->lock);
    fuse_reply_attr(req, &st, t);
}

/* ---- directories ---------------------------------------------------- */

static void dirbuf_add(fuse_req_t req, struct dirbuf *b, const char *name,
                       uint64_t ino, bool is_dir)
{
    struct stat st;
    size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
    if (b->size + need > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->size + need)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np)
            return;
        b->p = np;
        b->cap = cap;
    }
    memset(&st, 0, sizeof(st));
    st.st_ino = ino;
    st.st_mode = is_dir ? S_IFDIR : S_IFREG;
    fuse_add_direntry(req, b->p + b->size, need, name, &st,
                      (off_t)(b->size + need));
    b->size += need;
}

static void add_names(fuse_req_t req, struct dirbuf *b,
                      const struct hub_tree *t)
{
    for (size_t i = 0; i < t->count; i++)
        dirbuf_add(req, b, t->entries[i].name, DIRENT_UNKNOWN_INO,
                   t->entries[i].is_dir);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct hfm *h = get_hfm(req);
    struct dirbuf *b = calloc(1, sizeof(*b));
    struct fs_node *n;
    int rc = 0;

    if (!b) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_lock(&h->lock);
    n = fs_node_find(h, ino);
    if (!n) {
        pthread_mutex_unlock(&h->lock);
        free(b);
        fuse_reply_err(req, ESTALE);
        return;
    }
    dirbuf_add(req, b, ".", n->ino, true);
    dirbuf_add(req, b, "..", n->parent ? n->parent->ino : n->ino, true);
    switch (n->kind) {
    case FS_ROOT:
        dirbuf_add(req, b, "datasets", DIRENT_UNKNOWN_INO, true);
        dirbuf_add(req, b, "spaces", DIRENT_UNKNOWN_INO, true);
        add_names(req, b, &h->known_ns[HUB_REPO_MODEL]);
        break;
    case FS_TYPEDIR:
        add_names(req, b, &h->known_ns[n->type]);
        break;
    case FS_NS: {
        struct hub_tree repos;
        struct hub_why why;
        enum hub_err err;
        char prefix[HUB_ID_MAX];
        enum hub_repo_type type = n->type;
        char *ns = strdup(n->ns);
        fs_node_ref(h, n);
        pthread_mutex_unlock(&h->lock);
        hub_tree_init(&repos);
        hub_why_clear(&why);
        err = ns && !hub_is_offline(h->hub)
                  ? hub_list_repos(h->hub, type, ns, &repos, &why)
                  : HUB_E_OFFLINE;
        if (err != HUB_OK && err != HUB_E_OFFLINE)
            hfm_log(HFM_LOG_WARN, "cannot list the repos of '%s%s': %s%s%s",
                    hub_repo_type_prefix(type), ns ? ns : "", hub_strerror(err),
                    why.line[0] ? ": " : "", why.line);
        else if (err == HUB_OK && repos.truncated)
            hfm_report_truncated(h, type, ns, repos.count);
        pthread_mutex_lock(&h->lock);
        /* pinned names of this namespace, as they were looked up */
        snprintf(prefix, sizeof(prefix), "%s/", ns ? ns : "");
        for (struct fs_repo *r = h->pins; r; r = r->next) {
            char pname[HUB_ID_MAX + HUB_REV_MAX * 3];
            if (r->type != type ||
                strncmp(r->key_id, prefix, strlen(prefix)) != 0)
                continue;
            if (pin_name(r, pname, sizeof(pname)))
                remember_name(&repos, pname);
        }
        hub_tree_finish(&repos);
        add_names(req, b, &repos);
        hub_tree_release(&repos);
        free(ns);
        fs_node_unref(h, n);
        break;
    }
    case FS_DIR:
        fs_node_ref(h, n);
        rc = ensure_listing(h, n);
        if (rc == 0)
            add_names(req, b, &n->list);
        fs_node_unref(h, n);
        break;
    case FS_FILE:
        rc = -ENOTDIR;
        break;
    }
    pthread_mutex_unlock(&h->lock);
    if (rc < 0) {
        free(b->p);
        free(b);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)b;
    fi->cache_readdir = n->kind == FS_DIR;
    fi->keep_cache = n->kind == FS_DIR;
    b->link.is_dir = true;
    pthread_mutex_lock(&h->lock);
    open_add(h, &b->link);
    pthread_mutex_unlock(&h->lock);
    if (fuse_reply_open(req, fi) != 0) {
        pthread_mutex_lock(&h->lock);
        open_del(h, &b->link);
        pthread_mutex_unlock(&h->lock);
        free(b->p);
        free(b);
    }
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    struct dirbuf *b = (struct dirbuf *)(uintptr_t)fi->fh;
    (void)ino;
    if (off < 0 || (size_t)off >= b->size) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    /* the kernel takes the whole entries that fit and asks again from the
     * next entry's offset. The slice is copied: once the reply is written
     * the kernel may release the directory on another thread at once. */
    size_t n = b->size - (size_t)off;
    if (n > size)
        n = size;
    char *slice = malloc(n);
    if (!slice) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    memcpy(slice, b->p + off, n);
    fuse_reply_buf(req, slice, n);
    free(slice);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
    struct hfm *h = get_hfm(req);
    struct dirbuf *b = (struct dirbuf *)(uintptr_t)fi->fh;
    (void)ino;
    pthread_mutex_lock(&h->lock);
    open_del(h, &b->link);
    pthread_mutex_unlock(&h->lock);
    free(b->p);
    free(b);
    fuse_reply_err(req, 0);
}

/* ---- files ---------------------------------------------------------- */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct hfm *h = get_hfm(req);
    struct fs_handle *fh;
    struct fs_node *n;
    int rc = 0;

    if ((fi->flags & O_ACCMODE) != O_RDONLY ||
        (fi->flags & (O_TRUNC | O_APPEND | O_CREAT))) {
        fuse_reply_err(req, EROFS);
        return;
    }
    fh = calloc(1, sizeof(*fh));
    if (!fh) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_init(&fh->lock, NULL);
    cache_stream_init(&fh->stream);
    pthread_mutex_lock(&h->lock);
    n = fs_node_find(h, ino);
    if (!n)
        rc = -ESTALE;
    else if (n->kind != FS_FILE)
        rc = -EISDIR;
    else if (!n->cf) {
        const char *key = n->sha256[0] ? n->sha256 : n->oid;
        if (!key[0]) {
            hfm_log(HFM_LOG_ERR, "cannot open '%s' in '%s': the listing gave "
                    "no content id", n->path, n->repo->id);
            rc = -EIO;
        } else {
            rc = cache_file_new(h->cache, key, n->size, n->repo->type,
                                n->repo->id, n->repo->sha, n->path, &n->cf);
        }
    }
    if (rc == 0) {
        fs_node_ref(h, n);
        fh->node = n;
        open_add(h, &fh->link);
    }
    pthread_mutex_unlock(&h->lock);
    if (rc < 0) {
        pthread_mutex_destroy(&fh->lock);
        free(fh);
        fuse_reply_err(req, -rc);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)fh;
    fi->keep_cache = 1; /* commit-pinned content never changes */
    fi->noflush = 1;
    if (fuse_reply_open(req, fi) != 0) {
        pthread_mutex_lock(&h->lock);
        open_del(h, &fh->link);
        fs_node_unref(h, n);
        pthread_mutex_unlock(&h->lock);
        pthread_mutex_destroy(&fh->lock);
        free(fh);
    }
}

/* The bytes at [off, off+size): in place in the pinned chunk (*sp), or,
 * for a range across a chunk boundary (the kernel's aligned 1 MiB reads
 * never are), copied into *buf (caller frees). */
static ssize_t read_range(struct hfm *h, struct fs_node *n, uint64_t off,
                          size_t size, uint64_t ahead, struct cache_span *sp,
                          char **buf, struct hub_why *why)
{
    ssize_t got =
        cache_read_span(h->cache, n->cf, off, size, ahead, sp, why);

    if (got != -E2BIG)
        return got;
    *buf = malloc(size);
    if (!*buf)
        return -ENOMEM;
    return cache_read(h->cache, n->cf, off, size, ahead, *buf, why);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct hfm *h = get_hfm(req);
    struct fs_handle *fh = (struct fs_handle *)(uintptr_t)fi->fh;
    struct fs_node *n = fh->node;
    struct cache_span sp = {.pin = NULL};
    struct hub_why why;
    ssize_t got;
    uint64_t ahead;
    char *buf = NULL;
    (void)ino;

    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if ((uint64_t)off >= n->size || size == 0) {
        fuse_reply_buf(req, NULL, 0);
        return;
    }
    if (size > n->size - (uint64_t)off)
        size = (size_t)(n->size - (uint64_t)off);
    pthread_mutex_lock(&fh->lock);
    ahead = cache_advise(h->cache, n->cf, &fh->stream, (uint64_t)off, size);
    pthread_mutex_unlock(&fh->lock);
    hub_why_clear(&why);
    got = read_range(h, n, (uint64_t)off, size, ahead, &sp, &buf, &why);
    if (got < 0 && retry_with_new_token(h, (int)got, &why)) {
        free(buf);
        buf = NULL;
        hub_why_clear(&why);
        got = read_range(h, n, (uint64_t)off, size, ahead, &sp, &buf, &why);
    }
    if (got < 0) {
        int rc = hfm_report(h, n->repo->type, n->repo->id, NULL, n->path,
                            "read", (int)got, &why);
        cache_span_release(h->cache, &sp);
        free(buf);
        /* a listed file the Hub says is missing is an I/O error */
        fuse_reply_err(req, rc == -ENOENT ? EIO : -rc);
        return;
    }
    if (buf) {
        fuse_reply_buf(req, buf, (size_t)got);
        free(buf);
    } else {
        /* the bytes go from the pinned chunk to /dev/fuse in one writev,
         * with no copy of ours (libfuse sends a single memory buffer as
         * it is) */
        struct fuse_bufvec bv = FUSE_BUFVEC_INIT((size_t)got);
        bv.buf[0].mem = (void *)sp.ptr;
        fuse_reply_data(req, &bv, 0);
        cache_span_release(h->cache, &sp);
    }
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    struct hfm *h = get_hfm(req);
    struct fs_handle *fh = (struct fs_handle *)(uintptr_t)fi->fh;
    (void)ino;
    pthread_mutex_lock(&h->lock);
    open_del(h, &fh->link);
    fs_node_unref(h, fh->node);
    pthread_mutex_unlock(&h->lock);
    pthread_mutex_destroy(&fh->lock);
    free(fh);
    fuse_reply_err(req, 0);
}

/* ---- xattrs --------------------------------------------------------- */

static int xattr_value(const struct fs_node *n, const char *name, char *out,
                       size_t cap)
{
    if (!node_in_repo(n) || !n->repo)
        return -ENODATA;
    if (strcmp(name, XATTR_COMMIT) == 0)
        return snprintf(out, cap, "%s", n->repo->sha);
    if (n->kind != FS_FILE)
        return -ENODATA;
    if (strcmp(name, XATTR_OID) == 0)
        return snprintf(out, cap, "%s", n->sha256[0] ? n->sha256 : n->oid);
    if (strcmp(name, XATTR_SIZE) == 0)
        return snprintf(out, cap, "%" PRIu64, n->size);
    return -ENODATA;
}

int hfm_stats_json(struct hfm *h, char *out, size_t cap)
{
    struct hub_stats hs;
    struct cache_stats cs;
    uint64_t nodes, peak;

    memset(&hs, 0, sizeof(hs));
    if (h->hub)
        hub_get_stats(h->hub, &hs);
    cache_get_stats(h->cache, &cs);
    pthread_mutex_lock(&h->lock);
    nodes = h->nodes;
    peak = h->nodes_peak;
    pthread_mutex_unlock(&h->lock);
    return snprintf(
        out, cap,
        "{\"requests\":%" PRIu64 ",\"bytes_fetched\":%" PRIu64
        ",\"retries\":%" PRIu64 ",\"errors\":%" PRIu64
        ",\"chunk_hits_memory\":%" PRIu64 ",\"chunk_hits_disk\":%" PRIu64
        ",\"chunk_misses\":%" PRIu64 ",\"chunks_read_ahead\":%" PRIu64
        ",\"chunks_corrupt\":%" PRIu64 ",\"chunks_evicted\":%" PRIu64
        ",\"cache_write_errors\":%" PRIu64 ",\"cache_bytes\":%" PRIu64
        ",\"cache_chunks\":%" PRIu64 ",\"cache_limit\":%" PRIu64
        ",\"cache_processes\":%d,\"chunks_stored\":%" PRIu64
        ",\"chunks_from_other_processes\":%" PRIu64
        ",\"files_checked\":%" PRIu64
        ",\"inodes\":%" PRIu64 ",\"inodes_peak\":%" PRIu64
        ",\"offline\":%s,\"uptime_s\":%lld}",
        hs.requests, hs.bytes, hs.retries, hs.errors, cs.hits_mem,
        cs.hits_disk, cs.misses, cs.readahead, cs.corrupt, cs.evicted,
        cs.write_errors, cs.disk_bytes, cs.disk_chunks, h->cfg->cache_size,
        cs.processes, cs.stored, cs.from_peers, cs.files_checked, nodes, peak, h->hub && hub_is_offline(h->hub) ? "true" : "false",
        (long long)(time(NULL) - h->start_time));
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        size_t size)
{
    struct hfm *h = get_hfm(req);
    char val[STATS_MAX];
    int len;

    if (ino == FS_ROOT_INO && strcmp(name, XATTR_STATS) == 0) {
        len = hfm_stats_json(h, val, sizeof(val));
        if (len >= (int)sizeof(val))
            len = -ERANGE;
    } else {
        pthread_mutex_lock(&h->lock);
        struct fs_node *n = fs_node_find(h, ino);
        len = n ? xattr_value(n, name, val, sizeof(val)) : -ESTALE;
        pthread_mutex_unlock(&h->lock);
    }
    if (len < 0)
        fuse_reply_err(req, -len);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)len);
    else if ((size_t)len > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, val, (size_t)len);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct hfm *h = get_hfm(req);
    char list[128];
    size_t len = 0;

    if (ino == FS_ROOT_INO) {
        memcpy(list, XATTR_STATS, sizeof(XATTR_STATS));
        len = sizeof(XATTR_STATS);
    }
    pthread_mutex_lock(&h->lock);
    struct fs_node *n = fs_node_find(h, ino);
    if (n && node_in_repo(n)) {
        memcpy(list + len, XATTR_COMMIT, sizeof(XATTR_COMMIT));
        len += sizeof(XATTR_COMMIT);
        if (n->kind == FS_FILE) {
            memcpy(list + len, XATTR_OID, sizeof(XATTR_OID));
            len += sizeof(XATTR_OID);
            memcpy(list + len, XATTR_SIZE, sizeof(XATTR_SIZE));
            len += sizeof(XATTR_SIZE);
        }
    }
    pthread_mutex_unlock(&h->lock);
    if (!n)
        fuse_reply_err(req, ESTALE);
    else if (size == 0)
        fuse_reply_xattr(req, len);
    else if (len > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, list, len);
}

/* ---- read-only: every change is EROFS -------------------------------- */

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
    (void)ino;
    (void)attr;
    (void)to_set;
    (void)fi;
    fuse_reply_err(req, EROFS);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev)
{
    (void)parent;
    (void)name;
    (void)mode;
    (void)rdev;
    fuse_reply_err(req, EROFS);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode)
{
    (void)parent;
    (void)name;
    (void)mode;
    fuse_reply_err(req, EROFS);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    (void)parent;
    (void)name;
    fuse_reply_err(req, EROFS);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name)
{
    (void)link;
    (void)parent;
    (void)name;
    fuse_reply_err(req, EROFS);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags)
{
    (void)parent;
    (void)name;
    (void)newparent;
    (void)newname;
    (void)flags;
    fuse_reply_err(req, EROFS);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname)
{
    (void)ino;
    (void)newparent;
    (void)newname;
    fuse_reply_err(req, EROFS);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
    (void)parent;
    (void)name;
    (void)mode;
    (void)fi;
    fuse_reply_err(req, EROFS);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
    (void)ino;
    (void)buf;
    (void)size;
    (void)off;
    (void)fi;
    fuse_reply_err(req, EROFS);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        const char *value, size_t size, int flags)
{
    (void)ino;
    (void)name;
    (void)value;
    (void)size;
    (void)flags;
    fuse_reply_err(req, EROFS);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    (void)ino;
    (void)name;
    fuse_reply_err(req, EROFS);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode,
                         off_t offset, off_t length, struct fuse_file_info *fi)
{
    (void)ino;
    (void)mode;
    (void)offset;
    (void)length;
    (void)fi;
    fuse_reply_err(req, EROFS);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct hfm *h = get_hfm(req);
    struct statvfs sv;
    (void)ino;

    memset(&sv, 0, sizeof(sv));
    sv.f_bsize = 4096;
    sv.f_frsize = 4096;
    sv.f_blocks = h->cfg->cache_size / 4096;
    sv.f_namemax = HUB_NAME_MAX;
    sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
    pthread_mutex_lock(&h->lock);
    sv.f_files = h->nodes;
    pthread_mutex_unlock(&h->lock);
    fuse_reply_statfs(req, &sv);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    if (conn->capable & FUSE_CAP_ASYNC_READ)
        conn->want |= FUSE_CAP_ASYNC_READ;
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    /* commit-pinned content never changes: never drop cached pages on
     * attribute refresh (FUSE_CAP_AUTO_INVAL_DATA off) */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
        conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    conn->max_readahead = conn->max_readahead ? conn->max_readahead
                                              : UINT32_MAX;
    /* The kernel's readahead reads are background requests, 12 in flight
     * by default: a stalled CDN read would hold them all and queue every
     * other file's reads behind it. */
    conn->max_background = FS_MAX_BACKGROUND;
    conn->congestion_threshold = FS_MAX_BACKGROUND * 3 / 4;
}

/* After the loop: handles the kernel never released (unmount by signal).
 * A file handle's node goes with the table; a dir buffer is freed here. */
void hfm_free_open_handles(struct hfm *h)
{
    struct fs_open *o = h->open_handles;
    while (o) {
        struct fs_open *next = o->next;
        if (o->is_dir) {
            free(((struct dirbuf *)o)->p);
        } else {
            pthread_mutex_destroy(&((struct fs_handle *)o)->lock);
        }
        free(o); /* the link is each kind's first member */
        o = next;
    }
    h->open_handles = NULL;
}

const struct fuse_lowlevel_ops hfm_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_unlink,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .release = op_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .setxattr = op_setxattr,
    .getxattr = op_getxattr,
    .listxattr = op_listxattr,
    .removexattr = op_removexattr,
    .create = op_create,
    .fallocate = op_fallocate,
};

/*
 * inode.c - the inode table: numbers, the (parent, name) index and the
 * lookup-count rules of fs/inode.h.
 *
 * Inode numbers count up from FS_ROOT_INO and are never reused within a
 * mount (64 bits do not wrap), so a stale number from the kernel can only
 * miss, never hit another node.
 */
#include "fs/inode.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "cache/cache.h"
#include "fs/hfm.h"

static size_t ino_bucket(uint64_t ino)
{
    return (size_t)(ino % HFM_INO_BUCKETS);
}

static size_t name_bucket(uint64_t parent, const char *name)
{
    return (size_t)(XXH3_64bits_withSeed(name, strlen(name), parent) %
                    HFM_NAME_BUCKETS);
}

struct fs_node *fs_node_new(struct hfm *h, struct fs_node *parent,
                            const char *name, enum fs_kind kind)
{
    struct fs_node *n = calloc(1, sizeof(*n));
    size_t b;

    if (!n)
        return NULL;
    n->name = strdup(name);
    if (!n->name) {
        free(n);
        return NULL;
    }
    n->kind = kind;
    n->ino = parent ? h->next_ino++ : FS_ROOT_INO;
    hub_tree_init(&n->list);
    n->parent = parent;
    if (parent) {
        parent->refs++; /* rule 3 */
        b = name_bucket(parent->ino, name);
        n->name_next = h->by_name[b];
        h->by_name[b] = n;
    }
    b = ino_bucket(n->ino);
    n->ino_next = h->by_ino[b];
    h->by_ino[b] = n;
    h->nodes++;
    if (h->nodes > h->nodes_peak)
        h->nodes_peak = h->nodes;
    return n;
}

struct fs_node *fs_node_find(struct hfm *h, uint64_t ino)
{
    struct fs_node *n = h->by_ino[ino_bucket(ino)];
    while (n && n->ino != ino)
        n = n->ino_next;
    return n;
}

struct fs_node *fs_node_child(struct hfm *h, struct fs_node *parent,
                              const char *name)
{
    struct fs_node *n = h->by_name[name_bucket(parent->ino, name)];
    while (n && (n->parent != parent || strcmp(n->name, name) != 0))
        n = n->name_next;
    return n; /* rule 4: at most one */
}

void fs_node_lookup(struct hfm *h, struct fs_node *node)
{
    (void)h;
    node->nlookup++;
}

void fs_repo_unref(struct hfm *h, struct fs_repo *repo)
{
    (void)h;
    if (repo && --repo->refs == 0)
        free(repo);
}

static void unlink_node(struct hfm *h, struct fs_node *n)
{
    struct fs_node **pp = &h->by_ino[ino_bucket(n->ino)];
    while (*pp && *pp != n)
        pp = &(*pp)->ino_next;
    if (*pp)
        *pp = n->ino_next;
    if (n->parent) {
        pp = &h->by_name[name_bucket(n->parent->ino, n->name)];
        while (*pp && *pp != n)
            pp = &(*pp)->name_next;
        if (*pp)
            *pp = n->name_next;
    }
    h->nodes--;
}

static void destroy_node(struct hfm *h, struct fs_node *n)
{
    hub_tree_release(&n->list);
    if (n->cf)
        cache_file_put(n->cf);
    fs_repo_unref(h, n->repo);
    free(n->name);
    free(n->ns);
    free(n->path);
    free(n);
}

/* Rule 2, then rule 3 up the chain without recursion. */
static void maybe_free(struct hfm *h, struct fs_node *n)
{
    while (n && n != h->root && n->nlookup == 0 && n->refs == 0) {
        struct fs_node *parent = n->parent;
        unlink_node(h, n);
        destroy_node(h, n);
        if (!parent)
            break;
        assert(parent->refs > 0);
        parent->refs--;
        n = parent;
    }
}

void fs_node_forget(struct hfm *h, struct fs_node *node, uint64_t n)
{
    assert(node->nlookup >= n);
    node->nlookup = node->nlookup >= n ? node->nlookup - n : 0;
    maybe_free(h, node);
}

void fs_node_ref(struct hfm *h, struct fs_node *node)
{
    (void)h;
    node->refs++;
}

void fs_node_unref(struct hfm *h, struct fs_node *node)
{
    assert(node->refs > 0);
    node->refs--;
    maybe_free(h, node);
}

void fs_table_clear(struct hfm *h)
{
    for (size_t b = 0; b < HFM_INO_BUCKETS; b++) {
        struct fs_node *n = h->by_ino[b];
        while (n) {
            struct fs_node *next = n->ino_next;
            destroy_node(h, n);
            n = next;
        }
        h->by_ino[b] = NULL;
    }
    memset(h->by_name, 0, sizeof(h->by_name));
    h->root = NULL;
    h->nodes = 0;
}

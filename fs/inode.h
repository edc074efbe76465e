/*
 * inode.h - the inode table: our own inode numbers for the low-level FUSE
 * API, one node per looked-up name.
 *
 * Kinds and their children:
 *   ROOT (whole-Hub mode)  "datasets", "spaces" -> TYPEDIR; NS -> NS (models)
 *   TYPEDIR                NS -> NS (datasets or spaces)
 *   NS                     "name" or "name@REV" -> DIR (a repo root)
 *   DIR                    tree entries -> DIR or FILE
 * In single-repo mode the root is the repo's DIR.
 *
 * Lookup-count rules (as fuse_lowlevel.h states them):
 *  1. Every successful entry reply (lookup) adds one to the node's
 *     nlookup; forget(n) takes n away. The root is never forgotten.
 *  2. A node is freed when nlookup == 0 and refs == 0; refs counts
 *     children that point at it and open handles.
 *  3. A child holds one ref on its parent for its whole life, so a
 *     parent outlives its children whatever order forgets come in.
 *  4. (parent ino, name) finds at most one live node, so a name keeps its
 *     inode number while the kernel knows it.
 * hfm_node_* functions check these with assert() in debug builds.
 *
 * Ownership: nodes belong to the table; a struct fs_repo is shared by the
 * nodes of one pinned repo view and by the pin map (refcounted).
 * Threads: all table state is protected by hfm->lock (see fs/hfm.h).
 */
#ifndef HFM_FS_INODE_H
#define HFM_FS_INODE_H

#include <stdbool.h>
#include <stdint.h>

#include "net/hub_parse.h"

#define FS_ROOT_INO 1

enum fs_kind {
    FS_ROOT,
    FS_TYPEDIR,
    FS_NS,
    FS_DIR,
    FS_FILE,
};

enum fs_list_state {
    FS_LIST_NONE,
    FS_LIST_LOADING,
    FS_LIST_READY,
};

/* One pinned repo view: (type, id, rev as written) -> commit. */
struct fs_repo {
    enum hub_repo_type type;
    char id[HUB_ID_MAX];     /* canonical: what requests use */
    char key_id[HUB_ID_MAX]; /* as looked up: what the pin map matches */
    char rev[HUB_REV_MAX]; /* as written ("" = default branch) */
    char sha[41];
    int64_t mtime;
    int refs;              /* protected by hfm->lock */
    struct fs_repo *next;  /* pin map chain */
};

struct cache_file;

struct fs_node {
    uint64_t ino;
    enum fs_kind kind;
    struct fs_node *parent;
    char *name;
    uint64_t nlookup; /* protected by hfm->lock */
    int refs;         /* protected by hfm->lock */

    enum hub_repo_type type; /* TYPEDIR, NS */
    char *ns;                /* NS */

    struct fs_repo *repo; /* DIR, FILE: one ref */
    char *path;           /* DIR, FILE: path in the repo, "" for its root */

    uint64_t size;     /* FILE */
    char oid[65];      /* FILE: git blob sha1 (or tree id for DIR) */
    char sha256[65];   /* FILE: LFS sha256, "" if none */
    struct cache_file *cf; /* FILE: protected by hfm->lock */

    enum fs_list_state list_state; /* DIR, NS: protected by hfm->lock */
    struct hub_tree list;          /* DIR, NS: READY: protected by hfm->lock */

    struct fs_node *ino_next;  /* ino hash chain */
    struct fs_node *name_next; /* (parent, name) hash chain */
};

#endif /* HFM_FS_INODE_H */

/* ---- the table (fs/inode.c); every call holds hfm->lock ------------- */

struct hfm;

/* New node under parent (NULL for the root) with one ref on the parent
 * (rule 3), nlookup 0. NULL on OOM. */
struct fs_node *fs_node_new(struct hfm *h, struct fs_node *parent,
                            const char *name, enum fs_kind kind);
struct fs_node *fs_node_find(struct hfm *h, uint64_t ino);
struct fs_node *fs_node_child(struct hfm *h, struct fs_node *parent,
                              const char *name);
/* Rule 1: an entry reply is about to be sent for node. */
void fs_node_lookup(struct hfm *h, struct fs_node *node);
/* Rule 1: forget(n). May free node and, through rule 3, its parents. */
void fs_node_forget(struct hfm *h, struct fs_node *node, uint64_t n);
void fs_node_ref(struct hfm *h, struct fs_node *node);
void fs_node_unref(struct hfm *h, struct fs_node *node);
/* Frees every node (unmount). */
void fs_table_clear(struct hfm *h);

void fs_repo_unref(struct hfm *h, struct fs_repo *repo);

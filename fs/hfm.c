/*
 * hfm.c - struct hfm's life cycle: the root node of either layout.
 */
#include "fs/hfm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/inode.h"

int hfm_init(struct hfm *h, struct hfm_config *cfg)
{
    memset(h, 0, sizeof(*h));
    h->cfg = cfg;
    h->uid = getuid();
    h->gid = getgid();
    h->start_time = time(NULL);
    h->next_ino = FS_ROOT_INO + 1;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->cond, NULL);
    pthread_mutex_init(&h->log_lock, NULL);
    pthread_mutex_init(&h->auth_lock, NULL);
    for (int i = 0; i < 3; i++)
        hub_tree_init(&h->known_ns[i]);
    h->root = fs_node_new(h, NULL, "", FS_ROOT);
    if (!h->root)
        return -ENOMEM;
    h->root->nlookup = 1; /* the kernel's, never forgotten */
    return 0;
}

int hfm_set_repo_root(struct hfm *h, enum hub_repo_type type, const char *id,
                      const char *rev, const struct hub_info *info)
{
    struct fs_repo *r = calloc(1, sizeof(*r));
    struct fs_node *root = h->root;

    if (!r)
        return -ENOMEM;
    root->path = strdup("");
    if (!root->path) {
        free(r);
        return -ENOMEM;
    }
    r->type = type;
    snprintf(r->id, sizeof(r->id), "%s", info->id[0] ? info->id : id);
    snprintf(r->key_id, sizeof(r->key_id), "%s", id);
    snprintf(r->rev, sizeof(r->rev), "%s", rev);
    snprintf(r->sha, sizeof(r->sha), "%s", info->sha);
    r->mtime = info->mtime;
    r->refs = 1; /* the root's */
    root->kind = FS_DIR;
    root->repo = r;
    snprintf(root->oid, sizeof(root->oid), "%s", r->sha);
    return 0;
}

void hfm_release(struct hfm *h)
{
    struct fs_repo *r = h->pins;
    hfm_free_open_handles(h);
    fs_table_clear(h);
    while (r) {
        struct fs_repo *next = r->next;
        fs_repo_unref(h, r);
        r = next;
    }
    for (int i = 0; i < 3; i++)
        hub_tree_release(&h->known_ns[i]);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->cond);
    pthread_mutex_destroy(&h->log_lock);
    pthread_mutex_destroy(&h->auth_lock);
}

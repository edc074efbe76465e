/*
 * hfm.h - struct hfm: everything one mount owns, reached from FUSE
 * callbacks through fuse_req_userdata(). No globals.
 *
 * Lock order (take left before right, never the reverse):
 *   hfm->lock  ->  cache locks (cache/)  ->  hub locks (net/)
 * hfm->lock protects the inode table, node counts and listings, the pin
 * map and the known-names sets; it is never held across a Hub request, a
 * disk read or a wait other than pthread_cond_wait on hfm->cond.
 * hfm->log_lock protects the once-per-cause log memory; hfm->auth_lock the
 * token hash and the whoami answer. Neither is held with another lock.
 */
#ifndef HFM_FS_HFM_H
#define HFM_FS_HFM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "fs/config.h"
#include "fs/inode.h"
#include "net/hub_parse.h"

#define HFM_INO_BUCKETS 65536
#define HFM_NAME_BUCKETS 65536
#define HFM_CONTENT_TIMEOUT_S 86400.0 /* commit-pinned: never changes */
#define HFM_VIRTUAL_TIMEOUT_S 1.0     /* root, datasets/, NS/ listings */
#define HFM_LOG_REPEAT_S 300          /* one line per (repo, cause) per 5 min */
#define HFM_LOG_MEMORY 64
#define HFM_TOKEN_RECHECK_S 2 /* re-read the token at most this often */

struct hub;
struct cache;
struct fs_open;

struct hfm_logged {
    char key[HUB_ID_MAX + HUB_WHY_LINE_MAX + 32];
    time_t when;
};

struct hfm {
    struct hfm_config *cfg;
    struct hub *hub;
    struct cache *cache;
    uid_t uid;
    gid_t gid;
    time_t start_time;

    pthread_mutex_t lock;
    pthread_cond_t cond; /* a listing finished loading */
    uint64_t next_ino;                          /* protected by lock */
    struct fs_node *root;
    struct fs_node *by_ino[HFM_INO_BUCKETS];    /* protected by lock */
    struct fs_node *by_name[HFM_NAME_BUCKETS];  /* protected by lock */
    uint64_t nodes;                             /* protected by lock */
    uint64_t nodes_peak;                        /* protected by lock */
    struct fs_repo *pins;                       /* protected by lock */
    struct hub_tree known_ns[3]; /* names looked up, per repo type; lock */
    struct fs_open *open_handles; /* protected by lock (fs/ops.c) */

    pthread_mutex_t log_lock;
    struct hfm_logged logged[HFM_LOG_MEMORY]; /* protected by log_lock */

    pthread_mutex_t auth_lock;
    time_t token_checked;   /* protected by auth_lock */
    uint64_t token_hash;    /* of the token in use, 0 none; auth_lock */
    bool who_valid, who_ok; /* protected by auth_lock */
    uint64_t who_hash;      /* token hash who belongs to; auth_lock */
    struct hub_whoami who;  /* protected by auth_lock */
};

/* fs/ops.c */
struct fuse_lowlevel_ops;
extern const struct fuse_lowlevel_ops hfm_ops;

int hfm_init(struct hfm *h, struct hfm_config *cfg) HFM_MUST_CHECK;
/* Single-repo mode: the root is that repo's view, pinned to info->sha. */
int hfm_set_repo_root(struct hfm *h, enum hub_repo_type type, const char *id,
                      const char *rev, const struct hub_info *info)
    HFM_MUST_CHECK;
/* Revision -> commit through the metadata store and the Hub (fs/ops.c). */
int hfm_resolve_repo(struct hfm *h, enum hub_repo_type type, const char *id,
                     const char *rev, struct hub_info *info,
                     struct hub_why *why) HFM_MUST_CHECK;
/* Counters since mount as one JSON object (the root's user.hf.stats). */
int hfm_stats_json(struct hfm *h, char *out, size_t cap);
/* Frees file and directory handles the kernel never released. */
void hfm_free_open_handles(struct hfm *h);
void hfm_release(struct hfm *h);

#endif /* HFM_FS_HFM_H */

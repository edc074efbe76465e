/*
 * auth.h - turning a failed Hub answer into the reader's errno and one log
 * line that names the cause (no token, token rejected, gate not granted or
 * pending, fine-grained scope missing, disabled repo, org policy).
 *
 * Ownership: nothing is kept but the once-per-cause memory in struct hfm
 * and a cached whoami answer.
 * Threads: thread-safe; may call the Hub (whoami) without locks held.
 */
#ifndef HFM_FS_AUTH_H
#define HFM_FS_AUTH_H

#include "net/hub_err.h"

struct hfm;

/* The errno a reader sees for err (hub_err_to_errno). */
int hfm_auth_errno(struct hfm *h, enum hub_err err);

/* Logs one line for a failed VERB ("read", "list", "look up") of path (may
 * be NULL) in repo, at most once per (repo, cause) per HFM_LOG_REPEAT_S;
 * rc is the -errno returned to the reader. */
void hfm_report(struct hfm *h, const char *repo, const char *path,
                const char *verb, int rc, const struct hub_why *why);

#endif /* HFM_FS_AUTH_H */

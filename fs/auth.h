/*
 * auth.h - turning a failed Hub answer into the reader's errno and one log
 * line that names the cause (no token, token rejected, gate not granted or
 * pending, fine-grained permission missing, disabled repo, org policy),
 * and picking up a changed token without a remount.
 *
 * Ownership: nothing is kept but the once-per-cause memory, the current
 * token's hash and a cached whoami answer, all in struct hfm.
 * Threads: thread-safe; may call the Hub (whoami) with no lock held.
 */
#ifndef HFM_FS_AUTH_H
#define HFM_FS_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "net/hub_err.h"
#include "net/hub_parse.h"

struct hfm;

/* The errno a reader sees for err (hub_err_to_errno). */
int hfm_auth_errno(struct hfm *h, enum hub_err err);

/* The cause of a failure in plain words with the fix, into out (""
 * when there is nothing to add); returns the errno the reader gets (rc,
 * or -EACCES / -ENOENT as the cause dictates); *key names the cause. */
int hfm_auth_cause(struct hfm *h, enum hub_repo_type type, const char *repo,
                   int rc,
                   const struct hub_why *why, char *out, size_t cap,
                   const char **key);

/* Logs one line for a failed VERB ("read", "list", "look up") of path (may
 * be NULL) in repo (of type: named "datasets/ns/name" for a dataset), at most once per (repo, cause) per HFM_LOG_REPEAT_S,
 * naming the HTTP status, X-Error-Code and the cause. Returns the errno
 * for the reader (see hfm_auth_cause). */
int hfm_report(struct hfm *h, enum hub_repo_type type, const char *repo,
               const char *rev, const char *path, const char *verb, int rc,
               const struct hub_why *why);

/* No token, and the Hub lists no repo of that type by ns: it may only
 * hide private ones. Logs the no-token line once per namespace. */
void hfm_report_hidden(struct hfm *h, enum hub_repo_type type, const char *ns);

/* The Hub lists more repos of type by ns than a namespace listing holds
 * (HUB_NS_LIST_MAX): one warning per namespace per few minutes. */
void hfm_report_truncated(struct hfm *h, enum hub_repo_type type,
                          const char *ns, size_t listed);

/* Re-reads the token (at most every HFM_TOKEN_RECHECK_S); true if it
 * changed and the Hub client now uses the new one. */
bool hfm_auth_refresh_token(struct hfm *h);
/* Records the token the mount started with. */
void hfm_auth_set_token_hash(struct hfm *h, const char *token);

#endif /* HFM_FS_AUTH_H */

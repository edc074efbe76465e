/*
 * hub.h - the Hub client: one struct hub per mount, revision -> commit,
 * paginated tree listing, whoami, namespace listing, and range reads of a
 * file's bytes (resolve, redirect to the CDN, Range).
 *
 * DESIGN: one network thread owns a CURLM multi handle and every transfer
 * (so connections are reused across requests and many range requests run
 * in parallel on keep-alive connections). Callers queue a request and
 * either block on it (API calls: hub_revision(), hub_tree_list(), ...) or
 * get a completion callback (hub_file_read_start(), used by cache/ for
 * readahead). Redirects are followed by the network thread itself, never by
 * libcurl: a relative Location stays on the same origin, and the token is
 * attached only when a URL's origin (scheme, host, port) is HF_ENDPOINT's.
 * Each attempt goes direct or through the proxy cfg names for its scheme
 * (libcurl never reads the environment); one carrying the token goes
 * through a proxy over https only (a CONNECT tunnel), else HUB_E_DENIED.
 * Retries (408, 429, 5xx, resets, truncation, stalls) are scheduled on the
 * network thread with capped exponential backoff and jitter; a 429 waits
 * the RateLimit header's t (capped). Every transfer has a connect timeout
 * and a low-speed (stall) timeout; API transfers also a total timeout.
 *
 * Ownership: struct hub is from hub_new(), freed by hub_free() after every
 * request has completed. struct hub_file is from hub_file_new(), freed by
 * hub_file_free() when no read on it is in flight. Strings passed in are
 * copied. Outputs are caller storage (see hub_parse.h for hub_tree).
 *
 * Threads: every function is thread-safe. Completion callbacks run on the
 * network thread: they must not block (no disk I/O, no waiting) and must
 * not call back into hub_ functions that block.
 *
 * Errors: enum hub_err with a struct hub_why (may be NULL) describing the
 * final answer: status, X-Error-Code, X-Error-Message, request id.
 *
 * Limits: HUB_JSON_MAX_BYTES per page, HUB_TREE_MAX_PAGES pages,
 * HUB_MAX_REDIRECTS hops, cfg->max_tries tries.
 */
#ifndef HFM_NET_HUB_H
#define HFM_NET_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/hub_err.h"
#include "net/hub_parse.h"

#define HUB_DEFAULT_ENDPOINT "https://huggingface.co"
#define HUB_URL_MAX 8192
#define HUB_MAX_REDIRECTS 10
#define HUB_TREE_MAX_PAGES 1000
#define HUB_TREE_PAGE_LIMIT 1000
/* A namespace listing (ls MNT/NS) stops after this many repos: an org
 * with tens of thousands of repos must not cost a request per thousand
 * on every ls. Repos past it are still reachable by name. */
#define HUB_NS_LIST_MAX 10000
#define HUB_DEFAULT_TRIES 5
#define HUB_DEFAULT_TIMEOUT_S 30
#define HUB_DEFAULT_CONNS 16
#define HUB_BACKOFF_BASE_MS 250
#define HUB_BACKOFF_MAX_MS 8000
#define HUB_RATELIMIT_WAIT_MAX_S 60
#define HUB_API_TOTAL_TIMEOUT_FACTOR 4 /* API total timeout = factor * timeout */

struct hub_config {
    const char *endpoint; /* NULL: HUB_DEFAULT_ENDPOINT; trailing '/' stripped */
    const char *token;    /* NULL or "": no token */
    bool offline;         /* no request at all: HUB_E_OFFLINE */
    int max_tries;        /* 0: HUB_DEFAULT_TRIES */
    int timeout_s;        /* connect and stall timeout; 0: HUB_DEFAULT_TIMEOUT_S */
    int max_conns;        /* parallel transfers per host; 0: HUB_DEFAULT_CONNS */
    /* Proxies, as fs/config.c read libcurl's variables at start; NULL or
     * "": none. A *_var names the variable its proxy came from (for the
     * message refusing to send the token through it in the clear). */
    const char *http_proxy;  /* http:// URLs */
    const char *http_proxy_var;
    const char *https_proxy; /* https:// URLs */
    const char *https_proxy_var;
    const char *all_proxy;   /* either, when the one above is unset */
    const char *all_proxy_var;
    const char *no_proxy;    /* hosts reached directly: hub_no_proxy_match() */
};

struct hub_stats {
    uint64_t requests;      /* HTTP requests sent (each hop and try) */
    uint64_t bytes;         /* body bytes received */
    uint64_t retries;
    uint64_t errors;        /* requests that ended in an error */
};

struct hub;
struct hub_file;

/* curl_global_init() must have run (hub_global_init()) before threads. */
HFM_MUST_CHECK enum hub_err hub_global_init(void);
void hub_global_cleanup(void);

HFM_MUST_CHECK enum hub_err hub_new(const struct hub_config *cfg,
                                    struct hub **out);
/* Fails every request queued, waiting or on the wire, and every later one,
 * promptly (unmount must not wait for a stalled transfer). Non-blocking. */
void hub_shutdown(struct hub *hub);
void hub_free(struct hub *hub);

/* Replaces the token (NULL or "" clears it). Takes effect for requests
 * started afterwards. */
HFM_MUST_CHECK enum hub_err hub_set_token(struct hub *hub, const char *token);
bool hub_has_token(struct hub *hub);
bool hub_is_offline(const struct hub *hub);
const char *hub_endpoint(const struct hub *hub);
void hub_get_stats(struct hub *hub, struct hub_stats *out);

/* GET /api/{type}s/{id} (rev NULL or "") or .../revision/{rev}: the commit
 * the revision points at now, its date, the canonical id. */
HFM_MUST_CHECK enum hub_err hub_revision(struct hub *hub,
                                         enum hub_repo_type type,
                                         const char *id, const char *rev,
                                         struct hub_info *out,
                                         struct hub_why *why);

/* One directory (dir "" = root) at commit sha, every page, checked and
 * sorted (hub_parse_tree_page, hub_tree_finish). out from hub_tree_init(). */
HFM_MUST_CHECK enum hub_err hub_tree_list(struct hub *hub,
                                          enum hub_repo_type type,
                                          const char *id, const char *sha,
                                          const char *dir, struct hub_tree *out,
                                          struct hub_why *why);

/* GET /api/whoami-v2 with the current token. */
HFM_MUST_CHECK enum hub_err hub_whoami(struct hub *hub, struct hub_whoami *out,
                                       struct hub_why *why);

/* Repos of one author: GET /api/{type}s?author=ns, page by page, as
 * directory entries named after the repo name. Stops after HUB_NS_LIST_MAX
 * repos with out->truncated set (and HUB_OK) if the Hub has more. */
HFM_MUST_CHECK enum hub_err hub_list_repos(struct hub *hub,
                                           enum hub_repo_type type,
                                           const char *ns, struct hub_tree *out,
                                           struct hub_why *why);

/* Whether an author (user or org) has any repo of this type visible to the
 * token: GET /api/{type}s?author=ns&limit=1. */
HFM_MUST_CHECK enum hub_err hub_repos_exist(struct hub *hub,
                                            enum hub_repo_type type,
                                            const char *ns, bool *exists,
                                            struct hub_why *why);

/* A file to read ranges of: /{prefix}{id}/resolve/{sha}/{path}. size is the
 * listed size; every answer must agree with it. */
HFM_MUST_CHECK enum hub_err hub_file_new(struct hub *hub,
                                         enum hub_repo_type type,
                                         const char *id, const char *sha,
                                         const char *path, uint64_t size,
                                         struct hub_file **out);
void hub_file_free(struct hub_file *f);

/* Called once on the network thread when a read completes. why is valid
 * during the call only. */
typedef void (*hub_read_done_fn)(void *arg, enum hub_err err,
                                 const struct hub_why *why);

/*
 * Reads [off, off + len) of f into buf (which must stay valid until done
 * runs) without blocking: the first read of a file follows the resolve
 * redirects and remembers where they ended (the CDN's signed URL, never
 * persisted); later reads go straight there. A 403/410 from a non-Hub
 * origin (expired signature) drops that URL and resolves again, once.
 * The answer must be 206 with a Content-Range of exactly the range and the
 * listed total, or a 200 of the whole file (then only the range is kept).
 * On HUB_OK returned here, done runs exactly once; on an error returned
 * here, it never runs.
 */
HFM_MUST_CHECK enum hub_err hub_file_read_start(struct hub *hub,
                                                struct hub_file *f,
                                                uint64_t off, size_t len,
                                                char *buf, hub_read_done_fn done,
                                                void *arg);
/* Blocking form of hub_file_read_start(). */
HFM_MUST_CHECK enum hub_err hub_file_read(struct hub *hub, struct hub_file *f,
                                          uint64_t off, size_t len, char *buf,
                                          struct hub_why *why);

#endif /* HFM_NET_HUB_H */

/*
 * hub_internal.h - what net/'s own files share: struct hub, the request
 * object the network thread runs, and URL helpers. Not for cache/ or fs/.
 *
 * Ownership: a struct hub_req is the submitter's; it must stay valid until
 * its done callback has run (hub_req_run() blocks until then).
 * Threads: fields under "engine" belong to the network thread while the
 * request is in flight; the submitter reads outputs only after done ran.
 */
#ifndef HFM_NET_HUB_INTERNAL_H
#define HFM_NET_HUB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>

#include "net/hub.h"

#define HUB_ERRBODY_MAX 4096
#define HUB_HDR_SMALL 256
#define HUB_BUFFERSIZE (512 * 1024)

enum hub_req_kind {
    HUB_REQ_API,   /* body into memory, capped at max_body */
    HUB_REQ_RANGE, /* exactly len bytes of file into dst */
};

struct hub_req;
typedef void (*hub_req_done_fn)(struct hub_req *req);

struct hub_resp_hdrs {
    int status;
    int64_t content_length; /* -1 if absent */
    char location[HUB_URL_MAX];
    char link[HUB_URL_MAX];
    char content_range[HUB_HDR_SMALL];
    char error_code[HUB_WHY_CODE_MAX];
    char error_message[HUB_WHY_MSG_MAX];
    char request_id[HUB_WHY_REQID_MAX];
    char ratelimit[HUB_HDR_SMALL];
    char retry_after[64];
};

struct hub_req {
    /* in */
    enum hub_req_kind kind;
    char url[HUB_URL_MAX];
    size_t max_body;
    struct hub_file *file;
    uint64_t off;
    size_t len;
    char *dst;
    hub_req_done_fn done;
    void *arg;

    /* out, valid once done ran */
    enum hub_err err;
    struct hub_why why;
    struct hub_resp_hdrs hdrs; /* of the final answer */
    char *body;                /* API: malloc'd, NUL terminated */
    size_t body_len;

    /* engine */
    struct hub *hub;
    struct hub_req *next;
    struct hub_req *aprev, *anext; /* hub->active while on the wire */
    CURL *easy;
    struct curl_slist *headers;
    int tries;
    int hops;
    bool had_token;
    bool using_cached_url;
    bool re_resolved;
    bool resolver;     /* this read resolves its file for the others */
    bool took_enough;  /* a 200 answer: the range was cut out of it */
    bool overflow;     /* more bytes than asked */
    uint64_t stream_pos;
    size_t got;
    size_t body_cap;
    char errbody[HUB_ERRBODY_MAX];
    size_t errbody_len;
    uint64_t due_ms;
    uint64_t started_ms;
    char curl_err[CURL_ERROR_SIZE];
};

struct hub_file {
    struct hub *hub;
    uint64_t size;
    char resolve_url[HUB_URL_MAX];
    pthread_mutex_t lock;
    char *final_url; /* protected by lock; never persisted or logged */
    /* Resolution is single-flight: while one read follows the redirects,
     * other reads of the file wait here and then go straight to where it
     * ended. */
    bool resolving;           /* protected by lock */
    struct hub_req *waiters;  /* protected by lock; linked by next */
};

/* Starts a range read of f: straight to the remembered URL, or as the
 * file's resolver, or queued behind the resolver (hub_api.c). */
HFM_MUST_CHECK enum hub_err hub_file_dispatch(struct hub *hub,
                                              struct hub_req *req);
/* The resolver is done or could not start: the reads that waited go on,
 * straight to the remembered URL, or one of them resolves next; a read
 * that cannot be started completes with its error. */
void hub_file_release_waiters(struct hub *hub, struct hub_file *f);

/* One proxy from struct hub_config, copied. */
struct hub_proxy {
    char *url; /* NULL: none */
    char *var; /* the variable it came from, for messages */
};

struct hub {
    char endpoint[HUB_URL_MAX];
    char origin[HUB_URL_MAX];
    bool offline;
    int max_tries;
    int timeout_s;
    int max_conns;
    char user_agent[128];
    /* read-only after hub_new() */
    struct hub_proxy http_proxy;
    struct hub_proxy https_proxy;
    struct hub_proxy all_proxy;
    char *no_proxy; /* NULL: none */

    pthread_mutex_t lock;
    char *token;            /* protected by lock */
    struct hub_req *incoming; /* protected by lock */
    struct hub_req *incoming_tail; /* protected by lock */
    bool stopping;          /* protected by lock */

    CURLM *multi;
    pthread_t thread;
    bool thread_started;
    struct hub_req *delayed; /* engine thread only */
    struct hub_req *active;  /* engine thread only: attempts on the wire */
    unsigned int seed;       /* engine thread only */

    _Atomic uint64_t st_requests;
    _Atomic uint64_t st_bytes;
    _Atomic uint64_t st_retries;
    _Atomic uint64_t st_errors;
};

/* Queues req; done runs on the network thread. HUB_E_OFFLINE / HUB_E_NETWORK
 * (stopping) are returned without queueing. */
HFM_MUST_CHECK enum hub_err hub_req_submit(struct hub *hub, struct hub_req *req);
/* Queues req and waits for it; returns req->err. */
HFM_MUST_CHECK enum hub_err hub_req_run(struct hub *hub, struct hub_req *req);
void hub_req_release(struct hub_req *req);

/* "scheme://host:port" lower-cased with the default port made explicit.
 * false if url is not absolute http(s). */
bool hub_url_origin(const char *url, char *out, size_t out_len);
bool hub_url_is_hub(const struct hub *hub, const char *url);
/* Resolves a Location against base into out. */
bool hub_url_join(const char *base, const char *location, char *out,
                  size_t out_len);
/* scheme://host/path of url, without query or fragment (for logs). */
void hub_url_for_log(const char *url, char *out, size_t out_len);

#endif /* HFM_NET_HUB_INTERNAL_H */

/*
 * hub_err.h - the one error type of the Hub client, and the cause line
 * that rides with it.
 *
 * Every net/ call that can fail returns enum hub_err. The list is
 * append-only (values are never reordered or reused). hub_strerror() and
 * hub_err_to_errno() in hub_err.c are the only switches over it; they have
 * no default: case so -Wswitch flags a new code.
 *
 * struct hub_why carries what a human needs to act on a failure: the HTTP
 * status, the Hub's X-Error-Code and X-Error-Message (sanitised to one
 * printable line), the request id, and a short line naming the cause. It
 * never holds the token, an Authorization header or a signed URL's query.
 *
 * Ownership: struct hub_why is caller storage, plain arrays, no heap.
 * Threads: pure functions, thread-safe.
 */
#ifndef HFM_NET_HUB_ERR_H
#define HFM_NET_HUB_ERR_H

#include <stdbool.h>
#include <stddef.h>

#if defined(__GNUC__)
#define HFM_MUST_CHECK __attribute__((warn_unused_result))
#define HFM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HFM_MUST_CHECK
#define HFM_PRINTF(a, b)
#endif

enum hub_err {
    HUB_OK = 0,
    HUB_E_NOT_FOUND,    /* repo, revision or path does not exist (or is hidden) */
    HUB_E_NO_TOKEN,     /* the Hub wants a token and none was sent */
    HUB_E_SCOPE,        /* token lacks a permission (fine-grained scope) */
    HUB_E_GATED,        /* gated repo, access not granted / pending */
    HUB_E_RATE_LIMITED, /* 429 after bounded retries */
    HUB_E_SERVER,       /* 5xx after bounded retries */
    HUB_E_NETWORK,      /* connect/reset/timeout/stall after bounded retries */
    HUB_E_PROTOCOL,     /* malformed answer: JSON, headers, redirect loop, wrong range */
    HUB_E_TOO_BIG,      /* an answer over a named limit */
    HUB_E_NOMEM,        /* allocation failed */
    HUB_E_DENIED,       /* other 401/403: bad token, disabled repo, org policy */
    HUB_E_OFFLINE,      /* HF_HUB_OFFLINE set and the answer is not cached */
    HUB_E_EXPIRED,      /* a signed CDN URL expired (403/410 from a non-Hub origin) */
    HUB_E_RANGE,        /* 416: the range is past the end of the file */
};

#define HUB_WHY_LINE_MAX 512
#define HUB_WHY_CODE_MAX 64
#define HUB_WHY_MSG_MAX 384
#define HUB_WHY_REQID_MAX 128

struct hub_why {
    int status;                       /* HTTP status, 0 if none */
    char code[HUB_WHY_CODE_MAX];      /* X-Error-Code, "" if none */
    char message[HUB_WHY_MSG_MAX];    /* X-Error-Message or body "error", one line */
    char request_id[HUB_WHY_REQID_MAX]; /* X-Request-Id, "" if none */
    char line[HUB_WHY_LINE_MAX];      /* short cause, e.g. "HTTP 503 after 5 tries" */
};

void hub_why_clear(struct hub_why *why);
/* Sets why->line (printf-style); NULL why is allowed and ignored. */
void hub_why_set(struct hub_why *why, const char *fmt, ...) HFM_PRINTF(2, 3);

const char *hub_strerror(enum hub_err err);
/* -errno for the FUSE reader: NOT_FOUND -> -ENOENT; NO_TOKEN, SCOPE, GATED,
 * DENIED -> -EACCES; OFFLINE -> -ENOENT; NOMEM -> -ENOMEM; RANGE -> 0 is not
 * an error here: -EIO; TOO_BIG -> -EFBIG; everything else -> -EIO. */
int hub_err_to_errno(enum hub_err err);

/*
 * Maps one final Hub answer to an error. status is the HTTP status; code and
 * message are X-Error-Code / X-Error-Message (NULL if absent); had_token
 * says whether Authorization was sent; hub_origin says whether the answer
 * came from the HF_ENDPOINT origin (false: a CDN). Returns HUB_OK for 2xx.
 * Order follows huggingface_hub: RevisionNotFound, EntryNotFound, GatedRepo,
 * disabled, RepoNotFound / 401, 403, 404, 416, 429, 5xx.
 *   - GatedRepo: 401 -> NO_TOKEN, 403 -> GATED
 *   - 403 whose message mentions "public gated repositories" -> SCOPE
 *   - 401 without code: had_token -> DENIED, else NO_TOKEN
 *   - 404 any code -> NOT_FOUND
 *   - other 401/403 on the Hub -> DENIED; 403/410 off the Hub -> EXPIRED
 *   - 429 -> RATE_LIMITED, 5xx and 408 -> SERVER, 416 -> RANGE,
 *     other 4xx -> PROTOCOL, 3xx reaching here -> PROTOCOL
 */
enum hub_err hub_err_classify(int status, const char *code, const char *message,
                              bool had_token, bool hub_origin);

/* true for answers worth retrying: 408, 429, 500, 502, 503, 504. */
bool hub_status_retryable(int status);

#endif /* HFM_NET_HUB_ERR_H */

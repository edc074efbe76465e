/*
 * hub_err.c - names, errno values and classification of Hub errors.
 *
 * This file holds the only switches over enum hub_err (hub_strerror() and
 * hub_err_to_errno()); neither has a default: so -Wswitch flags a new code.
 * hub_err_classify() turns one final HTTP answer (status, X-Error-Code,
 * X-Error-Message) into an enum hub_err in huggingface_hub's order, as
 * docs in hub_err.h and hub-api.md section 5 describe.
 *
 * Codes and messages are only trusted from the Hub's own origin: a CDN does
 * not speak X-Error-Code, and there a 403 or 410 means the signed URL
 * expired. Everything here is pure and thread-safe.
 */
#include "net/hub_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The X-Error-Code values the Hub is known to send (hub-api.md section 5). */
#define CODE_REPO_NOT_FOUND     "RepoNotFound"
#define CODE_REVISION_NOT_FOUND "RevisionNotFound"
#define CODE_ENTRY_NOT_FOUND    "EntryNotFound"
#define CODE_GATED_REPO         "GatedRepo"

/* Message fragments huggingface_hub special-cases. */
#define MSG_SCOPE_GATED "public gated repositories"
#define MSG_DISABLED    "Access to this resource is disabled"
#define MSG_BAD_TOKEN   "Invalid credentials in Authorization header"

void hub_why_clear(struct hub_why *why)
{
    if (why)
        memset(why, 0, sizeof(*why));
}

void hub_why_set(struct hub_why *why, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!why)
        return;
    va_start(ap, fmt);
    n = vsnprintf(why->line, sizeof(why->line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        why->line[0] = '\0';
        return;
    }
    /* One printable line: a name from the Hub may carry control bytes. */
    for (char *p = why->line; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            *p = '?';
    }
}

const char *hub_strerror(enum hub_err err)
{
    switch (err) {
    case HUB_OK:
        return "success";
    case HUB_E_NOT_FOUND:
        return "not found";
    case HUB_E_NO_TOKEN:
        return "no token";
    case HUB_E_SCOPE:
        return "token lacks scope";
    case HUB_E_GATED:
        return "gated repo, access not granted";
    case HUB_E_RATE_LIMITED:
        return "rate limited";
    case HUB_E_SERVER:
        return "server error";
    case HUB_E_NETWORK:
        return "network error";
    case HUB_E_PROTOCOL:
        return "protocol error";
    case HUB_E_TOO_BIG:
        return "answer too big";
    case HUB_E_NOMEM:
        return "out of memory";
    case HUB_E_DENIED:
        return "access denied";
    case HUB_E_OFFLINE:
        return "offline and not cached";
    case HUB_E_EXPIRED:
        return "signed url expired";
    case HUB_E_RANGE:
        return "range not satisfiable";
    }
    return "unknown error";
}

int hub_err_to_errno(enum hub_err err)
{
    switch (err) {
    case HUB_OK:
        return 0;
    case HUB_E_NOT_FOUND:
    case HUB_E_OFFLINE:
        return -ENOENT;
    case HUB_E_NO_TOKEN:
    case HUB_E_SCOPE:
    case HUB_E_GATED:
    case HUB_E_DENIED:
        return -EACCES;
    case HUB_E_NOMEM:
        return -ENOMEM;
    case HUB_E_TOO_BIG:
        return -EFBIG;
    case HUB_E_RATE_LIMITED:
    case HUB_E_SERVER:
    case HUB_E_NETWORK:
    case HUB_E_PROTOCOL:
    case HUB_E_EXPIRED:
    case HUB_E_RANGE:
        return -EIO;
    }
    return -EIO;
}

static bool code_is(const char *code, const char *want)
{
    return code && strcmp(code, want) == 0;
}

static bool has_code(const char *code)
{
    return code && code[0] != '\0';
}

static bool msg_has(const char *message, const char *needle)
{
    return message && strstr(message, needle) != NULL;
}

/* Statuses whose meaning does not depend on who answered or on a code. */
static enum hub_err classify_status(int status)
{
    if (status == 429)
        return HUB_E_RATE_LIMITED;
    if (status == 408 || (status >= 500 && status <= 599))
        return HUB_E_SERVER;
    if (status == 416)
        return HUB_E_RANGE;
    if (status == 404)
        return HUB_E_NOT_FOUND;
    /* 3xx reaching here (redirects are followed before), other 4xx and
     * anything outside 100..599. */
    return HUB_E_PROTOCOL;
}

/* 401 from the Hub with no (useful) code: without a token the repo is
 * private, gated or missing; with one, the token is bad. */
static enum hub_err classify_401(bool had_token)
{
    return had_token ? HUB_E_DENIED : HUB_E_NO_TOKEN;
}

enum hub_err hub_err_classify(int status, const char *code, const char *message,
                              bool had_token, bool hub_origin)
{
    if (status >= 200 && status <= 299)
        return HUB_OK;
    /* Codes belong to 4xx answers; 408, 416 and 429 mean the same whatever
     * code rides along, and a CDN sends no codes at all. */
    if (status < 400 || status > 499 || status == 408 || status == 416 ||
        status == 429)
        return classify_status(status);
    if (!hub_origin) {
        if (status == 403 || status == 410)
            return HUB_E_EXPIRED;
        if (status == 401)
            return HUB_E_DENIED;
        return classify_status(status);
    }

    /* huggingface_hub's order: RevisionNotFound, EntryNotFound, GatedRepo,
     * disabled, RepoNotFound / 401, then plain 403, 404. The fine-grained
     * scope sentence is tested before GatedRepo: it is the more precise
     * cause should the Hub ever tag it with that code. */
    if (code_is(code, CODE_REVISION_NOT_FOUND) ||
        code_is(code, CODE_ENTRY_NOT_FOUND))
        return HUB_E_NOT_FOUND;
    if (status == 403 && msg_has(message, MSG_SCOPE_GATED))
        return HUB_E_SCOPE;
    if (code_is(code, CODE_GATED_REPO)) {
        if (status == 401)
            return HUB_E_NO_TOKEN;
        if (status == 403)
            return HUB_E_GATED;
    }
    if ((status == 401 || status == 403) && msg_has(message, MSG_DISABLED))
        return HUB_E_DENIED;
    if (status == 401) {
        if (msg_has(message, MSG_BAD_TOKEN))
            return HUB_E_DENIED;
        /* RepoNotFound on a 401 is huggingface_hub's "RepoNotFound / 401"
         * case: authentication is what is missing, as with no code. */
        if (!has_code(code) || code_is(code, CODE_REPO_NOT_FOUND))
            return classify_401(had_token);
        return HUB_E_DENIED;
    }
    if (status == 404 || code_is(code, CODE_REPO_NOT_FOUND))
        return HUB_E_NOT_FOUND;
    if (status == 403)
        return HUB_E_DENIED;
    return classify_status(status);
}

bool hub_status_retryable(int status)
{
    switch (status) {
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return true;
    default:
        return false;
    }
}

/*
 * auth.c - a failed Hub answer becomes the reader's errno and one log line
 * naming the cause and the fix.
 *
 * The cause comes from the final answer (status, X-Error-Code,
 * X-Error-Message, whether a token was sent) and, where that is not
 * enough, from /api/whoami-v2: asked only after a failure (the Hub limits
 * it strictly), once per token, and cached. The order follows hub-api.md
 * §6 "Naming the cause":
 *   1. 403 mentioning "public gated repositories": fine-grained token
 *      without the gated-repos permission
 *   2. GatedRepo: 401 no token; 403 not granted, or a request pending
 *   3. 404 with a fine-grained token on a namespace of the user: the token
 *      lacks "Read access to contents" there
 *   4. 401 without code: token rejected (if sent), else no token (the repo
 *      is private or missing: ENOENT, the Hub hides which)
 *   5. 403 disabled repo, organization token policy, anything else quoted
 *
 * Lines are keyed by (repo, cause) and not repeated within
 * HFM_LOG_REPEAT_S: a cat of a 10 GB gated file logs once.
 *
 * The token is re-read (hfm_config_read_token) when a permission failure
 * is about to be reported, at most every HFM_TOKEN_RECHECK_S, so a fixed
 * token works without a remount. The token itself is never logged.
 */
#include "fs/auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "fs/hfm.h"
#include "net/hub.h"
#include "net/log.h"

#define SCOPE_GATED                                                          \
    "Read access to contents of all public gated repos you can access"
#define SCOPE_CONTENT "Read access to contents of all repos"

int hfm_auth_errno(struct hfm *h, enum hub_err err)
{
    (void)h;
    return hub_err_to_errno(err);
}

/* true if this key was not logged in the last HFM_LOG_REPEAT_S. */
static bool first_time(struct hfm *h, const char *key)
{
    time_t now = time(NULL);
    size_t oldest = 0;
    bool fresh = true;

    pthread_mutex_lock(&h->log_lock);
    for (size_t i = 0; i < HFM_LOG_MEMORY; i++) {
        struct hfm_logged *l = &h->logged[i];
        if (l->key[0] && strcmp(l->key, key) == 0) {
            if (now - l->when < HFM_LOG_REPEAT_S)
                fresh = false;
            else
                l->when = now;
            pthread_mutex_unlock(&h->log_lock);
            return fresh;
        }
        if (h->logged[i].when < h->logged[oldest].when)
            oldest = i;
    }
    snprintf(h->logged[oldest].key, sizeof(h->logged[oldest].key), "%s", key);
    h->logged[oldest].when = now;
    pthread_mutex_unlock(&h->log_lock);
    return true;
}

static uint64_t token_hash(const char *t)
{
    return t ? XXH3_64bits(t, strlen(t)) : 0;
}

bool hfm_auth_refresh_token(struct hfm *h)
{
    char *token = NULL;
    time_t now = time(NULL);
    bool changed = false;
    uint64_t th;

    pthread_mutex_lock(&h->auth_lock);
    if (h->token_checked && now - h->token_checked < HFM_TOKEN_RECHECK_S) {
        pthread_mutex_unlock(&h->auth_lock);
        return false;
    }
    h->token_checked = now;
    pthread_mutex_unlock(&h->auth_lock);

    if (hfm_config_read_token(h->cfg, &token) < 0)
        return false;
    th = token_hash(token);
    pthread_mutex_lock(&h->auth_lock);
    if (th != h->token_hash) {
        if (hub_set_token(h->hub, token) == HUB_OK) {
            h->token_hash = th;
            changed = true;
        }
    }
    pthread_mutex_unlock(&h->auth_lock);
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    if (changed)
        hfm_log(HFM_LOG_INFO, "the token from %s changed: using the new one",
                hfm_config_token_source(h->cfg));
    return changed;
}

void hfm_auth_set_token_hash(struct hfm *h, const char *token)
{
    pthread_mutex_lock(&h->auth_lock);
    h->token_hash = token_hash(token);
    h->token_checked = time(NULL);
    pthread_mutex_unlock(&h->auth_lock);
}

/* whoami for the current token, asked once per token. false if unknown. */
static bool whoami(struct hfm *h, struct hub_whoami *out)
{
    struct hub_why why;
    uint64_t th;
    enum hub_err err;

    pthread_mutex_lock(&h->auth_lock);
    th = h->token_hash;
    if (h->who_valid && h->who_hash == th) {
        *out = h->who;
        bool ok = h->who_ok;
        pthread_mutex_unlock(&h->auth_lock);
        return ok;
    }
    pthread_mutex_unlock(&h->auth_lock);
    if (!h->hub || th == 0)
        return false;
    hub_why_clear(&why);
    err = hub_whoami(h->hub, out, &why);
    pthread_mutex_lock(&h->auth_lock);
    h->who_valid = true;
    h->who_hash = th;
    h->who_ok = err == HUB_OK;
    if (err == HUB_OK)
        h->who = *out;
    pthread_mutex_unlock(&h->auth_lock);
    return err == HUB_OK;
}

static bool ns_listed(char list[][HUB_WHOAMI_NS_MAX], size_t n,
                      const char *ns, size_t nslen)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == nslen && strncmp(list[i], ns, nslen) == 0)
            return true;
    return false;
}

static bool contains(const char *hay, const char *needle)
{
    return hay && strcasestr(hay, needle) != NULL;
}

int hfm_auth_cause(struct hfm *h, enum hub_repo_type type, const char *id,
                   int rc, const struct hub_why *why, char *out, size_t cap,
                   const char **key)
{
    char repo[HUB_ID_MAX + 16]; /* as the Hub's web pages name it */
    const char *ep = h->hub ? hub_endpoint(h->hub) : h->cfg->endpoint;
    bool had_token = h->hub && hub_has_token(h->hub);
    int st = why ? why->status : 0;
    const char *code = why ? why->code : "";
    const char *msg = why ? why->message : "";
    bool gated_code = strcmp(code, "GatedRepo") == 0;
    struct hub_whoami who;

    snprintf(repo, sizeof(repo), "%s%s", hub_repo_type_prefix(type), id);
    out[0] = '\0';
    *key = "other";
    if (rc == -ENOENT && h->hub && hub_is_offline(h->hub)) {
        *key = "offline";
        snprintf(out, cap,
                 "not in the cache, and hfmount is offline (HF_HUB_OFFLINE "
                 "or --offline): mount once online, or run `hfmount "
                 "prefetch`");
        return -ENOENT;
    }
    if (st == 403 && contains(msg, "public gated repositories")) {
        *key = "scope-gated";
        snprintf(out, cap,
                 "the fine-grained token lacks the permission \"%s\": enable "
                 "it in the token's settings at %s/settings/tokens (or use a "
                 "read token)",
                 SCOPE_GATED, ep);
        return -EACCES;
    }
    if (gated_code && (st == 401 || !had_token)) {
        *key = "no-token";
        snprintf(out, cap,
                 "no Hugging Face token found: set HF_TOKEN or run `hf auth "
                 "login` (%s is gated: request access at %s/%s)",
                 repo, ep, repo);
        return -EACCES;
    }
    if (gated_code && st == 403) {
        if (contains(msg, "awaiting a review")) {
            *key = "gate-pending";
            snprintf(out, cap,
                     "the request to access %s is still awaiting review by "
                     "its authors: \"%s\"",
                     repo, msg);
            return -EACCES;
        }
        *key = "gate-not-granted";
        bool known = whoami(h, &who);
        snprintf(out, cap,
                 "access to %s has not been granted to %s: request it at "
                 "%s/%s",
                 repo, known ? who.name : "this token's user", ep, repo);
        return -EACCES;
    }
    if (st == 404 && had_token && rc != -EIO &&
        strcmp(code, "RevisionNotFound") != 0 &&
        strcmp(code, "EntryNotFound") != 0) {
        const char *slash = strchr(id, '/');
        size_t nslen = slash ? (size_t)(slash - id) : 0;
        if (nslen && whoami(h, &who) && who.fine_grained &&
            ((strncmp(who.name, id, nslen) == 0 &&
              strlen(who.name) == nslen) ||
             ns_listed(who.orgs, who.norgs, id, nslen)) &&
            !ns_listed(who.content_read, who.ncontent_read, id, nslen)) {
            *key = "scope-content";
            snprintf(out, cap,
                     "the fine-grained token lacks the permission \"Read "
                     "access to contents\" of the repos of '%.*s' (\"%s\" "
                     "for a user, or the repo- or org-level permission): "
                     "add it at %s/settings/tokens",
                     (int)nslen, id, SCOPE_CONTENT, ep);
            return -EACCES;
        }
        return rc;
    }
    if (st == 401) {
        if (had_token &&
            contains(msg, "Invalid credentials in Authorization header")) {
            *key = "token-rejected";
            snprintf(out, cap,
                     "the token was rejected (invalid or revoked): get a new "
                     "one at %s/settings/tokens and update %s",
                     ep, hfm_config_token_source(h->cfg));
            return -EACCES;
        }
        if (!had_token) {
            *key = "no-token";
            snprintf(out, cap,
                     "no Hugging Face token found: set HF_TOKEN or run `hf "
                     "auth login` (a private repo, or none by that name)");
            return -ENOENT;
        }
        *key = "token-rejected";
        snprintf(out, cap, "the token was rejected: \"%s\"", msg);
        return -EACCES;
    }
    if (st == 403) {
        if (contains(msg, "disabled")) {
            *key = "disabled";
            snprintf(out, cap, "%s is disabled on the Hub: \"%s\"", repo,
                     msg);
        } else if (contains(msg, "organization")) {
            *key = "org-policy";
            snprintf(out, cap,
                     "the organization's token policy blocks this token: "
                     "\"%s\"",
                     msg);
        } else {
            *key = "forbidden";
            snprintf(out, cap, "the Hub refused access: \"%s\"",
                     msg[0] ? msg : "(no message)");
        }
        return -EACCES;
    }
    return rc;
}

int hfm_report(struct hfm *h, enum hub_repo_type type, const char *id,
               const char *rev, const char *path, const char *verb, int rc,
               const struct hub_why *why)
{
    char repo[HUB_ID_MAX + HUB_REV_MAX + 48];
    char cause[1024];
    char head[HUB_PATH_MAX + sizeof(repo) + 64];
    char status[HUB_WHY_CODE_MAX + 64];
    char lkey[sizeof(repo) + HUB_WHY_LINE_MAX + 32];
    const char *key;
    int err;

    /* 'ns/name' stays quoted whole, so a search for the repo id finds the
     * line; the revision, when one was asked for, follows it */
    snprintf(repo, sizeof(repo), "%s%s'%s%s%s", hub_repo_type_prefix(type), id,
             rev && rev[0] ? " at revision '" : "", rev ? rev : "",
             rev && rev[0] ? "'" : "");
    err = hfm_auth_cause(h, type, id, rc, why, cause, sizeof(cause), &key);
    if (err == -ENOENT && !cause[0])
        return err; /* plain "no such repo/file": nothing to say */
    if (path && path[0])
        snprintf(head, sizeof(head), "cannot %s '%s' in '%s", verb, path,
                 repo);
    else
        snprintf(head, sizeof(head), "cannot %s '%s", verb, repo);
    status[0] = '\0';
    if (why && why->status)
        snprintf(status, sizeof(status), " (HTTP %d%s%s)", why->status,
                 why->code[0] ? ", X-Error-Code " : "", why->code);
    snprintf(lkey, sizeof(lkey), "%s|%s|%d", repo,
             strcmp(key, "other") == 0 ? (why ? why->line : "") : key, err);
    if (!first_time(h, lkey))
        return err;
    if (cause[0])
        hfm_log(HFM_LOG_ERR, "%s%s: %s", head, status, cause);
    else
        hfm_log(HFM_LOG_ERR, "%s%s: %s%s%s%s%s%s", head, status,
                strerror(-err), why && why->line[0] ? ": " : "",
                why ? why->line : "", why && why->message[0] ? ": \"" : "",
                why ? why->message : "", why && why->message[0] ? "\"" : "");
    return err;
}

void hfm_report_truncated(struct hfm *h, enum hub_repo_type type,
                          const char *ns, size_t listed)
{
    char key[HUB_ID_MAX + 32];

    snprintf(key, sizeof(key), "%s%s|truncated", hub_repo_type_prefix(type),
             ns);
    if (!first_time(h, key))
        return;
    hfm_log(HFM_LOG_WARN,
            "listing of '%s%s' stopped at %zu repos (the Hub has more); the "
            "others are still reachable by name",
            hub_repo_type_prefix(type), ns, listed);
}

void hfm_report_hidden(struct hfm *h, enum hub_repo_type type, const char *ns)
{
    char key[HUB_ID_MAX + 32];

    snprintf(key, sizeof(key), "%s%s|hidden", hub_repo_type_prefix(type), ns);
    if (!first_time(h, key))
        return;
    hfm_log(HFM_LOG_ERR,
            "cannot look up '%s%s': no Hugging Face token found: set HF_TOKEN "
            "or run `hf auth login` (the Hub lists no public %s by '%s'; a "
            "private one needs a token)",
            hub_repo_type_prefix(type), ns,
            type == HUB_REPO_DATASET ? "datasets"
            : type == HUB_REPO_SPACE ? "spaces"
                                     : "models",
            ns);
}

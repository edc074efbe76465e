/*
 * auth.c - errno and one log line per failure cause.
 *
 * A cat of a 10 GB file that fails logs once, not once per read() call:
 * each line is keyed by (repo, errno, HTTP status, X-Error-Code) and not
 * repeated within HFM_LOG_REPEAT_S.
 */
#include "fs/auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fs/hfm.h"
#include "net/log.h"

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
            if (now - l->when < HFM_LOG_REPEAT_S) {
                fresh = false;
            } else {
                l->when = now;
            }
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

void hfm_report(struct hfm *h, const char *repo, const char *path,
                const char *verb, int rc, const struct hub_why *why)
{
    char key[HUB_ID_MAX + 64];
    char detail[HUB_WHY_LINE_MAX + HUB_WHY_MSG_MAX + 64];
    size_t n = 0;

    snprintf(key, sizeof(key), "%s|%d|%d|%s", repo, rc, why ? why->status : 0,
             why ? why->code : "");
    if (!first_time(h, key))
        return;
    detail[0] = '\0';
    if (why && why->line[0])
        n += (size_t)snprintf(detail + n, sizeof(detail) - n, ": %s",
                              why->line);
    if (why && why->code[0] && n < sizeof(detail))
        n += (size_t)snprintf(detail + n, sizeof(detail) - n,
                              " (X-Error-Code %s)", why->code);
    if (why && why->message[0] && n < sizeof(detail))
        n += (size_t)snprintf(detail + n, sizeof(detail) - n, ": \"%s\"",
                              why->message);
    if (path && path[0])
        hfm_log(HFM_LOG_ERR, "cannot %s '%s' in '%s': %s%s", verb, path, repo,
                strerror(-rc), detail);
    else
        hfm_log(HFM_LOG_ERR, "cannot %s '%s': %s%s", verb, repo,
                strerror(-rc), detail);
}

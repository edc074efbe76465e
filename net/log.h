/*
 * log.h - the one logger. Lowest layer: net/, cache/ and fs/ all use it.
 *
 * One line per event, git style: lower case, no final period, failure
 * first, subjects quoted. Never pass a token, an Authorization header or a
 * signed URL's query to it.
 *
 * Threads: hfm_log() is thread-safe (one write(2) per line, or syslog).
 * hfm_log_open() and hfm_log_set_level() are called once, before threads.
 */
#ifndef HFM_NET_LOG_H
#define HFM_NET_LOG_H

#include "net/hub_err.h" /* HFM_PRINTF, HFM_MUST_CHECK */

enum hfm_log_level {
    HFM_LOG_ERR = 0,
    HFM_LOG_WARN,
    HFM_LOG_INFO,
    HFM_LOG_DEBUG,
};

enum hfm_log_target {
    HFM_LOG_STDERR = 0,
    HFM_LOG_FILE,
    HFM_LOG_SYSLOG,
};

/* path is used with HFM_LOG_FILE only. 0 or -errno. */
HFM_MUST_CHECK int hfm_log_open(enum hfm_log_target target, const char *path);
void hfm_log_close(void);
void hfm_log_set_level(enum hfm_log_level level);
enum hfm_log_level hfm_log_get_level(void);
/* "err", "error", "warn", "warning", "info", "debug" -> level; -EINVAL */
HFM_MUST_CHECK int hfm_log_parse_level(const char *s, enum hfm_log_level *out);
void hfm_log(enum hfm_log_level level, const char *fmt, ...) HFM_PRINTF(2, 3);

#endif /* HFM_NET_LOG_H */

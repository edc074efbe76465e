/*
 * log.c - the one logger: one line per event to stderr, a file or syslog.
 *
 * A line is "YYYY-mm-ddTHH:MM:SSZ hfmount[PID] LEVEL: message\n", built in
 * a stack buffer and sent with a single write(2) so lines from concurrent
 * threads never interleave (O_APPEND makes that hold for a shared file
 * too). Messages longer than the buffer end in "...". A trailing newline
 * is dropped and any other control byte becomes '?', so one event stays
 * one line whatever a Hub-supplied string holds.
 *
 * DESIGN: the sink and level are file statics, the one mutable state the
 * style guide allows: hfm_log_open(), hfm_log_set_level() and
 * hfm_log_close() run before threads start and after they end; hfm_log()
 * only reads them. hfm_log() preserves errno so callers may log and then
 * return -errno.
 */
#include "net/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* Bytes of one line, newline included; longer messages are cut. */
#define HFM_LOG_LINE_BYTES 2048
#define HFM_LOG_ELLIPSIS   "..."
#define HFM_LOG_IDENT      "hfmount"
#define HFM_LOG_FILE_MODE  0640

static enum hfm_log_target log_target = HFM_LOG_STDERR;
static int log_fd = -1; /* HFM_LOG_FILE only */
static enum hfm_log_level log_level = HFM_LOG_INFO;

static const struct {
    const char *name;
    enum hfm_log_level level;
} level_names[] = {
    {"err", HFM_LOG_ERR},      {"error", HFM_LOG_ERR}, {"warn", HFM_LOG_WARN},
    {"warning", HFM_LOG_WARN}, {"info", HFM_LOG_INFO}, {"debug", HFM_LOG_DEBUG},
};

static const char *level_word(enum hfm_log_level level)
{
    switch (level) {
    case HFM_LOG_ERR:
        return "error";
    case HFM_LOG_WARN:
        return "warning";
    case HFM_LOG_INFO:
        return "info";
    case HFM_LOG_DEBUG:
        return "debug";
    }
    return "debug";
}

static int level_priority(enum hfm_log_level level)
{
    switch (level) {
    case HFM_LOG_ERR:
        return LOG_ERR;
    case HFM_LOG_WARN:
        return LOG_WARNING;
    case HFM_LOG_INFO:
        return LOG_INFO;
    case HFM_LOG_DEBUG:
        return LOG_DEBUG;
    }
    return LOG_DEBUG;
}

int hfm_log_open(enum hfm_log_target target, const char *path)
{
    int fd;

    switch (target) {
    case HFM_LOG_STDERR:
        hfm_log_close();
        return 0;
    case HFM_LOG_FILE:
        if (!path || !path[0])
            return -EINVAL;
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY,
                  HFM_LOG_FILE_MODE);
        if (fd < 0)
            return -errno;
        hfm_log_close();
        log_fd = fd;
        log_target = HFM_LOG_FILE;
        return 0;
    case HFM_LOG_SYSLOG:
        hfm_log_close();
        openlog(HFM_LOG_IDENT, LOG_PID | LOG_NDELAY, LOG_DAEMON);
        log_target = HFM_LOG_SYSLOG;
        return 0;
    }
    return -EINVAL;
}

void hfm_log_close(void)
{
    if (log_target == HFM_LOG_FILE && log_fd >= 0)
        close(log_fd);
    else if (log_target == HFM_LOG_SYSLOG)
        closelog();
    log_fd = -1;
    log_target = HFM_LOG_STDERR;
}

void hfm_log_set_level(enum hfm_log_level level)
{
    if ((int)level >= (int)HFM_LOG_ERR && (int)level <= (int)HFM_LOG_DEBUG)
        log_level = level;
}

enum hfm_log_level hfm_log_get_level(void)
{
    return log_level;
}

int hfm_log_parse_level(const char *s, enum hfm_log_level *out)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(s, level_names[i].name) == 0) {
            *out = level_names[i].level;
            return 0;
        }
    }
    return -EINVAL;
}

/* Drops trailing newlines and turns other control bytes into '?'. */
static size_t one_line(char *msg, size_t len)
{
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        len--;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        if (c < 0x20 || c == 0x7f)
            msg[i] = '?';
    }
    return len;
}

/* Formats the message into buf[0..cap), cut with "..." when it does not
 * fit; returns its length. */
static size_t format_msg(char *buf, size_t cap, const char *fmt, va_list ap)
    HFM_PRINTF(3, 0);
static size_t format_msg(char *buf, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, cap, fmt, ap);

    if (n < 0) {
        buf[0] = '\0';
        return 0;
    }
    if ((size_t)n >= cap) {
        size_t keep = cap - sizeof(HFM_LOG_ELLIPSIS);
        memcpy(buf + keep, HFM_LOG_ELLIPSIS, sizeof(HFM_LOG_ELLIPSIS));
        return keep + sizeof(HFM_LOG_ELLIPSIS) - 1;
    }
    return (size_t)n;
}

static void write_line(int fd, const char *line, size_t len)
{
    ssize_t n;

    /* One write(2) keeps the line whole; a short write is not retried, as
     * a second write could land after another thread's line. */
    do {
        n = write(fd, line, len);
    } while (n < 0 && errno == EINTR);
}

void hfm_log(enum hfm_log_level level, const char *fmt, ...)
{
    char line[HFM_LOG_LINE_BYTES];
    size_t head, len;
    int saved_errno = errno;
    struct tm tm;
    time_t now;
    va_list ap;
    int n;

    if ((int)level < (int)HFM_LOG_ERR || (int)level > (int)HFM_LOG_DEBUG ||
        level > log_level)
        return;

    if (log_target == HFM_LOG_SYSLOG) {
        va_start(ap, fmt);
        len = format_msg(line, sizeof(line), fmt, ap);
        va_end(ap);
        len = one_line(line, len);
        line[len] = '\0';
        syslog(level_priority(level), "%s", line);
        errno = saved_errno;
        return;
    }

    now = time(NULL);
    if (!gmtime_r(&now, &tm))
        memset(&tm, 0, sizeof(tm));
    head = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%SZ", &tm);
    n = snprintf(line + head, sizeof(line) - head,
                 " %s[%ld] %s: ", HFM_LOG_IDENT, (long)getpid(),
                 level_word(level));
    if (n < 0 || (size_t)n >= sizeof(line) - head)
        n = 0;
    head += (size_t)n;

    /* Leave one byte for the newline. */
    va_start(ap, fmt);
    len = format_msg(line + head, sizeof(line) - head - 1, fmt, ap);
    va_end(ap);
    len = head + one_line(line + head, len);
    line[len++] = '\n';

    write_line(log_target == HFM_LOG_FILE && log_fd >= 0 ? log_fd
                                                         : STDERR_FILENO,
               line, len);
    errno = saved_errno;
}

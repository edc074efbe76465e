/*
 * test_log.c - unit tests of net/log.c: the line format, level filter,
 * one-line sanitising, truncation, file sink flags and level names. Logs to
 * a file in a private temporary directory.
 */
#include "net/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define STAMP_LEN    20 /* "YYYY-mm-ddTHH:MM:SSZ" */

static char log_path[256];
static off_t log_seen;

/* Reads what the log file gained since the last call into buf. */
static size_t read_new(char *buf, size_t cap)
{
    ssize_t n;
    int fd = open(log_path, O_RDONLY | O_CLOEXEC);

    buf[0] = '\0';
    if (fd < 0)
        return 0;
    n = pread(fd, buf, cap - 1, log_seen);
    close(fd);
    if (n < 0)
        return 0;
    buf[n] = '\0';
    log_seen += n;
    return (size_t)n;
}

static bool stamp_ok(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";

    for (size_t i = 0; i < STAMP_LEN; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    }
    return true;
}

/* The line must be exactly stamp + " hfmount[PID] LEVEL: msg\n". */
static void check_line(const char *got, const char *level, const char *msg)
{
    char want[4096];

    snprintf(want, sizeof(want), " hfmount[%ld] %s: %s\n", (long)getpid(),
             level, msg);
    CHECK(strlen(got) > STAMP_LEN && stamp_ok(got));
    if (strlen(got) > STAMP_LEN)
        CHECK_STR(got + STAMP_LEN, want);
}

static void test_lines(void)
{
    char buf[8192];

    /* default level: info */
    CHECK(hfm_log_get_level() == HFM_LOG_INFO);

    hfm_log(HFM_LOG_INFO, "mounted '%s' at %s", "acme/tiny", "/mnt");
    read_new(buf, sizeof(buf));
    check_line(buf, "info", "mounted 'acme/tiny' at /mnt");

    hfm_log(HFM_LOG_DEBUG, "dropped");
    CHECK(read_new(buf, sizeof(buf)) == 0);

    hfm_log(HFM_LOG_ERR, "cannot read 'x': %s", "not found");
    read_new(buf, sizeof(buf));
    check_line(buf, "error", "cannot read 'x': not found");

    hfm_log(HFM_LOG_WARN, "retrying\n");
    read_new(buf, sizeof(buf));
    check_line(buf, "warning", "retrying");

    hfm_log(HFM_LOG_WARN, "a\nb\tc\x1b[31md\x7f\r\n\n");
    read_new(buf, sizeof(buf));
    check_line(buf, "warning", "a?b?c?[31md?");

    hfm_log(HFM_LOG_INFO, "%s", "");
    read_new(buf, sizeof(buf));
    check_line(buf, "info", "");

    hfm_log_set_level(HFM_LOG_DEBUG);
    CHECK(hfm_log_get_level() == HFM_LOG_DEBUG);
    hfm_log(HFM_LOG_DEBUG, "now %d", 1);
    read_new(buf, sizeof(buf));
    check_line(buf, "debug", "now 1");

    hfm_log_set_level(HFM_LOG_ERR);
    hfm_log(HFM_LOG_WARN, "dropped");
    hfm_log(HFM_LOG_INFO, "dropped");
    CHECK(read_new(buf, sizeof(buf)) == 0);
    hfm_log(HFM_LOG_ERR, "kept");
    read_new(buf, sizeof(buf));
    check_line(buf, "error", "kept");

    /* out-of-range levels are ignored */
    hfm_log_set_level((enum hfm_log_level)42);
    CHECK(hfm_log_get_level() == HFM_LOG_ERR);
    hfm_log((enum hfm_log_level)42, "dropped");
    CHECK(read_new(buf, sizeof(buf)) == 0);
    hfm_log_set_level(HFM_LOG_INFO);

    /* errno is preserved */
    errno = EXDEV;
    hfm_log(HFM_LOG_INFO, "x");
    CHECK(errno == EXDEV);
    read_new(buf, sizeof(buf));

    /* two calls, two whole lines */
    hfm_log(HFM_LOG_INFO, "one");
    hfm_log(HFM_LOG_INFO, "two");
    read_new(buf, sizeof(buf));
    CHECK(strchr(buf, '\n') && strstr(strchr(buf, '\n') + 1, "info: two\n"));
}

static void test_truncation(void)
{
    static char big[10000], buf[16384];
    size_t n;

    memset(big, 'm', sizeof(big) - 1);
    hfm_log(HFM_LOG_INFO, "%s", big);
    n = read_new(buf, sizeof(buf));
    CHECK(n > 0 && n <= 2048);
    CHECK(n > 4 && buf[n - 1] == '\n');
    CHECK(n > 4 && memcmp(buf + n - 4, "...\n", 4) == 0);
    CHECK(stamp_ok(buf));
    /* exactly one line */
    CHECK(strchr(buf, '\n') == buf + n - 1);
}

static void test_file_flags(void)
{
    char link[300], target[512];
    struct dirent *de;
    bool found = false;
    DIR *d = opendir("/proc/self/fd");

    if (!d)
        return; /* no /proc: nothing to check */
    while ((de = readdir(d))) {
        ssize_t n;
        int fd, flags;

        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        n = readlink(link, target, sizeof(target) - 1);
        if (n < 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, log_path) != 0)
            continue;
        fd = (int)strtol(de->d_name, NULL, 10);
        flags = fcntl(fd, F_GETFL);
        found = true;
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        CHECK(flags & O_APPEND);
    }
    closedir(d);
    CHECK(found);
}

static void test_parse_level(void)
{
    static const struct {
        const char *s;
        int ret;
        enum hfm_log_level level;
    } cases[] = {
        {"err", 0, HFM_LOG_ERR},
        {"error", 0, HFM_LOG_ERR},
        {"warn", 0, HFM_LOG_WARN},
        {"warning", 0, HFM_LOG_WARN},
        {"info", 0, HFM_LOG_INFO},
        {"debug", 0, HFM_LOG_DEBUG},
        {"DEBUG", 0, HFM_LOG_DEBUG},
        {"", -EINVAL, HFM_LOG_INFO},
        {"verbose", -EINVAL, HFM_LOG_INFO},
        {"3", -EINVAL, HFM_LOG_INFO},
        {"info ", -EINVAL, HFM_LOG_INFO},
    };

    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        enum hfm_log_level l = HFM_LOG_INFO;
        CHECK(hfm_log_parse_level(cases[i].s, &l) == cases[i].ret);
        CHECK(l == cases[i].level);
    }
    {
        enum hfm_log_level l = HFM_LOG_INFO;
        CHECK(hfm_log_parse_level(NULL, &l) == -EINVAL);
    }
}

int main(void)
{
    char dir[] = "/tmp/test_log.XXXXXX";
    int ret;

    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(log_path, sizeof(log_path), "%s/hfmount.log", dir);

    CHECK(hfm_log_open(HFM_LOG_FILE, NULL) == -EINVAL);
    CHECK(hfm_log_open(HFM_LOG_FILE, "/nonexistent-dir/x/y.log") == -ENOENT);
    CHECK(hfm_log_open(HFM_LOG_FILE, log_path) == 0);
    test_file_flags();
    test_lines();
    test_truncation();
    test_parse_level();

    /* After close, lines go to stderr, not the file. */
    hfm_log_close();
    {
        char buf[256];
        int saved = dup(STDERR_FILENO), devnull = open("/dev/null", O_WRONLY);
        if (saved >= 0 && devnull >= 0) {
            dup2(devnull, STDERR_FILENO);
            hfm_log(HFM_LOG_ERR, "to stderr");
            dup2(saved, STDERR_FILENO);
        }
        if (saved >= 0)
            close(saved);
        if (devnull >= 0)
            close(devnull);
        CHECK(read_new(buf, sizeof(buf)) == 0);
    }
    /* syslog and back: open succeeds, a line does not reach the file. */
    CHECK(hfm_log_open(HFM_LOG_SYSLOG, NULL) == 0);
    hfm_log_close();
    CHECK(hfm_log_open(HFM_LOG_STDERR, NULL) == 0);

    unlink(log_path);
    rmdir(dir);
    ret = check_done("test_log");
    return ret;
}

/*
 * main.c - hfmount's entry point: parse, check the mount point, open the
 * cache, mount, daemonize, start the network and cache threads, serve.
 *
 * Order matters: everything that can fail with a clear message (usage,
 * mount point, cache lock, the repo of single-repo mode) is checked before
 * the mount and before fork, so `hfmount` exits non-zero with that message
 * instead of leaving a dead mount. Threads (network, cache writer) start
 * only after fuse_daemonize(), since fork() keeps just the calling thread.
 */
#define FUSE_USE_VERSION 312
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <malloc.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "cache/cache.h"
#include "fs/auth.h"
#include "fs/config.h"
#include "fs/hfm.h"
#include "fs/tools.h"
#include "net/hub.h"
#include "net/log.h"

#define EXIT_MOUNT_FAILED 1
#define FUSE_MAX_THREADS 256 /* a worker waits out a stalled read: keep plenty */
#define WATCHDOG_PERIOD_MS 100
/* Kernel readahead for the mount (bdi read_ahead_kb): the default 128 KiB
 * keeps reads small and few in flight; commit-pinned content is safe to
 * read far ahead, and our chunk readahead turns it into parallel ranges. */
#define KERNEL_READAHEAD_KB 16384
#define READAHEAD_AFTER_TICKS 3 /* watchdog periods after the loop starts */
#define UNMOUNT_CHECK_TICKS 5   /* look for a lazy unmount every 500 ms */
#define MALLOC_ARENAS 2 /* freed chunk buffers stay in few arenas: RSS */

/* true if path is a mount point in /proc/self/mountinfo (field 5); its
 * device ("major:minor", field 3) goes to dev when dev is not NULL. */
static bool mount_dev(const char *path, char *dev, size_t cap);

static bool is_mounted(const char *path)
{
    return mount_dev(path, NULL, 0);
}

static bool mount_dev(const char *path, char *dev, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[8192];
    bool found = false;

    if (!f)
        return false;
    while (!found && fgets(line, sizeof(line), f)) {
        char mp[4096];
        size_t j = 0;
        char *p = line;
        for (int field = 0; field < 4 && p; field++) {
            p = strchr(p, ' ');
            if (p)
                p++;
        }
        if (!p)
            continue;
        for (; *p && *p != ' ' && j + 1 < sizeof(mp); p++) {
            if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] && p[3]) {
                mp[j++] = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 +
                                 (p[3] - '0'));
                p += 3;
            } else {
                mp[j++] = *p;
            }
        }
        mp[j] = '\0';
        if (strcmp(mp, path) == 0) {
            found = true;
            if (dev) {
                char *f3 = strchr(line, ' ');
                f3 = f3 ? strchr(f3 + 1, ' ') : NULL;
                if (f3)
                    snprintf(dev, cap, "%.*s", (int)strcspn(f3 + 1, " "),
                             f3 + 1);
            }
        }
    }
    fclose(f);
    return found;
}

/* Best effort: raise the mount's kernel readahead (needs root). Found
 * through mountinfo, not stat(): stat would wait on our own FUSE loop. */
static void raise_readahead(const char *mnt)
{
    char dev[64] = "", path[128];
    FILE *f;

    if (!mount_dev(mnt, dev, sizeof(dev)) || !dev[0])
        return;
    snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
    f = fopen(path, "we");
    if (!f)
        return;
    fprintf(f, "%d\n", KERNEL_READAHEAD_KB);
    if (fclose(f) == 0)
        hfm_log(HFM_LOG_DEBUG, "kernel readahead of '%s' set to %d KiB", mnt,
                KERNEL_READAHEAD_KB);
}

static void run_fusermount_lazy(const char *mnt)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("fusermount3", "fusermount3", "-u", "-z", mnt, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

/* true if the directory holds anything besides . and .. */
static bool dir_has_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    bool any = false;

    if (!d)
        return false;
    while (!any && (e = readdir(d)))
        any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return any;
}

/* Checks the mount point; cleans a stale mount a killed hfmount left.
 * A non-empty directory is refused unless NONEMPTY (-o nonempty): a
 * mistyped path must not hide a directory's files. 0, or 1 with a message
 * printed. */
static int check_mountpoint(const char *mnt, bool nonempty, char *abs,
                            size_t cap)
{
    struct stat st;

    struct statfs sfs;

    /* statfs, not stat: the kernel may answer stat from a dead mount's
     * attribute cache for a second after its daemon was killed */
    if ((statfs(mnt, &sfs) < 0 && errno == ENOTCONN) ||
        (stat(mnt, &st) < 0 && errno == ENOTCONN)) {
        fprintf(stderr,
                "hfmount: '%s' is a stale mount (its hfmount process died); "
                "unmounting it\n",
                mnt);
        if (umount2(mnt, MNT_DETACH) < 0)
            run_fusermount_lazy(mnt);
    }
    if (stat(mnt, &st) < 0) {
        fprintf(stderr, "hfmount: cannot mount on '%s': %s\n", mnt,
                strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "hfmount: cannot mount on '%s': %s\n", mnt,
                strerror(ENOTDIR));
        return 1;
    }
    if (!realpath(mnt, abs)) {
        fprintf(stderr, "hfmount: cannot mount on '%s': %s\n", mnt,
                strerror(errno));
        return 1;
    }
    (void)cap;
    if (is_mounted(abs)) {
        fprintf(stderr,
                "hfmount: cannot mount on '%s': already a mount point "
                "(unmount it first: fusermount3 -u %s)\n",
                mnt, mnt);
        return 1;
    }
    if (!nonempty && dir_has_entries(abs)) {
        fprintf(stderr,
                "hfmount: cannot mount on '%s': not empty (its files would "
                "be hidden; use -o nonempty to mount anyway)\n",
                mnt);
        return 1;
    }
    if (access("/dev/fuse", R_OK | W_OK) < 0) {
        fprintf(stderr, "hfmount: cannot open /dev/fuse: %s (is the fuse "
                        "module loaded, and may this user use it?)\n",
                strerror(errno));
        return 1;
    }
    return 0;
}

static struct fuse_args build_fuse_args(const struct hfm_config *cfg)
{
    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    char opts[4096];

    snprintf(opts, sizeof(opts),
             "ro,default_permissions,fsname=hfmount,subtype=hfmount%s%s",
             cfg->fuse_opts ? "," : "", cfg->fuse_opts ? cfg->fuse_opts : "");
    if (fuse_opt_add_arg(&args, "hfmount") != 0 ||
        fuse_opt_add_arg(&args, "-o") != 0 ||
        fuse_opt_add_arg(&args, opts) != 0 ||
        (cfg->fuse_debug && fuse_opt_add_arg(&args, "-d") != 0)) {
        fuse_opt_free_args(&args);
    }
    return args;
}

struct watchdog {
    struct fuse_session *se;
    struct hub *hub;
    const char *mnt;
    pthread_t main_thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done; /* protected by lock */
};

/* The multithreaded loop joins its workers before it returns; a worker
 * waiting on a stalled transfer would hold up the unmount. When the
 * session ends (unmount, signal), fail every Hub request at once. */
static void *watchdog_main(void *arg)
{
    struct watchdog *w = arg;
    struct timespec ts;
    int ticks = 0;

    pthread_mutex_lock(&w->lock);
    while (!w->done && !fuse_session_exited(w->se)) {
        /* the kernel sets the mount's readahead from the INIT exchange,
         * which the loop answers first: raise it once that is done */
        if (++ticks == READAHEAD_AFTER_TICKS)
            raise_readahead(w->mnt);
        /* fusermount3 -u -z detaches the mount without telling us while
         * reads are in flight: notice it, fail them, end the loop */
        if (ticks > READAHEAD_AFTER_TICKS && ticks % UNMOUNT_CHECK_TICKS == 0 &&
            !is_mounted(w->mnt)) {
            hfm_log(HFM_LOG_INFO, "'%s' was unmounted", w->mnt);
            fuse_session_exit(w->se);
            hub_shutdown(w->hub);
            pthread_kill(w->main_thread, SIGTERM);
            break;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += WATCHDOG_PERIOD_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->cond, &w->lock, &ts);
    }
    pthread_mutex_unlock(&w->lock);
    hub_shutdown(w->hub);
    return NULL;
}

static void fuse_log_to_ours(enum fuse_log_level level, const char *fmt,
                             va_list ap)
{
    char line[1024];
    enum hfm_log_level l = level <= FUSE_LOG_ERR       ? HFM_LOG_ERR
                           : level <= FUSE_LOG_WARNING ? HFM_LOG_WARN
                           : level <= FUSE_LOG_INFO    ? HFM_LOG_INFO
                                                       : HFM_LOG_DEBUG;
    vsnprintf(line, sizeof(line), fmt, ap);
    hfm_log(l, "fuse: %s", line);
}

/* Single-repo mode: resolve before mounting, so a missing repo is an exit
 * status and a message, not an empty mount. Uses a short-lived hub (no
 * thread may live across the fork). */
static int resolve_root(struct hfm *h, const struct hfm_config *cfg,
                        struct hub_config *hc, struct hub_info *info)
{
    struct hub_why why;
    struct hub *tmp;
    int rc;

    if (hub_new(hc, &tmp) != HUB_OK) {
        fprintf(stderr, "hfmount: cannot start the Hub client\n");
        return -ENOMEM;
    }
    h->hub = tmp;
    hub_why_clear(&why);
    rc = hfm_resolve_repo(h, cfg->spec.type, cfg->spec.id, cfg->spec.rev,
                          info, &why);
    if (rc < 0) {
        char cause[1024];
        const char *key;
        rc = hfm_auth_cause(h, cfg->spec.type, cfg->spec.id, rc, &why, cause,
                            sizeof(cause), &key);
        fprintf(stderr, "hfmount: cannot mount '%s%s%s%s': %s%s%s%s%s\n",
                hub_repo_type_prefix(cfg->spec.type), cfg->spec.id,
                cfg->spec.rev[0] ? "@" : "", cfg->spec.rev,
                rc == -ENOENT ? "repository or revision not found"
                              : strerror(-rc),
                cause[0] || why.line[0] ? ": " : "",
                cause[0] ? cause : why.line,
                !cause[0] && why.message[0] ? ": " : "",
                !cause[0] ? why.message : "");
    }
    h->hub = NULL;
    hub_free(tmp);
    return rc;
}

int main(int argc, char **argv)
{
    struct hfm_config cfg;
    struct hfm h;
    struct hub_config hc;
    struct cache_config cc;
    struct hub_info info;
    struct fuse_args args;
    struct fuse_session *se = NULL;
    struct fuse_loop_config *loop = NULL;
    char mnt[PATH_MAX], cdir[PATH_MAX];
    char *token = NULL;
    int rc, ret = EXIT_MOUNT_FAILED;

    mallopt(M_ARENA_MAX, MALLOC_ARENAS);
    rc = hfm_config_parse(&cfg, argc, argv);
    if (rc != 0) {
        hfm_config_release(&cfg);
        return rc == 1 ? 0 : 2;
    }
    if (cfg.command != HFM_CMD_MOUNT) {
        hfm_log_set_level(cfg.log_level);
        ret = hfm_tool_main(&cfg);
        hfm_config_release(&cfg);
        return ret;
    }
    hfm_log_set_level(cfg.log_level);
    if (cfg.log_file)
        rc = hfm_log_open(HFM_LOG_FILE, cfg.log_file);
    else
        rc = hfm_log_open(cfg.foreground ? HFM_LOG_STDERR : HFM_LOG_SYSLOG,
                          NULL);
    if (rc < 0) {
        fprintf(stderr, "hfmount: cannot open log file '%s': %s\n",
                cfg.log_file, strerror(-rc));
        goto out_config;
    }
    fuse_set_log_func(fuse_log_to_ours);
    if (check_mountpoint(cfg.mountpoint, cfg.nonempty, mnt, sizeof(mnt)) != 0)
        goto out_log;
    if (hub_global_init() != HUB_OK) {
        fprintf(stderr, "hfmount: cannot initialise libcurl\n");
        goto out_log;
    }

    memset(&cc, 0, sizeof(cc));
    cc.dir = cfg.cache_dir;
    cc.max_bytes = cfg.cache_size;
    cc.mem_chunks = (int)(cfg.cache_memory / CACHE_CHUNK_SIZE);
    if (hfm_init(&h, &cfg) < 0) {
        fprintf(stderr, "hfmount: out of memory\n");
        goto out_curl;
    }
    rc = cache_new(&cc, &h.cache);
    if (rc < 0) {
        fprintf(stderr, "hfmount: cannot use cache directory '%s': %s\n",
                cfg.cache_dir, strerror(-rc));
        goto out_hfm;
    }
    if (!realpath(cfg.cache_dir, cdir))
        snprintf(cdir, sizeof(cdir), "%s", cfg.cache_dir);

    rc = hfm_config_read_token(&cfg, &token);
    if (rc < 0)
        hfm_log(HFM_LOG_WARN, "cannot read the token file '%s': %s",
                hfm_config_token_source(&cfg), strerror(-rc));
    memset(&hc, 0, sizeof(hc));
    hc.endpoint = cfg.endpoint;
    hc.token = token;
    hc.offline = cfg.offline;
    hc.max_tries = cfg.retries;
    hc.timeout_s = cfg.timeout_s;
    hc.http_proxy = cfg.http_proxy;
    hc.http_proxy_var = cfg.http_proxy_var;
    hc.https_proxy = cfg.https_proxy;
    hc.https_proxy_var = cfg.https_proxy_var;
    hc.all_proxy = cfg.all_proxy;
    hc.all_proxy_var = cfg.all_proxy_var;
    hc.no_proxy = cfg.no_proxy;

    if (cfg.single_repo) {
        if (resolve_root(&h, &cfg, &hc, &info) < 0)
            goto out_cache;
        if (hfm_set_repo_root(&h, cfg.spec.type, cfg.spec.id, cfg.spec.rev,
                              &info) < 0)
            goto out_cache;
    }

    args = build_fuse_args(&cfg);
    if (args.argc == 0) {
        fprintf(stderr, "hfmount: out of memory\n");
        goto out_cache;
    }
    se = fuse_session_new(&args, &hfm_ops, sizeof(hfm_ops), &h);
    fuse_opt_free_args(&args);
    if (!se) {
        fprintf(stderr, "hfmount: cannot create the FUSE session (bad -o "
                        "option?)\n");
        goto out_cache;
    }
    if (fuse_set_signal_handlers(se) != 0)
        goto out_session;
    if (fuse_session_mount(se, mnt) != 0) {
        fprintf(stderr,
                "hfmount: cannot mount on '%s': the kernel refused the FUSE "
                "mount (is /dev/fuse a FUSE device, and the fuse module "
                "loaded? details in the log)\n",
                cfg.mountpoint);
        goto out_signals;
    }
    if (fuse_daemonize(cfg.foreground) != 0)
        goto out_unmount;

    /* threads from here on */
    if (hub_new(&hc, &h.hub) != HUB_OK) {
        hfm_log(HFM_LOG_ERR, "cannot start the Hub client");
        goto out_unmount;
    }
    hfm_auth_set_token_hash(&h, token);
    if (cache_start(h.cache, h.hub) < 0) {
        hfm_log(HFM_LOG_ERR, "cannot start the cache writer");
        goto out_unmount;
    }
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
        token = NULL;
    }
    if (cfg.single_repo)
        hfm_log(HFM_LOG_INFO, "mounted '%s%s%s%s' (commit %s) at '%s'",
                hub_repo_type_prefix(cfg.spec.type), cfg.spec.id,
                cfg.spec.rev[0] ? "@" : "", cfg.spec.rev, info.sha, mnt);
    else
        hfm_log(HFM_LOG_INFO, "mounted %s at '%s'", cfg.endpoint, mnt);
    hfm_log(HFM_LOG_INFO, "cache '%s', up to %llu bytes%s", cdir,
            (unsigned long long)cfg.cache_size,
            cfg.offline ? ", offline" : "");

    struct watchdog wd = {.se = se, .hub = h.hub, .mnt = mnt,
                          .main_thread = pthread_self(), .done = false};
    pthread_t wd_thread;
    bool wd_started;
    pthread_mutex_init(&wd.lock, NULL);
    pthread_cond_init(&wd.cond, NULL);
    wd_started = pthread_create(&wd_thread, NULL, watchdog_main, &wd) == 0;

    loop = fuse_loop_cfg_create();
    if (loop)
        fuse_loop_cfg_set_max_threads(loop, FUSE_MAX_THREADS);
    rc = fuse_session_loop_mt(se, loop);
    if (loop)
        fuse_loop_cfg_destroy(loop);
    if (wd_started) {
        pthread_mutex_lock(&wd.lock);
        wd.done = true;
        pthread_cond_signal(&wd.cond);
        pthread_mutex_unlock(&wd.lock);
        pthread_join(wd_thread, NULL);
    }
    pthread_mutex_destroy(&wd.lock);
    pthread_cond_destroy(&wd.cond);
    ret = rc == 0 || rc == SIGINT || rc == SIGTERM || rc == SIGHUP ? 0 : 1;
    hfm_log(HFM_LOG_INFO, "unmounting '%s'", mnt);

out_unmount:
    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
out_session:
    fuse_session_destroy(se);
out_cache:
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    hub_shutdown(h.hub);  /* fetches in flight fail now */
    hfm_release(&h);      /* nodes let go of their cache files first */
    cache_free(h.cache);  /* waits for the fetches' callbacks */
    hub_free(h.hub);
    goto out_curl;
out_hfm:
    hfm_release(&h);
out_curl:
    hub_global_cleanup();
out_log:
    hfm_log_close();
out_config:
    hfm_config_release(&cfg);
    return ret;
}

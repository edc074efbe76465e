/*
 * config.c - argv and the environment, the only place either is read.
 *
 * Bad input gets one message on stderr and exit status 2, before anything
 * is mounted. Numbers go through strtol/strtoull with an end pointer and a
 * range check; sizes through hub_parse_size(). The proxy variables are
 * read here once, at start, and reach net/ through struct hub_config.
 */
#include "fs/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "net/hub.h"

#define TIMEOUT_MAX_S 3600
#define RETRIES_MAX 20

static const char usage_text[] =
    "usage: hfmount [OPTIONS] MOUNTPOINT\n"
    "       hfmount [OPTIONS] REPO[@REV] MOUNTPOINT\n"
    "       hfmount prefetch [OPTIONS] REPO[@REV] [PATTERN...]\n"
    "       hfmount status [--json] MOUNTPOINT\n"
    "       hfmount cache ls|clean [--cache-dir DIR]\n"
    "\n"
    "Mount Hugging Face Hub repositories read-only. Files are fetched on\n"
    "demand with HTTP range requests into a local, bounded, verified cache.\n"
    "\n"
    "With MOUNTPOINT alone, the whole Hub appears under it:\n"
    "  MOUNTPOINT/NS/NAME/...           model repo at its default branch\n"
    "  MOUNTPOINT/datasets/NS/NAME/...  dataset repo\n"
    "  MOUNTPOINT/spaces/NS/NAME/...    space repo\n"
    "  MOUNTPOINT/NS/NAME@REV/...       a branch, tag, 40-hex commit sha, or\n"
    "                                   refs/pr/N written refs%2Fpr%2FN\n"
    "With REPO[@REV] (ns/name, datasets/ns/name, spaces/ns/name), that one\n"
    "repo is mounted at MOUNTPOINT.\n"
    "\n"
    "A repo directory is pinned to the commit its revision resolved to when\n"
    "it was first looked up, so files never mix two commits. Extended\n"
    "attributes: user.hf.commit (repo dirs and files), user.hf.oid (git blob\n"
    "sha1, or the LFS sha256) and user.hf.size (files).\n"
    "Writes of any kind fail with EROFS; a missing path is ENOENT; an\n"
    "unreachable or failing Hub, after bounded retries, is EIO; a permission\n"
    "failure is EACCES with one log line naming the cause.\n"
    "\n"
    "Options:\n"
    "  -f, --foreground      stay in the foreground (default: daemonize once\n"
    "                        the mount is ready; exit non-zero if it fails)\n"
    "      --cache-dir DIR   chunk and metadata cache\n"
    "                        (default ${XDG_CACHE_HOME:-~/.cache}/hfmount)\n"
    "      --cache-size SIZE bound of the chunk cache, e.g. 512M, 20G\n"
    "                        (default 10G)\n"
    "      --cache-memory SIZE  bound of the chunk buffers in memory\n"
    "                        (4 MiB each), 16M to 64G (default 76M); the\n"
    "                        readahead window is all but five of them\n"
    "      --log-file FILE   log here (default: stderr in the foreground,\n"
    "                        syslog when daemonized)\n"
    "      --log-level LEVEL error, warn, info (default) or debug\n"
    "  -o OPT[,OPT...]       FUSE mount options (allow_other, ...), and the\n"
    "                        options above as key=value for /etc/fstab:\n"
    "                        cache_dir=, cache_size=, cache_memory=,\n"
    "                        log_file=, log_level=,\n"
    "                        token_file=, timeout=, retries=, offline;\n"
    "                        nonempty: mount over a directory that is not\n"
    "                        empty (refused by default)\n"
    "      --token-file FILE read the Hub token from FILE\n"
    "      --offline         no network: serve what the cache holds\n"
    "                        (also HF_HUB_OFFLINE=1)\n"
    "      --timeout SECS    connect and stall timeout (default 30)\n"
    "      --retries N       tries per request for 429/5xx/network errors\n"
    "                        (default 5)\n"
    "  -d, --debug           FUSE debug output (implies -f)\n"
    "  -V, --version         print the version and exit\n"
    "  -h, --help            print this help and exit\n"
    "\n"
    "Unmount with: fusermount3 -u MOUNTPOINT (SIGINT or SIGTERM in the\n"
    "foreground unmounts too).\n"
    "/etc/fstab (source 'hub' is the whole Hub, or a REPO[@REV]):\n"
    "  hub /mnt/hf fuse.hfmount allow_other,cache_dir=/var/cache/hfmount 0 0\n"
    "\n"
    "Environment (as huggingface_hub reads it):\n"
    "  HF_ENDPOINT     Hub URL (default https://huggingface.co)\n"
    "  HF_TOKEN        access token (never put it on the command line)\n"
    "  HF_TOKEN_PATH   token file (default $HF_HOME/token)\n"
    "  HF_HOME         default ${XDG_CACHE_HOME:-~/.cache}/huggingface\n"
    "  HF_HUB_OFFLINE  1/ON/YES/TRUE: same as --offline\n"
    "\n"
    "Commands:\n"
    "  prefetch REPO[@REV] [PATTERN...]  fill the cache with the repo's files\n"
    "                     (or those whose path matches a shell PATTERN, e.g.\n"
    "                     '*.json'), in parallel, with progress\n"
    "  status MOUNTPOINT  requests, bytes fetched, cache hits and misses,\n"
    "                     errors since mount (--json: as JSON)\n"
    "  cache ls           what the cache holds: files, chunks, bytes\n"
    "  cache clean        empty the cache (not while a mount uses it)\n"
    "\n"
    "Exit status: 0 mounted (or unmounted cleanly), 1 could not mount,\n"
    "2 bad usage.\n";

enum {
    OPT_CACHE_DIR = 256,
    OPT_CACHE_SIZE,
    OPT_CACHE_MEMORY,
    OPT_LOG_FILE,
    OPT_LOG_LEVEL,
    OPT_TOKEN_FILE,
    OPT_OFFLINE,
    OPT_TIMEOUT,
    OPT_RETRIES,
};

static const struct option long_opts[] = {
    {"foreground", no_argument, NULL, 'f'},
    {"cache-dir", required_argument, NULL, OPT_CACHE_DIR},
    {"cache-size", required_argument, NULL, OPT_CACHE_SIZE},
    {"cache-memory", required_argument, NULL, OPT_CACHE_MEMORY},
    {"log-file", required_argument, NULL, OPT_LOG_FILE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
    {"offline", no_argument, NULL, OPT_OFFLINE},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"debug", no_argument, NULL, 'd'},
    {"json", no_argument, NULL, 'j'},
    {"version", no_argument, NULL, 'V'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int usage_error(const char *fmt, const char *arg) HFM_PRINTF(1, 0);
static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "hfmount: ");
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    fprintf(stderr, fmt, arg);
#pragma GCC diagnostic pop
    fprintf(stderr, "\nTry 'hfmount --help' for more information.\n");
    return 2;
}

static bool parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static bool env_true(const char *v)
{
    return v && (strcasecmp(v, "1") == 0 || strcasecmp(v, "on") == 0 ||
                 strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0);
}

/*
 * A libcurl variable: the lower-case spelling first, then upper case; ""
 * counts as unset. *out is a copy or NULL; *name the variable it came
 * from, or NULL. false on OOM.
 */
static bool proxy_env(const char *lower, const char *upper, char **out,
                      const char **name)
{
    const char *v = getenv(lower);

    *name = lower;
    if (!v || !v[0]) {
        v = getenv(upper);
        *name = upper;
    }
    *out = NULL;
    if (!v || !v[0]) {
        *name = NULL;
        return true;
    }
    *out = strdup(v);
    return *out != NULL;
}

static char *join_path(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

/* $XDG_CACHE_HOME or ~/.cache */
static char *user_cache_home(void)
{
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    if (xdg && xdg[0] == '/')
        return strdup(xdg);
    return join_path(home && home[0] ? home : "/", ".cache");
}

static int append_opt(char **opts, const char *add)
{
    size_t n = (*opts ? strlen(*opts) + 1 : 0) + strlen(add) + 1;
    char *p = malloc(n);
    if (!p)
        return -ENOMEM;
    if (*opts)
        snprintf(p, n, "%s,%s", *opts, add);
    else
        snprintf(p, n, "%s", add);
    free(*opts);
    *opts = p;
    return 0;
}

static bool is_hub_source(const char *s)
{
    return strcmp(s, "hub") == 0 || strcmp(s, "hf") == 0 ||
           strcmp(s, "huggingface") == 0 || strcmp(s, "hfmount") == 0;
}

static char *trimmed_dup(const char *s, size_t len)
{
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    return len ? strndup(s, len) : NULL;
}

/* Options that are safe to drop: mount(8) and fstab words, and rw (the
 * mount is read-only whatever is asked). */
static bool dropped_opt(const char *o)
{
    static const char *const words[] = {"rw", "ro", "defaults", "_netdev",
                                        "nofail", "noauto", "auto", "user",
                                        "users", "nouser", "dev", "suid",
                                        "exec", "noexec", "nodev", "nosuid",
                                        "async", "sync", "atime", "noatime",
                                        "relatime", NULL};
    if (strncmp(o, "x-", 2) == 0 || strncmp(o, "comment=", 8) == 0)
        return true;
    for (int i = 0; words[i]; i++)
        if (strcmp(o, words[i]) == 0)
            return true;
    return false;
}

/* --cache-memory: a size from 16 MiB (4 chunk buffers) to 64 GiB. */
static bool parse_memory(const char *s, uint64_t *out)
{
    uint64_t v;
    if (!hub_parse_size(s, &v) || v < (16ull << 20) || v > (64ull << 30))
        return false;
    *out = v;
    return true;
}

/*
 * -o values: hfmount's own settings as key=value (so an fstab line can
 * carry them: cache_dir, cache_size, cache_memory, log_file, log_level,
 * token_file,
 * timeout, retries, offline, foreground, nonempty), mount(8) words
 * dropped, the rest passed to FUSE.
 */
static int parse_o(struct hfm_config *cfg, const char *arg)
{
    char *copy = strdup(arg), *save = NULL, *o;
    int rc = 0;

    if (!copy)
        return usage_error("%s", "out of memory");
    for (o = strtok_r(copy, ",", &save); o && rc == 0;
         o = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(o, '=');
        const char *val = eq ? eq + 1 : "";
        size_t klen = eq ? (size_t)(eq - o) : strlen(o);
#define KEY(k) (klen == sizeof(k) - 1 && strncmp(o, k, klen) == 0)
        if (KEY("cache_dir") && eq) {
            free(cfg->cache_dir);
            cfg->cache_dir = strdup(val);
        } else if (KEY("cache_size") && eq) {
            if (!hub_parse_size(val, &cfg->cache_size))
                rc = usage_error("invalid cache_size '%s'", val);
        } else if (KEY("cache_memory") && eq) {
            if (!parse_memory(val, &cfg->cache_memory))
                rc = usage_error("invalid cache_memory '%s' (16M to 64G)",
                                 val);
        } else if (KEY("log_file") && eq) {
            free(cfg->log_file);
            cfg->log_file = strdup(val);
        } else if (KEY("log_level") && eq) {
            if (hfm_log_parse_level(val, &cfg->log_level) < 0)
                rc = usage_error("invalid log_level '%s'", val);
        } else if (KEY("token_file") && eq) {
            free(cfg->token_file);
            cfg->token_file = strdup(val);
            cfg->token_file_explicit = true;
        } else if (KEY("timeout") && eq) {
            if (!parse_int(val, 1, TIMEOUT_MAX_S, &cfg->timeout_s))
                rc = usage_error("invalid timeout '%s'", val);
        } else if (KEY("retries") && eq) {
            if (!parse_int(val, 1, RETRIES_MAX, &cfg->retries))
                rc = usage_error("invalid retries '%s'", val);
        } else if (KEY("offline") && !eq) {
            cfg->offline = true;
        } else if (KEY("foreground") && !eq) {
            cfg->foreground = true;
        } else if (KEY("nonempty") && !eq) {
            cfg->nonempty = true;
        } else if (!dropped_opt(o) && append_opt(&cfg->fuse_opts, o) < 0) {
            rc = usage_error("%s", "out of memory");
        }
#undef KEY
    }
    free(copy);
    return rc;
}

int hfm_config_parse(struct hfm_config *cfg, int argc, char **argv)
{
    const char *v;
    char *base;
    int c, rc;

    memset(cfg, 0, sizeof(*cfg));
    cfg->cache_size = HFM_DEFAULT_CACHE_SIZE;
    cfg->log_level = HFM_LOG_INFO;
    optind = 1;
    opterr = 0;
    if (argc >= 2 && strcmp(argv[1], "prefetch") == 0) {
        cfg->command = HFM_CMD_PREFETCH;
    } else if (argc >= 2 && strcmp(argv[1], "status") == 0) {
        cfg->command = HFM_CMD_STATUS;
    } else if (argc >= 3 && strcmp(argv[1], "cache") == 0 &&
               (strcmp(argv[2], "ls") == 0 || strcmp(argv[2], "clean") == 0)) {
        cfg->command = strcmp(argv[2], "ls") == 0 ? HFM_CMD_CACHE_LS
                                                  : HFM_CMD_CACHE_CLEAN;
        argv++;
        argc--;
    }
    if (cfg->command != HFM_CMD_MOUNT) {
        argv++;
        argc--;
    }
    while ((c = getopt_long(argc, argv, ":fdo:Vh", long_opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            cfg->foreground = true;
            break;
        case 'd':
            cfg->foreground = true;
            cfg->fuse_debug = true;
            break;
        case 'o':
            rc = parse_o(cfg, optarg);
            if (rc != 0)
                return rc;
            break;
        case OPT_CACHE_DIR:
            free(cfg->cache_dir);
            cfg->cache_dir = strdup(optarg);
            break;
        case OPT_CACHE_SIZE:
            if (!hub_parse_size(optarg, &cfg->cache_size))
                return usage_error("invalid --cache-size '%s' (try 512M or "
                                   "20G)",
                                   optarg);
            break;
        case OPT_CACHE_MEMORY:
            if (!parse_memory(optarg, &cfg->cache_memory))
                return usage_error("invalid --cache-memory '%s' (16M to "
                                   "64G)",
                                   optarg);
            break;
        case OPT_LOG_FILE:
            free(cfg->log_file);
            cfg->log_file = strdup(optarg);
            break;
        case OPT_LOG_LEVEL:
            if (hfm_log_parse_level(optarg, &cfg->log_level) < 0)
                return usage_error("invalid --log-level '%s' (error, warn, "
                                   "info or debug)",
                                   optarg);
            break;
        case OPT_TOKEN_FILE:
            free(cfg->token_file);
            cfg->token_file = strdup(optarg);
            cfg->token_file_explicit = true;
            break;
        case OPT_OFFLINE:
            cfg->offline = true;
            break;
        case OPT_TIMEOUT:
            if (!parse_int(optarg, 1, TIMEOUT_MAX_S, &cfg->timeout_s))
                return usage_error("invalid --timeout '%s' (1 to 3600 "
                                   "seconds)",
                                   optarg);
            break;
        case OPT_RETRIES:
            if (!parse_int(optarg, 1, RETRIES_MAX, &cfg->retries))
                return usage_error("invalid --retries '%s' (1 to 20)", optarg);
            break;
        case 'j':
            cfg->json = true;
            break;
        case 'V':
            printf("hfmount %s\n", HFM_VERSION);
            return 1;
        case 'h':
            fputs(usage_text, stdout);
            return 1;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (cfg->command == HFM_CMD_PREFETCH) {
        const char *spec;
        if (argc - optind < 1)
            return usage_error("%s", "prefetch: missing REPO[@REV]");
        spec = argv[optind];
        if (hub_parse_repo_spec(spec, strlen(spec), &cfg->spec) != HUB_OK)
            return usage_error("invalid repo '%s' (expected ns/name, "
                               "datasets/ns/name or spaces/ns/name, "
                               "optionally @REV)",
                               spec);
        for (int i = optind + 1; i < argc; i++) {
            if (cfg->npatterns == HFM_MAX_PATTERNS)
                return usage_error("%s", "prefetch: too many patterns");
            cfg->patterns[cfg->npatterns++] = argv[i];
        }
        cfg->mountpoint = strdup("");
    } else if (cfg->command == HFM_CMD_CACHE_LS ||
               cfg->command == HFM_CMD_CACHE_CLEAN) {
        if (argc - optind != 0)
            return usage_error("%s", "cache: unexpected argument");
        cfg->mountpoint = strdup("");
    } else if (cfg->command == HFM_CMD_STATUS) {
        if (argc - optind != 1)
            return usage_error("%s", "status: expected one MOUNTPOINT");
        cfg->mountpoint = strdup(argv[optind]);
    } else if (argc - optind == 1) {
        cfg->mountpoint = strdup(argv[optind]);
    } else if (argc - optind == 2 && is_hub_source(argv[optind])) {
        /* fstab / mount.fuse3: "hub MOUNTPOINT" is the whole Hub */
        cfg->mountpoint = strdup(argv[optind + 1]);
    } else if (argc - optind == 2) {
        const char *spec = argv[optind];
        if (hub_parse_repo_spec(spec, strlen(spec), &cfg->spec) != HUB_OK)
            return usage_error("invalid repo '%s' (expected ns/name, "
                               "datasets/ns/name or spaces/ns/name, "
                               "optionally @REV)",
                               spec);
        cfg->single_repo = true;
        cfg->mountpoint = strdup(argv[optind + 1]);
    } else {
        return usage_error("%s", argc - optind == 0
                                     ? "missing MOUNTPOINT"
                                     : "too many arguments");
    }

    v = getenv("HF_ENDPOINT");
    cfg->endpoint = strdup(v && v[0] ? v : HUB_DEFAULT_ENDPOINT);
    if (strncmp(cfg->endpoint, "http://", 7) != 0 &&
        strncmp(cfg->endpoint, "https://", 8) != 0)
        return usage_error("invalid HF_ENDPOINT '%s' (expected an http(s) "
                           "URL)",
                           cfg->endpoint);
    if (env_true(getenv("HF_HUB_OFFLINE")) ||
        env_true(getenv("TRANSFORMERS_OFFLINE")))
        cfg->offline = true;

    /* read once: net/ picks each attempt's proxy from these */
    if (!proxy_env("http_proxy", "HTTP_PROXY", &cfg->http_proxy,
                   &cfg->http_proxy_var) ||
        !proxy_env("https_proxy", "HTTPS_PROXY", &cfg->https_proxy,
                   &cfg->https_proxy_var) ||
        !proxy_env("all_proxy", "ALL_PROXY", &cfg->all_proxy,
                   &cfg->all_proxy_var) ||
        !proxy_env("no_proxy", "NO_PROXY", &cfg->no_proxy, &v))
        return usage_error("%s", "out of memory");

    /* token source: --token-file > HF_TOKEN > HF_TOKEN_PATH > HF_HOME */
    v = getenv("HF_TOKEN");
    if (!cfg->token_file_explicit && v)
        cfg->token_env = trimmed_dup(v, strlen(v));
    if (!cfg->token_file) {
        v = getenv("HF_TOKEN_PATH");
        if (v && v[0]) {
            cfg->token_file = strdup(v);
            cfg->token_file_explicit = true;
        } else {
            v = getenv("HF_HOME");
            if (v && v[0]) {
                cfg->token_file = join_path(v, "token");
            } else {
                base = user_cache_home();
                char *hf = base ? join_path(base, "huggingface") : NULL;
                cfg->token_file = hf ? join_path(hf, "token") : NULL;
                free(hf);
                free(base);
            }
        }
    }
    if (!cfg->cache_dir) {
        base = user_cache_home();
        cfg->cache_dir = base ? join_path(base, "hfmount") : NULL;
        free(base);
    }
    if (!cfg->mountpoint || !cfg->endpoint || !cfg->cache_dir)
        return usage_error("%s", "out of memory");
    return 0;
}

int hfm_config_read_token(const struct hfm_config *cfg, char **out)
{
    char buf[HFM_TOKEN_MAX];
    ssize_t n;
    int fd;

    *out = NULL;
    if (cfg->token_env) {
        *out = strdup(cfg->token_env);
        return *out ? 0 : -ENOMEM;
    }
    if (!cfg->token_file)
        return 0;
    fd = open(cfg->token_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0)
        return -errno;
    *out = trimmed_dup(buf, (size_t)n);
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

const char *hfm_config_token_source(const struct hfm_config *cfg)
{
    if (cfg->token_env)
        return "HF_TOKEN";
    return cfg->token_file ? cfg->token_file : "(none)";
}

void hfm_config_release(struct hfm_config *cfg)
{
    free(cfg->mountpoint);
    free(cfg->cache_dir);
    free(cfg->log_file);
    free(cfg->fuse_opts);
    free(cfg->endpoint);
    if (cfg->token_env) {
        explicit_bzero(cfg->token_env, strlen(cfg->token_env));
        free(cfg->token_env);
    }
    free(cfg->token_file);
    free(cfg->http_proxy);
    free(cfg->https_proxy);
    free(cfg->all_proxy);
    free(cfg->no_proxy);
    memset(cfg, 0, sizeof(*cfg));
}

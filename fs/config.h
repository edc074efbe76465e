/*
 * config.h - the command line and the environment, read in one place.
 *
 * fs/config.c alone calls getenv() and reads argv. It resolves where the
 * token comes from (huggingface_hub's order: --token-file, HF_TOKEN,
 * HF_TOKEN_PATH, $HF_HOME/token, ~/.cache/huggingface/token) so the token
 * can be read again later (hfm_config_read_token()) without the
 * environment. It reads libcurl's proxy variables once, for net/ (which
 * tells libcurl never to read them itself).
 *
 * Ownership: struct hfm_config is caller storage; hfm_config_release()
 * frees its strings (and wipes the token).
 * Threads: parse before threads start; hfm_config_read_token() is
 * thread-safe.
 */
#ifndef HFM_FS_CONFIG_H
#define HFM_FS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "net/hub_parse.h"
#include "net/log.h"

#define HFM_DEFAULT_CACHE_SIZE (10ull * 1024 * 1024 * 1024)
#define HFM_TOKEN_MAX 4096

enum hfm_command {
    HFM_CMD_MOUNT = 0,
    HFM_CMD_PREFETCH, /* hfmount prefetch REPO[@REV] [PATTERN...] */
    HFM_CMD_STATUS,   /* hfmount status MOUNTPOINT */
    HFM_CMD_CACHE_LS, /* hfmount cache ls */
    HFM_CMD_CACHE_CLEAN, /* hfmount cache clean */
};

#define HFM_MAX_PATTERNS 64

struct hfm_config {
    enum hfm_command command;
    char *patterns[HFM_MAX_PATTERNS]; /* prefetch: borrowed from argv */
    int npatterns;
    bool json;                 /* status --json */
    char *mountpoint;
    bool single_repo;
    struct hub_repo_spec spec; /* when single_repo, and for prefetch */
    bool foreground;
    char *cache_dir;
    uint64_t cache_size;
    uint64_t cache_memory;     /* chunk buffers' bound; 0: the cache's */
    char *log_file;            /* NULL: stderr (-f) or syslog */
    enum hfm_log_level log_level;
    char *fuse_opts;           /* -o values, comma joined, or NULL */
    bool nonempty;             /* -o nonempty: mount over a non-empty dir */
    bool fuse_debug;
    char *endpoint;
    bool offline;
    int timeout_s;
    int retries;
    /* token source, in order of precedence */
    char *token_env;           /* HF_TOKEN value, or NULL */
    char *token_file;          /* --token-file, HF_TOKEN_PATH, or HF_HOME/token */
    bool token_file_explicit;  /* --token-file or HF_TOKEN_PATH */
    /* libcurl's proxy variables (lower case first, "" is unset), or NULL;
     * each *_var names the variable the value came from (a static
     * string), for messages. Passed to struct hub_config. */
    char *http_proxy;          /* http_proxy, HTTP_PROXY */
    const char *http_proxy_var;
    char *https_proxy;         /* https_proxy, HTTPS_PROXY */
    const char *https_proxy_var;
    char *all_proxy;           /* all_proxy, ALL_PROXY */
    const char *all_proxy_var;
    char *no_proxy;            /* no_proxy, NO_PROXY */
};

/* 0: run; 1: done, exit 0 (--help, --version); 2: usage error, message
 * printed, exit 2. */
int hfm_config_parse(struct hfm_config *cfg, int argc, char **argv)
    HFM_MUST_CHECK;
void hfm_config_release(struct hfm_config *cfg);

/* The token now: HF_TOKEN captured at start, else the token file read
 * again (trimmed). *out is malloc'd or NULL (no token). 0 or -errno. */
int hfm_config_read_token(const struct hfm_config *cfg, char **out)
    HFM_MUST_CHECK;
/* Where the token came from, for messages ("HF_TOKEN", a file path). */
const char *hfm_config_token_source(const struct hfm_config *cfg);

#endif /* HFM_FS_CONFIG_H */

/*
 * hub_parse.h - pure parsers for what the Hub sends: tree listing pages,
 * repo info, whoami, Link headers, Content-Range, RateLimit, dates, names,
 * repo specs and sizes; and the NO_PROXY host match.
 *
 * Every parser takes (buf, len) or a NUL-terminated header value, has no
 * side effects but its outputs, allocates only into its outputs, and treats
 * the input as hostile: each one has a libFuzzer target in tests/fuzz/.
 *
 * Ownership: outputs are caller storage; heap members are freed by the
 * matching _release(). On failure outputs are left empty/released.
 * Threads: thread-safe (no shared state).
 * Errors: enum hub_err (HUB_E_PROTOCOL for malformed input, HUB_E_TOO_BIG
 * past a limit, HUB_E_NOMEM).
 * Limits: HUB_TREE_MAX_ENTRIES entries per directory, HUB_JSON_MAX_BYTES a
 * page, HUB_NAME_MAX bytes a name, HUB_PATH_MAX bytes a path.
 */
#ifndef HFM_NET_HUB_PARSE_H
#define HFM_NET_HUB_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/hub_err.h"

#define HUB_TREE_MAX_ENTRIES 200000
#define HUB_JSON_MAX_BYTES (64u * 1024 * 1024)
#define HUB_NAME_MAX 255
#define HUB_PATH_MAX 4096
#define HUB_ID_MAX 256
#define HUB_REV_MAX 256
/* A size above this is absurd for one Hub file (HH refuses > 50 GB over
 * plain HTTP; real files reach a few hundred GB). */
#define HUB_FILE_SIZE_MAX (UINT64_C(1) << 42) /* 4 TiB */
/* A NO_PROXY entry this long or longer is ignored (no host name is). */
#define HUB_NO_PROXY_ENTRY_MAX 256

enum hub_repo_type {
    HUB_REPO_MODEL = 0,
    HUB_REPO_DATASET,
    HUB_REPO_SPACE,
};

/* "models", "datasets", "spaces" (API plural) */
const char *hub_repo_type_plural(enum hub_repo_type type);
/* "", "datasets/", "spaces/": how resolve URLs, web pages and the mount's
 * layout name a repo of this type before its id */
const char *hub_repo_type_prefix(enum hub_repo_type type);

struct hub_tree_entry {
    char *name;        /* one path component, checked by hub_name_ok() */
    bool is_dir;
    uint64_t size;     /* bytes (lfs.size when present); 0 for a directory */
    char oid[65];      /* git blob sha1 (40 hex) or tree id; "" if none */
    char sha256[65];   /* lfs.oid (64 hex lower case), "" if not LFS */
};

struct hub_tree {
    struct hub_tree_entry *entries; /* after hub_tree_finish(): sorted by name, unique */
    size_t count;
    size_t cap;
    size_t skipped; /* entries dropped as hostile/invalid */
    bool truncated; /* a listing stopped at its bound with pages left */
};

void hub_tree_init(struct hub_tree *tree);
void hub_tree_release(struct hub_tree *tree);

/*
 * Parses one page of GET /api/{type}s/{id}/tree/{rev}/{dir} (a JSON array)
 * and appends the direct children of dir to tree. dir is "" for the root,
 * else a path without leading or trailing '/'. An entry is skipped (counted
 * in tree->skipped, first reason in why->line) when its "path" is not
 * dir + "/" + name with hub_name_ok(name), its type is not "file" or
 * "directory", its size is negative, not an integer or over
 * HUB_FILE_SIZE_MAX, or its oid/lfs.oid is not hex of the right length.
 * A body that is not a JSON array is HUB_E_PROTOCOL; more than
 * HUB_TREE_MAX_ENTRIES in tree is HUB_E_TOO_BIG.
 */
HFM_MUST_CHECK enum hub_err hub_parse_tree_page(const char *buf, size_t len,
                                                const char *dir,
                                                struct hub_tree *tree,
                                                struct hub_why *why);
/* Sorts by name (strcmp) and drops duplicate names (keeps the first seen,
 * counts the rest in skipped). */
void hub_tree_finish(struct hub_tree *tree);

struct hub_info {
    char id[HUB_ID_MAX]; /* canonical "ns/name" (or legacy "name") */
    char sha[41];        /* 40 hex lower case */
    int64_t mtime;       /* lastModified as Unix seconds, 0 if absent */
    bool is_private;
    int gated;           /* 0 false, 1 "auto", 2 "manual" (other truthy: 2) */
    bool disabled;
};

/* GET /api/{type}s/{id}[/revision/{rev}] body. "sha" is required (40 hex,
 * upper case folded); "id" optional. */
HFM_MUST_CHECK enum hub_err hub_parse_info(const char *buf, size_t len,
                                           struct hub_info *out);

#define HUB_WHOAMI_MAX_NS 32
#define HUB_WHOAMI_NS_MAX 97

struct hub_whoami {
    char name[128];     /* user or org name */
    char type[16];      /* "user", "org", "app" */
    char role[32];      /* auth.accessToken.role: read|write|fineGrained|... */
    bool fine_grained;  /* role == "fineGrained" */
    bool can_read_gated; /* auth.accessToken.fineGrained.canReadGatedRepos */
    /* orgs[].name, at most HUB_WHOAMI_MAX_NS */
    char orgs[HUB_WHOAMI_MAX_NS][HUB_WHOAMI_NS_MAX];
    size_t norgs;
    /* fine-grained: entity names whose scoped permissions include
     * "repo.content.read" */
    char content_read[HUB_WHOAMI_MAX_NS][HUB_WHOAMI_NS_MAX];
    size_t ncontent_read;
};

HFM_MUST_CHECK enum hub_err hub_parse_whoami(const char *buf, size_t len,
                                             struct hub_whoami *out);

/* One page of GET /api/models?author=NS (array of {"id": "NS/name"}):
 * appends each name after "NS/" that passes hub_name_ok() to tree as a
 * directory entry. Entries of another namespace are skipped. */
HFM_MUST_CHECK enum hub_err hub_parse_repo_list(const char *buf, size_t len,
                                                const char *ns,
                                                struct hub_tree *tree,
                                                struct hub_why *why);

/*
 * RFC 8288 Link header value: finds the URI-reference whose rel includes
 * "next" (rel="next", rel=next, rel="prev next"), copies it to out (NUL
 * terminated). false if none, or it does not fit out_len, or it holds a
 * control byte or space.
 */
bool hub_parse_link_next(const char *value, char *out, size_t out_len);

/* "bytes FIRST-LAST/TOTAL" (TOTAL may be "*": *total = UINT64_MAX).
 * Requires FIRST <= LAST and LAST < TOTAL when TOTAL is known. */
HFM_MUST_CHECK enum hub_err hub_parse_content_range(const char *value,
                                                    uint64_t *first,
                                                    uint64_t *last,
                                                    uint64_t *total);

/* RateLimit: "resolvers";r=0;t=57  -> *remaining=0, *reset_s=57.
 * false if unparsable. Either field missing -> -1. */
bool hub_parse_ratelimit(const char *value, long *remaining, long *reset_s);

/* Retry-After: delay-seconds only (HTTP-date -> false). */
bool hub_parse_retry_after(const char *value, long *seconds);

/* ISO 8601 "2024-02-19T11:06:12.000Z" (fraction optional, Z or +hh:mm) to
 * Unix seconds. */
bool hub_parse_iso8601(const char *s, int64_t *out);

/* A showable path component: 1..HUB_NAME_MAX bytes, not "." or "..", no '/',
 * no NUL, no control byte (< 0x20, 0x7f). */
bool hub_name_ok(const char *name, size_t len);

/* A repo id part (namespace or name): letters, digits, "-_.", 1..96 bytes,
 * no leading/trailing '-' or '.', no "--" or "..". */
bool hub_repo_part_ok(const char *s, size_t len);

/* A revision: 1..HUB_REV_MAX - 1 bytes (fits char[HUB_REV_MAX]), no control
 * byte, no "..", does not start or end with '/'. */
bool hub_rev_ok(const char *s, size_t len);

struct hub_repo_spec {
    enum hub_repo_type type;
    char id[HUB_ID_MAX];   /* "ns/name" */
    char rev[HUB_REV_MAX]; /* "" when no @REV was given */
};

/*
 * "ns/name", "datasets/ns/name", "spaces/ns/name", "models/ns/name", each
 * optionally followed by "@REV". In REV, "%2F" (either case) decodes to '/'
 * so "refs%2Fpr%2F1" works as in a path component. HUB_E_PROTOCOL if bad.
 */
HFM_MUST_CHECK enum hub_err hub_parse_repo_spec(const char *s, size_t len,
                                                struct hub_repo_spec *out);

/* "512M", "20G", "1.5G", "4096", "10GiB", "100k" (K/M/G/T, powers of 1024,
 * optional "B"/"iB") -> bytes. false on junk, overflow or 0. */
bool hub_parse_size(const char *s, uint64_t *out);

/* Percent-encodes s into out: unreserved bytes (ALPHA DIGIT -._~) kept, and
 * '/' kept when keep_slash; everything else %XX. false if it does not fit. */
bool hub_url_escape(const char *s, bool keep_slash, char *out, size_t out_len);

/*
 * Whether host is exempt from the proxy by list, a NO_PROXY value: "*", or
 * entries separated by commas and blanks, each a host name (matching
 * itself and its subdomains, any case; a leading '.' and a trailing '.'
 * ignored), an IP address ("10.1.2.3", "::1", "[::1]") or a CIDR block
 * ("10.0.0.0/8", "fd00::/8"). An IP host matches IP entries only (by
 * address, so "::0:1" is "::1"); a name host, name entries only. host is a
 * URL's host: a name, IPv4, or IPv6 with or without brackets, a trailing
 * '.' ignored. Entries of HUB_NO_PROXY_ENTRY_MAX bytes or more, unparsable
 * addresses and bad prefix lengths match nothing. A NULL or empty list or
 * host: false.
 */
bool hub_no_proxy_match(const char *list, const char *host);

#endif /* HFM_NET_HUB_PARSE_H */

/*
 * hub_parse.c - pure parsers for what the Hub sends: tree pages, repo info,
 * whoami, namespace listings, Link, Content-Range, RateLimit, Retry-After,
 * ISO 8601 dates, names, repo specs, sizes, URL escaping, and the NO_PROXY
 * host match.
 *
 * Everything here treats its input as hostile (each parser has a libFuzzer
 * target in tests/fuzz/): no recursion but cJSON's own (depth-capped at
 * CJSON_NESTING_LIMIT), every copy bounded by its destination, every number
 * range-checked, no output written but the caller's.
 *
 * JSON strings may hold NUL, raw or as the escape \u0000, which cJSON keeps
 * inside valuestring so that strlen() sees a shorter, different name. Before
 * parsing, a private copy of the body has each raw NUL and each \u0000 turned
 * into byte 0x01 (same length, same structure): every string that held a
 * NUL then holds a control byte, which the name, type and hex checks reject.
 *
 * Threads: no shared state; every function is thread-safe.
 */
#include "net/hub_parse.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* Bytes of a hostile name quoted in why->line. */
#define QUOTE_MAX 80
/* Growth of tree->entries: first allocation, then doubling. */
#define TREE_FIRST_CAP 64
#define REPO_PART_MAX  96
#define SHA1_HEX       40
#define SHA256_HEX     64
/* Fraction digits hub_parse_size() honours ("1.5G"); further ones only need
 * to be digits. 10^6 * 2^40 stays far below UINT64_MAX. */
#define SIZE_FRAC_DIGITS 6
/* RFC 8941 sf-integer: at most 15 digits. */
#define SF_INT_DIGITS 15

/* ---- small character helpers (locale-free) ---- */

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_ctl(int c)
{
    return (c >= 0 && c < 0x20) || c == 0x7f;
}

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static int hex_val(int c)
{
    if (is_digit(c))
        return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* RFC 9110 tchar */
static bool is_tchar(int c)
{
    return c > 0 &&
           (is_alpha(c) || is_digit(c) || strchr("!#$%&'*+-.^_`|~", c));
}

static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* s is exactly n hex digits; copies them lower-cased into out[n + 1]. */
static bool hex_copy(char *out, const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (hex_val((unsigned char)s[i]) < 0)
            return false;
        out[i] = (char)lower((unsigned char)s[i]);
    }
    out[n] = '\0';
    return true;
}

/* Copies s into out[cap] for a log line: control bytes become '?', a long
 * string ends in "...". */
static void quote_copy(char *out, size_t cap, const char *s)
{
    size_t i = 0;

    for (; s[i] && i + 1 < cap; i++)
        out[i] = is_ctl((unsigned char)s[i]) ? '?' : s[i];
    out[i] = '\0';
    if (s[i] && cap >= 4)
        memcpy(out + cap - 4, "...", 4);
}

/* A printable string that fits out[cap]. */
static bool str_copy(char *out, size_t cap, const char *s)
{
    size_t n = strlen(s);

    if (n >= cap)
        return false;
    for (size_t i = 0; i < n; i++)
        if (is_ctl((unsigned char)s[i]))
            return false;
    memcpy(out, s, n + 1);
    return true;
}

/* Parses digits at *pp into a uint64_t: at least one, no overflow. */
static bool parse_u64(const char **pp, uint64_t *out)
{
    const char *p = *pp;
    uint64_t v = 0;

    if (!is_digit(*p))
        return false;
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *pp = p;
    *out = v;
    return true;
}

/* ---- names ---- */

bool hub_name_ok(const char *name, size_t len)
{
    if (!name || len == 0 || len > HUB_NAME_MAX)
        return false;
    if ((len == 1 && name[0] == '.') ||
        (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || is_ctl(c))
            return false;
    }
    return true;
}

bool hub_repo_part_ok(const char *s, size_t len)
{
    if (!s || len == 0 || len > REPO_PART_MAX)
        return false;
    if (s[0] == '-' || s[0] == '.' || s[len - 1] == '-' || s[len - 1] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_' && c != '.')
            return false;
        if (i > 0 && (c == '-' || c == '.') && s[i - 1] == c)
            return false;
    }
    return true;
}

bool hub_rev_ok(const char *s, size_t len)
{
    if (!s || len == 0 || len >= HUB_REV_MAX)
        return false;
    if (s[0] == '/' || s[len - 1] == '/')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (is_ctl((unsigned char)s[i]))
            return false;
        if (i > 0 && s[i] == '.' && s[i - 1] == '.')
            return false;
    }
    return true;
}

/* A canonical repo id: "ns/name", or a legacy "name". */
static bool repo_id_ok(const char *id)
{
    const char *slash = strchr(id, '/');

    if (!slash)
        return hub_repo_part_ok(id, strlen(id));
    return hub_repo_part_ok(id, (size_t)(slash - id)) &&
           hub_repo_part_ok(slash + 1, strlen(slash + 1));
}

const char *hub_repo_type_plural(enum hub_repo_type type)
{
    switch (type) {
    case HUB_REPO_MODEL:
        return "models";
    case HUB_REPO_DATASET:
        return "datasets";
    case HUB_REPO_SPACE:
        return "spaces";
    }
    return "unknown";
}

const char *hub_repo_type_prefix(enum hub_repo_type type)
{
    switch (type) {
    case HUB_REPO_MODEL:
        return "";
    case HUB_REPO_DATASET:
        return "datasets/";
    case HUB_REPO_SPACE:
        return "spaces/";
    }
    return "";
}

static const struct {
    const char *prefix;
    enum hub_repo_type type;
} repo_prefixes[] = {
    {"models", HUB_REPO_MODEL},
    {"datasets", HUB_REPO_DATASET},
    {"spaces", HUB_REPO_SPACE},
};

/* Decodes REV (only %2F / %2f) into out[HUB_REV_MAX] and checks it. */
static bool rev_decode(const char *s, size_t len, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (o + 1 >= HUB_REV_MAX)
            return false;
        if (s[i] == '%' && i + 2 < len && s[i + 1] == '2' &&
            (s[i + 2] == 'F' || s[i + 2] == 'f')) {
            out[o++] = '/';
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return hub_rev_ok(out, o);
}

enum hub_err hub_parse_repo_spec(const char *s, size_t len,
                                 struct hub_repo_spec *out)
{
    const char *seg[3];
    size_t seg_len[3], nseg = 0, idlen, start = 0;
    const char *at;
    size_t k = 0;

    memset(out, 0, sizeof(*out));
    if (!s || len == 0)
        return HUB_E_PROTOCOL;
    at = memchr(s, '@', len);
    idlen = at ? (size_t)(at - s) : len;

    for (size_t i = 0; i <= idlen; i++) {
        if (i < idlen && s[i] != '/')
            continue;
        if (nseg == 3)
            goto bad;
        seg[nseg] = s + start;
        seg_len[nseg++] = i - start;
        start = i + 1;
    }
    if (nseg == 3) {
        size_t t;
        for (t = 0; t < sizeof(repo_prefixes) / sizeof(repo_prefixes[0]); t++) {
            if (seg_len[0] == strlen(repo_prefixes[t].prefix) &&
                memcmp(seg[0], repo_prefixes[t].prefix, seg_len[0]) == 0)
                break;
        }
        if (t == sizeof(repo_prefixes) / sizeof(repo_prefixes[0]))
            goto bad;
        out->type = repo_prefixes[t].type;
        k = 1;
    } else if (nseg != 2) {
        goto bad;
    }
    if (!hub_repo_part_ok(seg[k], seg_len[k]) ||
        !hub_repo_part_ok(seg[k + 1], seg_len[k + 1]))
        goto bad;
    /* Two parts of at most REPO_PART_MAX bytes always fit HUB_ID_MAX. */
    memcpy(out->id, seg[k], seg_len[k]);
    out->id[seg_len[k]] = '/';
    memcpy(out->id + seg_len[k] + 1, seg[k + 1], seg_len[k + 1]);
    out->id[seg_len[k] + 1 + seg_len[k + 1]] = '\0';

    if (at && !rev_decode(at + 1, len - idlen - 1, out->rev))
        goto bad;
    return HUB_OK;
bad:
    memset(out, 0, sizeof(*out));
    return HUB_E_PROTOCOL;
}

/* ---- sizes, escaping ---- */

bool hub_parse_size(const char *s, uint64_t *out)
{
    uint64_t ip, frac = 0, scale = 1, mult = 1, v, add;
    const char *p = s;
    bool has_frac = false;
    int digits = 0;

    *out = 0;
    if (!p || !parse_u64(&p, &ip))
        return false;
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            return false;
        for (; is_digit(*p); p++) {
            if (digits < SIZE_FRAC_DIGITS) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                scale *= 10;
                digits++;
            }
        }
        has_frac = true;
    }
    switch (lower((unsigned char)*p)) {
    case 'k':
        mult = UINT64_C(1) << 10;
        break;
    case 'm':
        mult = UINT64_C(1) << 20;
        break;
    case 'g':
        mult = UINT64_C(1) << 30;
        break;
    case 't':
        mult = UINT64_C(1) << 40;
        break;
    default:
        break;
    }
    if (mult != 1)
        p++;
    if (lower((unsigned char)*p) == 'i') {
        if (mult == 1)
            return false;
        p++;
        if (lower((unsigned char)*p) != 'b')
            return false;
        p++;
    } else if (lower((unsigned char)*p) == 'b') {
        p++;
    }
    if (*p != '\0' || (has_frac && mult == 1))
        return false;
    if (ip > UINT64_MAX / mult)
        return false;
    v = ip * mult;
    add = frac * mult / scale;
    if (v > UINT64_MAX - add)
        return false;
    v += add;
    if (v == 0)
        return false;
    *out = v;
    return true;
}

static bool is_unreserved(int c)
{
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

bool hub_url_escape(const char *s, bool keep_slash, char *out, size_t out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (!out || out_len == 0)
        return false;
    if (!s)
        goto too_long;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            if (o + 1 >= out_len)
                goto too_long;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= out_len)
                goto too_long;
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0xf];
        }
    }
    out[o] = '\0';
    return true;
too_long:
    out[0] = '\0';
    return false;
}

/* ---- NO_PROXY ---- */

/* An IP entry ("addr" or "addr/bits") against an IP host; the host's
 * family decides the entry's. */
static bool ip_matches(const char *entry, const char *host)
{
    unsigned char a[16], b[16];
    char addr[INET6_ADDRSTRLEN];
    const char *slash = strchr(entry, '/');
    size_t n = slash ? (size_t)(slash - entry) : strlen(entry);
    int family = strchr(host, ':') ? AF_INET6 : AF_INET;
    long bits = family == AF_INET6 ? 128 : 32;
    long max = bits;

    if (n == 0 || n >= sizeof(addr))
        return false;
    memcpy(addr, entry, n);
    addr[n] = '\0';
    if (inet_pton(family, addr, a) != 1 || inet_pton(family, host, b) != 1)
        return false;
    if (slash) {
        char *end;
        bits = strtol(slash + 1, &end, 10);
        if (end == slash + 1 || *end || bits < 0 || bits > max)
            return false;
    }
    for (long i = 0; i < bits / 8; i++)
        if (a[i] != b[i])
            return false;
    if (bits % 8) {
        unsigned char mask = (unsigned char)(0xff << (8 - bits % 8));
        if ((a[bits / 8] & mask) != (b[bits / 8] & mask))
            return false;
    }
    return true;
}

bool hub_no_proxy_match(const char *list, const char *host)
{
    char ip[INET6_ADDRSTRLEN];
    unsigned char tmp[16];
    bool host_is_ip = false;
    const char *p = list;
    size_t hl;

    if (!list || !host)
        return false;
    hl = strlen(host);
    if (host[0] == '[') {
        if (hl < 2 || host[hl - 1] != ']')
            return false;
        host++;
        hl -= 2;
    }
    if (hl > 0 && host[hl - 1] == '.')
        hl--;
    if (hl == 0)
        return false;
    /* no IP literal is this long; a name may be, and is compared as one */
    if (hl < sizeof(ip)) {
        memcpy(ip, host, hl);
        ip[hl] = '\0';
        host_is_ip = inet_pton(AF_INET, ip, tmp) == 1 ||
                     inet_pton(AF_INET6, ip, tmp) == 1;
    }
    while (*p) {
        char entry[HUB_NO_PROXY_ENTRY_MAX];
        size_t len = strcspn(p, ", \t");
        size_t n = len;
        const char *e = p;
        if (n > 0 && n < sizeof(entry)) {
            if (*e == '.' && n > 1) {
                e++;
                n--;
            }
            if (e[0] == '[' && n > 2 && e[n - 1] == ']') {
                e++;
                n -= 2;
            }
            memcpy(entry, e, n);
            entry[n] = '\0';
            if (n > 1 && entry[n - 1] == '.')
                entry[--n] = '\0';
            if (strcmp(entry, "*") == 0)
                return true;
            if (host_is_ip && ip_matches(entry, ip))
                return true;
            if (!host_is_ip && ((hl == n && strncasecmp(host, entry, n) == 0) ||
                                (hl > n && host[hl - n - 1] == '.' &&
                                 strncasecmp(host + hl - n, entry, n) == 0)))
                return true;
        }
        p += len; /* the raw entry: the strips above shrank n only */
        p += strspn(p, ", \t");
    }
    return false;
}

/* ---- headers ---- */

/* Reads a Link param value (token or quoted-string) at p; sets *has_next
 * when its space-separated list holds "next" (any case). Returns the byte
 * after the value, NULL if malformed. */
static const char *link_param_value(const char *p, bool *has_next)
{
    bool quoted = (*p == '"');
    size_t tok = 0, n = 0;
    bool match = true;

    *has_next = false;
    if (quoted)
        p++;
    for (;; p++) {
        int c = (unsigned char)*p;
        if (quoted) {
            if (c == '\0')
                return NULL;
            if (c == '"') {
                p++;
                break;
            }
            if (c == '\\') {
                p++;
                c = (unsigned char)*p;
                if (c == '\0')
                    return NULL;
            }
        } else if (!is_tchar(c)) {
            break;
        }
        n++;
        if (c == ' ' || c == '\t') {
            if (tok == 4 && match)
                *has_next = true;
            tok = 0;
            match = true;
            continue;
        }
        if (tok >= 4 || lower(c) != "next"[tok])
            match = false;
        tok++;
    }
    if (!quoted && n == 0)
        return NULL;
    if (tok == 4 && match)
        *has_next = true;
    return p;
}

/* Skips to the next ',' that is outside <...> and "...", or to the end. */
static const char *link_resync(const char *p)
{
    while (*p && *p != ',') {
        if (*p == '<') {
            const char *gt = strchr(p, '>');
            p = gt ? gt + 1 : p + strlen(p);
        } else if (*p == '"') {
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1])
                    p++;
            if (*p)
                p++;
        } else {
            p++;
        }
    }
    return p;
}

static bool link_copy_uri(const char *uri, size_t n, char *out, size_t out_len)
{
    if (n == 0 || n >= out_len)
        return false;
    for (size_t i = 0; i < n; i++)
        if (uri[i] == ' ' || is_ctl((unsigned char)uri[i]))
            return false;
    memcpy(out, uri, n);
    out[n] = '\0';
    return true;
}

bool hub_parse_link_next(const char *value, char *out, size_t out_len)
{
    const char *p = value;

    if (!out || out_len == 0)
        return false;
    out[0] = '\0';
    if (!value)
        return false;
    for (;;) {
        const char *uri, *gt;
        bool next = false, seen_rel = false, ok = true;

        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            return false;
        if (*p != '<') {
            p = link_resync(p);
            continue;
        }
        uri = p + 1;
        gt = strchr(uri, '>');
        if (!gt)
            return false;
        p = gt + 1;
        for (;;) {
            const char *name;
            bool is_next = false;
            size_t name_len;

            p = skip_ows(p);
            if (*p != ';')
                break;
            p = skip_ows(p + 1);
            for (name = p; is_tchar((unsigned char)*p); p++)
                ;
            name_len = (size_t)(p - name);
            if (name_len == 0) {
                ok = false;
                break;
            }
            p = skip_ows(p);
            if (*p == '=') {
                p = link_param_value(skip_ows(p + 1), &is_next);
                if (!p) {
                    ok = false;
                    p = name;
                    break;
                }
            }
            /* RFC 8288 3.3: only the first rel parameter counts. */
            if (!seen_rel && name_len == 3 &&
                strncasecmp(name, "rel", 3) == 0) {
                seen_rel = true;
                next = is_next;
            }
        }
        p = skip_ows(p);
        if (!ok || (*p != ',' && *p != '\0')) {
            p = link_resync(p);
            continue;
        }
        if (next)
            return link_copy_uri(uri, (size_t)(gt - uri), out, out_len);
    }
}

enum hub_err hub_parse_content_range(const char *value, uint64_t *first,
                                     uint64_t *last, uint64_t *total)
{
    const char *p = value;
    uint64_t f, l, t;

    *first = *last = *total = 0;
    if (!p)
        return HUB_E_PROTOCOL;
    p = skip_ows(p);
    if (strncasecmp(p, "bytes", 5) != 0 || p[5] != ' ')
        return HUB_E_PROTOCOL;
    p = skip_ows(p + 5);
    if (!parse_u64(&p, &f) || *p++ != '-' || !parse_u64(&p, &l) || *p++ != '/')
        return HUB_E_PROTOCOL;
    if (*p == '*') {
        t = UINT64_MAX;
        p++;
    } else if (!parse_u64(&p, &t) || l >= t) {
        return HUB_E_PROTOCOL;
    }
    if (*skip_ows(p) != '\0' || f > l)
        return HUB_E_PROTOCOL;
    *first = f;
    *last = l;
    *total = t;
    return HUB_OK;
}

/* Reads a non-negative sf-integer; false for anything else. */
static bool sf_nonneg_int(const char **pp, long *out)
{
    const char *p = *pp;
    uint64_t v;

    if (!parse_u64(&p, &v) || p - *pp > SF_INT_DIGITS || v > LONG_MAX)
        return false;
    if (*p == '.') /* an sf-decimal */
        return false;
    *pp = p;
    *out = (long)v;
    return true;
}

/* Skips an sf bare item other than an integer we want: string, token,
 * boolean, number. NULL if malformed. */
static const char *sf_skip_item(const char *p)
{
    if (*p == '"') {
        for (p++; *p != '"'; p++) {
            if (*p == '\0' || is_ctl((unsigned char)*p))
                return NULL;
            if (*p == '\\' && *++p == '\0')
                return NULL;
        }
        return p + 1;
    }
    if (*p == '?')
        return (p[1] == '0' || p[1] == '1') ? p + 2 : NULL;
    if (*p == '-' || is_digit(*p)) {
        p++;
        while (is_digit(*p) || *p == '.')
            p++;
        return p;
    }
    if (is_alpha(*p) || *p == '*') {
        while (is_tchar((unsigned char)*p) || *p == ':' || *p == '/')
            p++;
        return p;
    }
    return NULL;
}

bool hub_parse_ratelimit(const char *value, long *remaining, long *reset_s)
{
    const char *p = value;
    long r = -1, t = -1;

    *remaining = *reset_s = -1;
    if (!p)
        return false;
    p = sf_skip_item(skip_ows(p));
    if (!p)
        return false;
    for (;;) {
        const char *key;
        size_t key_len;

        p = skip_ows(p);
        if (*p == '\0' || *p == ',') /* only the first list member */
            break;
        if (*p != ';')
            return false;
        p = skip_ows(p + 1);
        key = p;
        if (!(*p >= 'a' && *p <= 'z') && *p != '*')
            return false;
        while ((*p >= 'a' && *p <= 'z') || is_digit(*p) || *p == '_' ||
               *p == '-' || *p == '.' || *p == '*')
            p++;
        key_len = (size_t)(p - key);
        if (*p != '=')
            continue; /* a boolean true parameter */
        p++;
        if (key_len == 1 && (key[0] == 'r' || key[0] == 't')) {
            if (!sf_nonneg_int(&p, key[0] == 'r' ? &r : &t))
                return false;
        } else if (!(p = sf_skip_item(p))) {
            return false;
        }
    }
    *remaining = r;
    *reset_s = t;
    return true;
}

bool hub_parse_retry_after(const char *value, long *seconds)
{
    const char *p;
    uint64_t v;

    *seconds = 0;
    if (!value)
        return false;
    p = skip_ows(value);
    if (!parse_u64(&p, &v) || v > LONG_MAX || *skip_ows(p) != '\0')
        return false;
    *seconds = (long)v;
    return true;
}

/* Exactly n digits at *pp. */
static bool fixed_digits(const char **pp, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!is_digit((*pp)[i]))
            return false;
        v = v * 10 + ((*pp)[i] - '0');
    }
    *pp += n;
    *out = v;
    return true;
}

static bool leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

bool hub_parse_iso8601(const char *s, int64_t *out)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30,
                                  31, 31, 30, 31, 30, 31};
    int year, mon, day, hour, min, sec, off = 0;
    const char *p = s;
    struct tm tm;
    time_t t;

    *out = 0;
    if (!p)
        return false;
    if (!fixed_digits(&p, 4, &year) || *p++ != '-' ||
        !fixed_digits(&p, 2, &mon) || *p++ != '-' ||
        !fixed_digits(&p, 2, &day) || (*p != 'T' && *p != 't'))
        return false;
    p++;
    if (!fixed_digits(&p, 2, &hour) || *p++ != ':' ||
        !fixed_digits(&p, 2, &min) || *p++ != ':' || !fixed_digits(&p, 2, &sec))
        return false;
    if (mon < 1 || mon > 12 || day < 1 ||
        day > mdays[mon - 1] + (mon == 2 && leap_year(year)) || hour > 23 ||
        min > 59 || sec > 60)
        return false;
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            return false;
        while (is_digit(*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!fixed_digits(&p, 2, &oh))
            return false;
        if (*p == ':')
            p++;
        if (!fixed_digits(&p, 2, &om) || oh > 23 || om > 59)
            return false;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return false;
    }
    if (*p != '\0')
        return false;

    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    t = timegm(&tm);
    *out = (int64_t)t - off;
    return true;
}

/* ---- JSON ---- */

/* Parses buf[0..len) as JSON after defusing NULs (see the top comment).
 * NULL with *err set on failure. */
static cJSON *json_load(const char *buf, size_t len, enum hub_err *err)
{
    const char *end = NULL;
    cJSON *root;
    char *copy;

    if (len > HUB_JSON_MAX_BYTES) {
        *err = HUB_E_TOO_BIG;
        return NULL;
    }
    if (!buf || len == 0) {
        *err = HUB_E_PROTOCOL;
        return NULL;
    }
    copy = malloc(len + 1);
    if (!copy) {
        *err = HUB_E_NOMEM;
        return NULL;
    }
    memcpy(copy, buf, len);
    copy[len] = '\0';
    for (size_t i = 0; i < len; i++)
        if (copy[i] == '\0')
            copy[i] = '\x01';
    for (size_t i = 0; i + 1 < len; i++) {
        if (copy[i] != '\\')
            continue;
        /* An escape pair: "\\u0000" is a backslash and "u0000". */
        if (copy[i + 1] == 'u' && i + 5 < len &&
            memcmp(copy + i + 2, "0000", 4) == 0)
            copy[i + 5] = '1';
        i++;
    }
    /* cJSON cannot tell a parse error from OOM; a body that fails is
     * treated as malformed, and so is one with more than blanks after its
     * value. */
    root = cJSON_ParseWithLengthOpts(copy, len, &end, false);
    if (root) {
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        if (end != copy + len) {
            cJSON_Delete(root);
            root = NULL;
        }
    }
    free(copy);
    if (!root)
        *err = HUB_E_PROTOCOL;
    return root;
}

void hub_tree_init(struct hub_tree *tree)
{
    memset(tree, 0, sizeof(*tree));
}

void hub_tree_release(struct hub_tree *tree)
{
    for (size_t i = 0; i < tree->count; i++)
        free(tree->entries[i].name);
    free(tree->entries);
    hub_tree_init(tree);
}

/* Appends one checked entry; name is copied. */
static enum hub_err tree_add(struct hub_tree *tree, const char *name,
                             bool is_dir, uint64_t size, const char *oid,
                             const char *sha256)
{
    struct hub_tree_entry *e;

    if (tree->count >= HUB_TREE_MAX_ENTRIES)
        return HUB_E_TOO_BIG;
    if (tree->count == tree->cap) {
        size_t cap = tree->cap ? tree->cap * 2 : TREE_FIRST_CAP;
        if (cap > HUB_TREE_MAX_ENTRIES)
            cap = HUB_TREE_MAX_ENTRIES;
        e = realloc(tree->entries, cap * sizeof(*e));
        if (!e)
            return HUB_E_NOMEM;
        tree->entries = e;
        tree->cap = cap;
    }
    e = &tree->entries[tree->count];
    memset(e, 0, sizeof(*e));
    e->name = strdup(name);
    if (!e->name)
        return HUB_E_NOMEM;
    e->is_dir = is_dir;
    e->size = is_dir ? 0 : size;
    memcpy(e->oid, oid, strlen(oid) + 1);
    memcpy(e->sha256, sha256, strlen(sha256) + 1);
    tree->count++;
    return HUB_OK;
}

/* Records one skipped entry; the first reason goes to why->line. */
static void tree_skip(struct hub_tree *tree, struct hub_why *why,
                      const char *what, const char *reason, const char *dir)
{
    char q[QUOTE_MAX], qd[QUOTE_MAX];

    if (why && (tree->skipped == 0 || why->line[0] == '\0')) {
        quote_copy(q, sizeof(q), what);
        if (dir) {
            quote_copy(qd, sizeof(qd), dir);
            hub_why_set(why, "skipped entry '%s': %s '%s'", q, reason, qd);
        } else {
            hub_why_set(why, "skipped entry '%s': %s", q, reason);
        }
    }
    tree->skipped++;
}

/* A JSON size: an integral number in 0..HUB_FILE_SIZE_MAX. */
static bool json_size(const cJSON *item, uint64_t *out)
{
    double d;

    if (!cJSON_IsNumber(item))
        return false;
    d = item->valuedouble;
    if (!(d >= 0.0) || d > (double)HUB_FILE_SIZE_MAX)
        return false;
    if ((double)(uint64_t)d != d)
        return false;
    *out = (uint64_t)d;
    return true;
}

static bool json_absent(const cJSON *item)
{
    return !item || cJSON_IsNull(item);
}

struct tree_item {
    const char *path;
    const char *name;
    bool is_dir;
    uint64_t size;
    char oid[SHA256_HEX + 1];
    char sha256[SHA256_HEX + 1];
};

/* Checks one tree entry; NULL if good, else why it is skipped (a reason
 * ending in "of" wants the directory after it). */
static const char *tree_item_check(const cJSON *item, const char *dir,
                                   size_t dlen, struct tree_item *ti)
{
    const cJSON *path, *type, *size, *oid, *lfs;
    uint64_t sz = 0;
    size_t plen;

    memset(ti, 0, sizeof(*ti));
    ti->path = "";
    if (!cJSON_IsObject(item))
        return "not an object";
    path = cJSON_GetObjectItemCaseSensitive(item, "path");
    if (!cJSON_IsString(path) || !path->valuestring)
        return "no path";
    ti->path = path->valuestring;
    plen = strlen(ti->path);
    if (plen > HUB_PATH_MAX)
        return "path too long";
    if (dlen == 0) {
        ti->name = ti->path;
    } else {
        if (plen <= dlen || memcmp(ti->path, dir, dlen) != 0 ||
            ti->path[dlen] != '/')
            return "not a child of";
        ti->name = ti->path + dlen + 1;
    }
    if (strchr(ti->name, '/'))
        return "not a child of";
    if (!hub_name_ok(ti->name, strlen(ti->name)))
        return "bad name";

    type = cJSON_GetObjectItemCaseSensitive(item, "type");
    if (!cJSON_IsString(type) || !type->valuestring)
        return "no type";
    if (strcmp(type->valuestring, "directory") == 0)
        ti->is_dir = true;
    else if (strcmp(type->valuestring, "file") != 0)
        return "unknown type";

    size = cJSON_GetObjectItemCaseSensitive(item, "size");
    if (!json_absent(size) && !json_size(size, &sz))
        return "bad size";
    if (json_absent(size) && !ti->is_dir)
        sz = UINT64_MAX; /* must come from lfs */

    oid = cJSON_GetObjectItemCaseSensitive(item, "oid");
    if (!json_absent(oid)) {
        if (!cJSON_IsString(oid) || !oid->valuestring ||
            (!hex_copy(ti->oid, oid->valuestring, SHA1_HEX) &&
             !hex_copy(ti->oid, oid->valuestring, SHA256_HEX)))
            return "bad oid";
    }

    lfs = cJSON_GetObjectItemCaseSensitive(item, "lfs");
    if (!ti->is_dir && !json_absent(lfs)) {
        const cJSON *loid = cJSON_GetObjectItemCaseSensitive(lfs, "oid");
        const cJSON *lsize = cJSON_GetObjectItemCaseSensitive(lfs, "size");
        if (!cJSON_IsObject(lfs) || !cJSON_IsString(loid) ||
            !loid->valuestring ||
            !hex_copy(ti->sha256, loid->valuestring, SHA256_HEX))
            return "bad lfs oid";
        if (!json_size(lsize, &sz))
            return "bad lfs size";
    }
    if (sz == UINT64_MAX)
        return "no size";
    ti->size = ti->is_dir ? 0 : sz;
    return NULL;
}

/* dir: "" or a path without leading/trailing '/' or empty segment. */
static bool dir_ok(const char *dir)
{
    size_t n = strlen(dir);

    if (n == 0)
        return true;
    if (n >= HUB_PATH_MAX || dir[0] == '/' || dir[n - 1] == '/' ||
        strstr(dir, "//"))
        return false;
    return true;
}

enum hub_err hub_parse_tree_page(const char *buf, size_t len, const char *dir,
                                 struct hub_tree *tree, struct hub_why *why)
{
    enum hub_err err = HUB_OK;
    const cJSON *item;
    cJSON *root;
    size_t dlen;

    if (!dir)
        dir = "";
    if (!dir_ok(dir)) {
        hub_why_set(why, "bad tree directory");
        err = HUB_E_PROTOCOL;
        goto out_release;
    }
    dlen = strlen(dir);
    root = json_load(buf, len, &err);
    if (!root) {
        if (err == HUB_E_PROTOCOL)
            hub_why_set(why, "tree page is not JSON");
        else
            hub_why_set(why, "cannot parse tree page: %s", hub_strerror(err));
        goto out_release;
    }
    if (!cJSON_IsArray(root)) {
        hub_why_set(why, "tree page is not a JSON array");
        err = HUB_E_PROTOCOL;
        goto out_free_root;
    }
    cJSON_ArrayForEach(item, root)
    {
        struct tree_item ti;
        const char *reason = tree_item_check(item, dir, dlen, &ti);

        if (reason) {
            bool wants_dir = strcmp(reason, "not a child of") == 0;
            tree_skip(tree, why, ti.path, reason, wants_dir ? dir : NULL);
            continue;
        }
        err = tree_add(tree, ti.name, ti.is_dir, ti.size, ti.oid, ti.sha256);
        if (err != HUB_OK) {
            if (err == HUB_E_TOO_BIG)
                hub_why_set(why, "directory has more than %d entries",
                            HUB_TREE_MAX_ENTRIES);
            else
                hub_why_set(why, "cannot list directory: %s",
                            hub_strerror(err));
            goto out_free_root;
        }
    }
out_free_root:
    cJSON_Delete(root);
out_release:
    if (err != HUB_OK)
        hub_tree_release(tree);
    return err;
}

static int entry_cmp(const struct hub_tree_entry *a,
                     const struct hub_tree_entry *b)
{
    return strcmp(a->name, b->name);
}

/* Fallback order when no scratch memory is left: total over all fields, so
 * the result is deterministic though not "first seen". */
static int entry_cmp_total(const void *pa, const void *pb)
{
    const struct hub_tree_entry *a = pa, *b = pb;
    int c = strcmp(a->name, b->name);

    if (c)
        return c;
    if (a->is_dir != b->is_dir)
        return a->is_dir ? -1 : 1;
    if (a->size != b->size)
        return a->size < b->size ? -1 : 1;
    c = strcmp(a->oid, b->oid);
    return c ? c : strcmp(a->sha256, b->sha256);
}

/* Stable bottom-up merge sort of e[0..n) using scratch tmp[0..n); returns
 * whichever of the two buffers holds the result. */
static struct hub_tree_entry *merge_sort(struct hub_tree_entry *e,
                                         struct hub_tree_entry *tmp, size_t n)
{
    struct hub_tree_entry *src = e, *dst = tmp, *swap;

    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] =
                    entry_cmp(&src[j], &src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        swap = src;
        src = dst;
        dst = swap;
    }
    return src;
}

void hub_tree_finish(struct hub_tree *tree)
{
    struct hub_tree_entry *tmp, *sorted;
    size_t out = 0;

    if (tree->count < 2)
        return;
    tmp = malloc(tree->count * sizeof(*tmp));
    if (tmp) {
        sorted = merge_sort(tree->entries, tmp, tree->count);
        if (sorted != tree->entries)
            memcpy(tree->entries, sorted, tree->count * sizeof(*tmp));
        free(tmp);
    } else {
        qsort(tree->entries, tree->count, sizeof(*tree->entries),
              entry_cmp_total);
    }
    for (size_t i = 0; i < tree->count; i++) {
        if (out > 0 &&
            strcmp(tree->entries[out - 1].name, tree->entries[i].name) == 0) {
            free(tree->entries[i].name);
            tree->skipped++;
            continue;
        }
        tree->entries[out++] = tree->entries[i];
    }
    tree->count = out;
}

enum hub_err hub_parse_repo_list(const char *buf, size_t len, const char *ns,
                                 struct hub_tree *tree, struct hub_why *why)
{
    enum hub_err err = HUB_OK;
    const cJSON *item;
    cJSON *root;
    size_t nslen;

    if (!ns || !hub_repo_part_ok(ns, strlen(ns))) {
        hub_why_set(why, "bad namespace");
        err = HUB_E_PROTOCOL;
        goto out_release;
    }
    nslen = strlen(ns);
    root = json_load(buf, len, &err);
    if (!root) {
        if (err == HUB_E_PROTOCOL)
            hub_why_set(why, "repo list is not JSON");
        else
            hub_why_set(why, "cannot parse repo list: %s", hub_strerror(err));
        goto out_release;
    }
    if (!cJSON_IsArray(root)) {
        hub_why_set(why, "repo list is not a JSON array");
        err = HUB_E_PROTOCOL;
        goto out_free_root;
    }
    cJSON_ArrayForEach(item, root)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "id");
        const char *name;

        if (!cJSON_IsObject(item) || !cJSON_IsString(id) || !id->valuestring) {
            tree_skip(tree, why, "", "no id", NULL);
            continue;
        }
        /* Hub ids compare case-insensitively; the listing may spell the
         * namespace as canonical while the user typed another case. */
        if (strncasecmp(id->valuestring, ns, nslen) != 0 ||
            id->valuestring[nslen] != '/') {
            tree_skip(tree, why, id->valuestring, "not in namespace", ns);
            continue;
        }
        name = id->valuestring + nslen + 1;
        if (!hub_name_ok(name, strlen(name))) {
            tree_skip(tree, why, id->valuestring, "bad name", NULL);
            continue;
        }
        err = tree_add(tree, name, true, 0, "", "");
        if (err != HUB_OK) {
            if (err == HUB_E_TOO_BIG)
                hub_why_set(why, "namespace has more than %d repos",
                            HUB_TREE_MAX_ENTRIES);
            else
                hub_why_set(why, "cannot list namespace: %s",
                            hub_strerror(err));
            goto out_free_root;
        }
    }
out_free_root:
    cJSON_Delete(root);
out_release:
    if (err != HUB_OK)
        hub_tree_release(tree);
    return err;
}

/* gated: false | "auto" | "manual"; other truthy values count as manual. */
static int info_gated(const cJSON *g)
{
    if (!g || cJSON_IsNull(g) || cJSON_IsFalse(g))
        return 0;
    if (cJSON_IsString(g) && g->valuestring) {
        if (strcmp(g->valuestring, "auto") == 0)
            return 1;
        return g->valuestring[0] ? 2 : 0;
    }
    if (cJSON_IsNumber(g))
        return g->valuedouble != 0.0 ? 2 : 0;
    return 2; /* true, objects, arrays */
}

enum hub_err hub_parse_info(const char *buf, size_t len, struct hub_info *out)
{
    enum hub_err err = HUB_OK;
    const cJSON *sha, *id, *mtime;
    cJSON *root;

    memset(out, 0, sizeof(*out));
    root = json_load(buf, len, &err);
    if (!root)
        return err;
    err = HUB_E_PROTOCOL;
    if (!cJSON_IsObject(root))
        goto out_free_root;
    sha = cJSON_GetObjectItemCaseSensitive(root, "sha");
    if (!cJSON_IsString(sha) || !sha->valuestring ||
        !hex_copy(out->sha, sha->valuestring, SHA1_HEX))
        goto out_free_root;
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (!json_absent(id)) {
        if (!cJSON_IsString(id) || !id->valuestring ||
            !str_copy(out->id, sizeof(out->id), id->valuestring) ||
            !repo_id_ok(out->id))
            goto out_free_root;
    }
    mtime = cJSON_GetObjectItemCaseSensitive(root, "lastModified");
    if (cJSON_IsString(mtime) && mtime->valuestring &&
        !hub_parse_iso8601(mtime->valuestring, &out->mtime))
        out->mtime = 0;
    out->is_private =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "private"));
    out->gated = info_gated(cJSON_GetObjectItemCaseSensitive(root, "gated"));
    out->disabled =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "disabled"));
    err = HUB_OK;
out_free_root:
    cJSON_Delete(root);
    if (err != HUB_OK)
        memset(out, 0, sizeof(*out));
    return err;
}

/* An optional string member copied into out[cap]; false if present but
 * not a printable string that fits. */
static bool opt_str(const cJSON *obj, const char *key, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (json_absent(v))
        return true;
    return cJSON_IsString(v) && v->valuestring &&
           str_copy(out, cap, v->valuestring);
}

/* orgs: [{"name": ...}, ...]; names that do not fit are skipped. */
static void whoami_orgs(const cJSON *orgs, struct hub_whoami *out)
{
    const cJSON *o;
    cJSON_ArrayForEach(o, orgs)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (out->norgs == HUB_WHOAMI_MAX_NS)
            break;
        if (cJSON_IsString(name) && name->valuestring &&
            str_copy(out->orgs[out->norgs], HUB_WHOAMI_NS_MAX,
                     name->valuestring))
            out->norgs++;
    }
}

/* fineGrained.scoped: [{"entity":{"name","type"},"permissions":[...]}]:
 * the entities whose permissions include repo.content.read. */
static void whoami_scoped(const cJSON *scoped, struct hub_whoami *out)
{
    const cJSON *sc;
    cJSON_ArrayForEach(sc, scoped)
    {
        const cJSON *ent = cJSON_GetObjectItemCaseSensitive(sc, "entity");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(ent, "name");
        const cJSON *perms =
            cJSON_GetObjectItemCaseSensitive(sc, "permissions");
        const cJSON *p;
        bool reads = false;
        cJSON_ArrayForEach(p, perms)
        {
            if (cJSON_IsString(p) && p->valuestring &&
                strcmp(p->valuestring, "repo.content.read") == 0)
                reads = true;
        }
        if (!reads || !cJSON_IsString(name) || !name->valuestring ||
            out->ncontent_read == HUB_WHOAMI_MAX_NS)
            continue;
        if (str_copy(out->content_read[out->ncontent_read], HUB_WHOAMI_NS_MAX,
                     name->valuestring))
            out->ncontent_read++;
    }
}

enum hub_err hub_parse_whoami(const char *buf, size_t len,
                              struct hub_whoami *out)
{
    enum hub_err err = HUB_OK;
    const cJSON *name, *auth, *token, *fg;
    cJSON *root;

    memset(out, 0, sizeof(*out));
    root = json_load(buf, len, &err);
    if (!root)
        return err;
    err = HUB_E_PROTOCOL;
    if (!cJSON_IsObject(root))
        goto out_free_root;
    name = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (!cJSON_IsString(name) || !name->valuestring || !name->valuestring[0] ||
        !str_copy(out->name, sizeof(out->name), name->valuestring) ||
        !opt_str(root, "type", out->type, sizeof(out->type)))
        goto out_free_root;
    auth = cJSON_GetObjectItemCaseSensitive(root, "auth");
    token = cJSON_GetObjectItemCaseSensitive(auth, "accessToken");
    if (cJSON_IsObject(token)) {
        if (!opt_str(token, "role", out->role, sizeof(out->role)))
            goto out_free_root;
        out->fine_grained = strcmp(out->role, "fineGrained") == 0;
        fg = cJSON_GetObjectItemCaseSensitive(token, "fineGrained");
        out->can_read_gated = cJSON_IsTrue(
            cJSON_GetObjectItemCaseSensitive(fg, "canReadGatedRepos"));
        whoami_scoped(cJSON_GetObjectItemCaseSensitive(fg, "scoped"), out);
    }
    whoami_orgs(cJSON_GetObjectItemCaseSensitive(root, "orgs"), out);
    err = HUB_OK;
out_free_root:
    cJSON_Delete(root);
    if (err != HUB_OK)
        memset(out, 0, sizeof(*out));
    return err;
}

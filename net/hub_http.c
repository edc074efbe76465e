/*
 * hub_http.c - the network thread: one CURLM, every transfer of a mount.
 *
 * DESIGN. Submitters (FUSE worker threads, cache/ readahead) put a struct
 * hub_req on hub->incoming and wake the thread with curl_multi_wakeup().
 * The thread runs each request as a small state machine:
 *
 *   queued -> attempt -> answer 3xx ----------------> attempt (next hop)
 *                     -> answer 2xx, checked -------> done (HUB_OK)
 *                     -> retryable failure, tries left -> delayed -> attempt
 *                     -> 403/410 off the Hub on a remembered URL
 *                                  -----------------> attempt (resolve again)
 *                     -> anything else -------------> done (error)
 *
 * Invariants:
 *  1. Only this thread touches hub->multi, hub->delayed and a request's
 *     engine fields while it is in flight.
 *  2. Authorization is attached to an attempt iff the attempt's URL has
 *     the endpoint's origin (scheme, host, port); libcurl never follows a
 *     redirect by itself, so no other code path can send it elsewhere.
 *  3. A range request completes HUB_OK only when exactly [off, off+len)
 *     arrived: a 206 whose Content-Range names that range and the listed
 *     size, or a 200 of the listed size cut to the range.
 *  4. done runs exactly once per submitted request, after which the engine
 *     never touches it again.
 *  5. Every attempt is bounded: connect timeout, low-speed timeout (stall),
 *     and for API requests a total timeout; tries and hops are capped.
 *  6. An attempt that carries the token goes through a proxy only over
 *     https (a CONNECT tunnel under TLS); over plain http it is refused
 *     (HUB_E_DENIED), never sent in the clear to the proxy (set_proxy).
 */
#include "net/hub_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "net/log.h"

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- URLs ---------------------------------------------------------- */

bool hub_url_origin(const char *url, char *out, size_t out_len)
{
    const char *p;
    const char *host;
    size_t hlen;
    const char *port = NULL;
    bool https;

    if (strncasecmp(url, "https://", 8) == 0) {
        https = true;
        host = url + 8;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        https = false;
        host = url + 7;
    } else {
        return false;
    }
    /* skip userinfo if any */
    for (p = host; *p && *p != '/' && *p != '?' && *p != '#'; p++)
        if (*p == '@')
            host = p + 1;
    hlen = 0;
    if (*host == '[') { /* IPv6 literal */
        const char *end = strchr(host, ']');
        if (!end)
            return false;
        hlen = (size_t)(end - host) + 1;
    } else {
        while (host[hlen] && host[hlen] != '/' && host[hlen] != ':' &&
               host[hlen] != '?' && host[hlen] != '#')
            hlen++;
    }
    if (hlen == 0)
        return false;
    if (host[hlen] == ':')
        port = host + hlen + 1;
    {
        char portbuf[8];
        size_t i = 0;
        if (port) {
            while (port[i] && isdigit((unsigned char)port[i]) && i < 6) {
                portbuf[i] = port[i];
                i++;
            }
            portbuf[i] = '\0';
        }
        if (!port || i == 0)
            snprintf(portbuf, sizeof(portbuf), "%s", https ? "443" : "80");
        int n = snprintf(out, out_len, "%s://%.*s:%s",
                         https ? "https" : "http", (int)hlen, host, portbuf);
        if (n < 0 || (size_t)n >= out_len)
            return false;
    }
    for (char *c = out; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return true;
}

bool hub_url_is_hub(const struct hub *hub, const char *url)
{
    char o[HUB_URL_MAX];
    return hub_url_origin(url, o, sizeof(o)) && strcmp(o, hub->origin) == 0;
}

bool hub_url_join(const char *base, const char *loc, char *out, size_t out_len)
{
    int n;

    if (strncasecmp(loc, "http://", 7) == 0 ||
        strncasecmp(loc, "https://", 8) == 0) {
        n = snprintf(out, out_len, "%s", loc);
    } else if (loc[0] == '/' && loc[1] == '/') {
        const char *colon = strchr(base, ':');
        if (!colon)
            return false;
        n = snprintf(out, out_len, "%.*s:%s", (int)(colon - base), base, loc);
    } else {
        /* scheme://authority */
        const char *auth = strstr(base, "://");
        const char *path;
        if (!auth)
            return false;
        path = strchr(auth + 3, '/');
        if (!path)
            path = auth + 3 + strlen(auth + 3);
        if (loc[0] == '/') {
            n = snprintf(out, out_len, "%.*s%s", (int)(path - base), base,
                         loc);
        } else {
            /* relative to the base's directory, query dropped */
            const char *q = strpbrk(path, "?#");
            size_t plen = q ? (size_t)(q - base) : strlen(base);
            const char *slash = NULL;
            for (size_t i = (size_t)(path - base); i < plen; i++)
                if (base[i] == '/')
                    slash = base + i;
            if (!slash)
                return false;
            n = snprintf(out, out_len, "%.*s/%s", (int)(slash - base), base,
                         loc);
        }
    }
    return n >= 0 && (size_t)n < out_len;
}

void hub_url_for_log(const char *url, char *out, size_t out_len)
{
    size_t n = strcspn(url, "?#");
    snprintf(out, out_len, "%.*s", (int)n, url);
}

/* ---- proxies ------------------------------------------------------- */

/*
 * libcurl's proxy variables, as fs/config.c read them at start (struct
 * hub_config), decided here rather than inside libcurl, so that the
 * engine knows which attempts go through a proxy (invariant 6):
 *
 *   http:// URLs   http_proxy, HTTP_PROXY, then all_proxy, ALL_PROXY
 *   https:// URLs  https_proxy, HTTPS_PROXY, then all_proxy, ALL_PROXY
 *   no_proxy, NO_PROXY: hosts reached directly (hub_no_proxy_match())
 *
 * libcurl itself ignores upper-case HTTP_PROXY (a CGI program may get it
 * from a request header); hfmount is no CGI program, so it honours it.
 * Each attempt sets CURLOPT_PROXY ("" = direct) and an empty
 * CURLOPT_NOPROXY, so libcurl never reads the environment itself and
 * cannot decide otherwise.
 */

/* Copies one proxy of a struct hub_config; false on OOM. */
static bool proxy_copy(struct hub_proxy *dst, const char *url, const char *var,
                       const char *default_var)
{
    if (!url || !url[0])
        return true;
    dst->url = strdup(url);
    dst->var = strdup(var && var[0] ? var : default_var);
    return dst->url && dst->var;
}

static void proxy_release(struct hub_proxy *p)
{
    free(p->url);
    free(p->var);
    p->url = p->var = NULL;
}

/* false on OOM; what was copied is freed by proxies_free(). */
static bool proxies_copy(struct hub *hub, const struct hub_config *cfg)
{
    if (cfg->no_proxy && cfg->no_proxy[0]) {
        hub->no_proxy = strdup(cfg->no_proxy);
        if (!hub->no_proxy)
            return false;
    }
    return proxy_copy(&hub->http_proxy, cfg->http_proxy, cfg->http_proxy_var,
                      "http_proxy") &&
           proxy_copy(&hub->https_proxy, cfg->https_proxy, cfg->https_proxy_var,
                      "https_proxy") &&
           proxy_copy(&hub->all_proxy, cfg->all_proxy, cfg->all_proxy_var,
                      "all_proxy");
}

static void proxies_free(struct hub *hub)
{
    proxy_release(&hub->http_proxy);
    proxy_release(&hub->https_proxy);
    proxy_release(&hub->all_proxy);
    free(hub->no_proxy);
    hub->no_proxy = NULL;
}

/* The host of an absolute http(s) URL as hub_no_proxy_match() takes it:
 * lower case, IPv6 in brackets. */
static bool url_host(const char *url, char *out, size_t cap)
{
    char o[HUB_URL_MAX];
    const char *h;
    const char *end;
    size_t n;

    if (!hub_url_origin(url, o, sizeof(o)))
        return false;
    h = strstr(o, "://") + 3;
    end = strrchr(h, ':'); /* an origin always ends in ":port" */
    if (!end)
        return false;
    n = (size_t)(end - h);
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, h, n);
    out[n] = '\0';
    return true;
}

/* The proxy an attempt to url goes through, NULL for a direct connection;
 * *var names the variable it came from. */
static const char *proxy_for(const struct hub *hub, const char *url,
                             const char **var)
{
    bool https = strncasecmp(url, "https://", 8) == 0;
    const struct hub_proxy *p = https ? &hub->https_proxy : &hub->http_proxy;
    char host[HUB_URL_MAX];

    if (!p->url)
        p = &hub->all_proxy;
    if (!p->url)
        return NULL;
    *var = p->var;
    if (hub->no_proxy && url_host(url, host, sizeof(host)) &&
        hub_no_proxy_match(hub->no_proxy, host))
        return NULL;
    return p->url;
}

/* scheme://host:port of a proxy URL, credentials and path left out. */
static void proxy_for_log(const char *proxy, char *out, size_t cap)
{
    const char *sep = strstr(proxy, "://");
    const char *h = sep ? sep + 3 : proxy;
    size_t n = strcspn(h, "/?#");

    for (size_t i = n; i > 0; i--) {
        if (h[i - 1] == '@') {
            h += i;
            n -= i;
            break;
        }
    }
    snprintf(out, cap, "%.*s%s%.*s", sep ? (int)(sep - proxy) : 0, proxy,
             sep ? "://" : "", (int)n, h);
}

/*
 * Invariant 6: an attempt that carries the token goes through a proxy
 * only over https, where libcurl tunnels it (CONNECT) and TLS hides the
 * headers from the proxy. Over plain http a proxy reads every header,
 * and a CONNECT tunnel would not help (it relays the same clear text), so
 * such an attempt is refused, never sent without the token (that would
 * read as "not found"). Attempts without the token (CDN downloads, a
 * mount without a token) may go through any proxy: that is what lets a
 * shared cache serve them (docs/cluster.md).
 */
static enum hub_err set_proxy(struct hub *hub, struct hub_req *req, CURL *e)
{
    const char *var = NULL;
    const char *proxy = proxy_for(hub, req->url, &var);

    curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    curl_easy_setopt(e, CURLOPT_PROXY, proxy ? proxy : "");
    if (proxy && req->had_token && strncasecmp(req->url, "https://", 8) != 0) {
        char p[HUB_URL_MAX];
        proxy_for_log(proxy, p, sizeof(p));
        hub_why_set(&req->why,
                    "refusing to send the token to %s through the proxy %s "
                    "(%s) in the clear: add the host to NO_PROXY or use an "
                    "https HF_ENDPOINT",
                    hub->origin, p, var);
        return HUB_E_DENIED;
    }
    return HUB_OK;
}

/* ---- header and body callbacks ------------------------------------ */

static void copy_hdr_value(char *dst, size_t cap, const char *v, size_t len)
{
    size_t j = 0;
    while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
                       v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    while (len > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    for (size_t i = 0; i < len && j + 1 < cap; i++) {
        unsigned char c = (unsigned char)v[i];
        dst[j++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    dst[j] = '\0';
}

static bool hdr_is(const char *line, size_t len, const char *name,
                   const char **val, size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
        return false;
    *val = line + n + 1;
    *vlen = len - n - 1;
    return true;
}

static void remember_final_url(struct hub_req *req);
static void release_waiters(struct hub *hub, struct hub_req *req);

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    struct hub_req *req = arg;
    struct hub_resp_hdrs *h = &req->hdrs;
    size_t len = size * nmemb;
    const char *v;
    size_t vlen;

    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        /* a new response (also after 1xx): forget earlier headers */
        const char *sp = memchr(line, ' ', len);
        memset(h, 0, sizeof(*h));
        h->content_length = -1;
        h->status = sp ? (int)strtol(sp + 1, NULL, 10) : 0;
        return len;
    }
    if ((len == 2 && line[0] == '\r') || (len == 1 && line[0] == '\n')) {
        /* End of headers. A resolver whose chain ends in a 2xx now knows
         * where the file lives: the reads waiting on it go there at once,
         * without waiting for this body (which may be slow). */
        if (req->kind == HUB_REQ_RANGE && req->resolver && h->status >= 200 &&
            h->status < 300) {
            remember_final_url(req);
            req->resolver = false;
            release_waiters(req->hub, req);
        }
        return len;
    }
    if (hdr_is(line, len, "location", &v, &vlen))
        copy_hdr_value(h->location, sizeof(h->location), v, vlen);
    else if (hdr_is(line, len, "link", &v, &vlen)) {
        /* several Link headers: keep them all, comma separated */
        size_t cur = strlen(h->link);
        if (cur > 0 && cur + 2 < sizeof(h->link)) {
            h->link[cur++] = ',';
            h->link[cur] = '\0';
        }
        copy_hdr_value(h->link + cur, sizeof(h->link) - cur, v, vlen);
    } else if (hdr_is(line, len, "content-range", &v, &vlen))
        copy_hdr_value(h->content_range, sizeof(h->content_range), v, vlen);
    else if (hdr_is(line, len, "x-error-code", &v, &vlen))
        copy_hdr_value(h->error_code, sizeof(h->error_code), v, vlen);
    else if (hdr_is(line, len, "x-error-message", &v, &vlen))
        copy_hdr_value(h->error_message, sizeof(h->error_message), v, vlen);
    else if (hdr_is(line, len, "x-request-id", &v, &vlen))
        copy_hdr_value(h->request_id, sizeof(h->request_id), v, vlen);
    else if (hdr_is(line, len, "ratelimit", &v, &vlen))
        copy_hdr_value(h->ratelimit, sizeof(h->ratelimit), v, vlen);
    else if (hdr_is(line, len, "retry-after", &v, &vlen))
        copy_hdr_value(h->retry_after, sizeof(h->retry_after), v, vlen);
    else if (hdr_is(line, len, "content-length", &v, &vlen)) {
        char tmp[32];
        char *end;
        copy_hdr_value(tmp, sizeof(tmp), v, vlen);
        errno = 0;
        unsigned long long cl = strtoull(tmp, &end, 10);
        if (errno == 0 && end != tmp && *end == '\0' && tmp[0] != '-')
            h->content_length = (int64_t)cl;
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct hub_req *req = arg;
    size_t n = size * nmemb;
    int st = req->hdrs.status;

    if (st >= 200 && st < 300)
        atomic_fetch_add(&req->hub->st_bytes, n);
    if (st < 200 || st >= 300) {
        /* an error or redirect body: keep the start for the message */
        size_t room = sizeof(req->errbody) - 1 - req->errbody_len;
        size_t take = n < room ? n : room;
        memcpy(req->errbody + req->errbody_len, data, take);
        req->errbody_len += take;
        req->errbody[req->errbody_len] = '\0';
        return n;
    }
    if (req->kind == HUB_REQ_API) {
        if (req->body_len + n + 1 > req->max_body) {
            req->overflow = true;
            return 0;
        }
        if (req->body_len + n + 1 > req->body_cap) {
            size_t cap = req->body_cap ? req->body_cap : 16384;
            while (cap < req->body_len + n + 1)
                cap *= 2;
            if (cap > req->max_body)
                cap = req->max_body;
            char *nb = realloc(req->body, cap);
            if (!nb)
                return 0;
            req->body = nb;
            req->body_cap = cap;
        }
        memcpy(req->body + req->body_len, data, n);
        req->body_len += n;
        req->body[req->body_len] = '\0';
        return n;
    }
    if (st == 206) {
        if (req->got + n > req->len) {
            req->overflow = true;
            return 0;
        }
        memcpy(req->dst + req->got, data, n);
        req->got += n;
        return n;
    }
    /* 200: the whole file; keep the part that overlaps the range */
    {
        uint64_t lo = req->stream_pos;
        uint64_t hi = lo + n;
        uint64_t want_lo = req->off;
        uint64_t want_hi = req->off + req->len;
        if (hi > want_lo && lo < want_hi) {
            uint64_t a = lo > want_lo ? lo : want_lo;
            uint64_t b = hi < want_hi ? hi : want_hi;
            memcpy(req->dst + (a - want_lo), data + (a - lo), (size_t)(b - a));
            req->got += (size_t)(b - a);
        }
        req->stream_pos = hi;
        if (req->stream_pos >= want_hi) {
            req->took_enough = true;
            return 0; /* stop the transfer: we have the range */
        }
    }
    return n;
}

/* ---- attempts ----------------------------------------------------- */

static void finish(struct hub *hub, struct hub_req *req, enum hub_err err);

static enum hub_err start_attempt(struct hub *hub, struct hub_req *req)
{
    char range[64];
    bool to_hub = hub_url_is_hub(hub, req->url);
    enum hub_err err;

    memset(&req->hdrs, 0, sizeof(req->hdrs));
    req->hdrs.content_length = -1;
    req->errbody_len = 0;
    req->errbody[0] = '\0';
    req->got = 0;
    req->stream_pos = 0;
    req->took_enough = false;
    req->overflow = false;
    req->body_len = 0;
    req->curl_err[0] = '\0';
    if (req->body)
        req->body[0] = '\0';

    if (!req->easy) {
        req->easy = curl_easy_init();
        if (!req->easy)
            return HUB_E_NOMEM;
    } else {
        curl_easy_reset(req->easy);
    }
    curl_slist_free_all(req->headers);
    req->headers = NULL;
    req->had_token = false;

    CURL *e = req->easy;
    curl_easy_setopt(e, CURLOPT_URL, req->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_USERAGENT, hub->user_agent);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->curl_err);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)hub->timeout_s);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (long)hub->timeout_s);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, (long)HUB_BUFFERSIZE);
    if (req->kind == HUB_REQ_API) {
        curl_easy_setopt(e, CURLOPT_TIMEOUT,
                         (long)hub->timeout_s * HUB_API_TOTAL_TIMEOUT_FACTOR);
    } else {
        snprintf(range, sizeof(range), "%llu-%llu",
                 (unsigned long long)req->off,
                 (unsigned long long)(req->off + req->len - 1));
        curl_easy_setopt(e, CURLOPT_RANGE, range);
    }
    /* Invariant 2: the token goes to the endpoint's origin only. */
    if (to_hub) {
        pthread_mutex_lock(&hub->lock);
        if (hub->token && hub->token[0]) {
            size_t n = strlen(hub->token) + 32;
            char *h = malloc(n);
            if (h) {
                snprintf(h, n, "Authorization: Bearer %s", hub->token);
                req->headers = curl_slist_append(req->headers, h);
                explicit_bzero(h, n);
                free(h);
                req->had_token = true;
            }
        }
        pthread_mutex_unlock(&hub->lock);
    }
    err = set_proxy(hub, req, e);
    if (err != HUB_OK)
        return err;
    req->headers = curl_slist_append(req->headers, "Accept-Encoding: identity");
    if (req->kind == HUB_REQ_API)
        req->headers = curl_slist_append(req->headers,
                                         "Accept: application/json");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);

    req->started_ms = now_ms();
    atomic_fetch_add(&hub->st_requests, 1);
    if (curl_multi_add_handle(hub->multi, e) != CURLM_OK)
        return HUB_E_NETWORK;
    req->aprev = NULL;
    req->anext = hub->active;
    if (hub->active)
        hub->active->aprev = req;
    hub->active = req;
    return HUB_OK;
}

static void schedule_retry(struct hub *hub, struct hub_req *req, long wait_ms)
{
    req->due_ms = now_ms() + (uint64_t)wait_ms;
    req->next = hub->delayed;
    hub->delayed = req;
    atomic_fetch_add(&hub->st_retries, 1);
}

static long backoff_ms(struct hub *hub, struct hub_req *req)
{
    long ms = HUB_BACKOFF_BASE_MS;
    for (int i = 1; i < req->tries && ms < HUB_BACKOFF_MAX_MS; i++)
        ms *= 2;
    if (ms > HUB_BACKOFF_MAX_MS)
        ms = HUB_BACKOFF_MAX_MS;
    /* jitter: 50% .. 100% */
    return ms / 2 + (long)(rand_r(&hub->seed) % (unsigned)(ms / 2 + 1));
}

static long ratelimit_wait_ms(struct hub *hub, struct hub_req *req)
{
    long remaining = -1, reset_s = -1, ra = -1;
    long wait_s = -1;

    if (req->hdrs.ratelimit[0] &&
        hub_parse_ratelimit(req->hdrs.ratelimit, &remaining, &reset_s) &&
        remaining == 0 && reset_s >= 0)
        wait_s = reset_s + 1;
    else if (req->hdrs.retry_after[0] &&
             hub_parse_retry_after(req->hdrs.retry_after, &ra) && ra >= 0)
        wait_s = ra + 1;
    if (wait_s < 0)
        return backoff_ms(hub, req);
    if (wait_s > HUB_RATELIMIT_WAIT_MAX_S)
        wait_s = HUB_RATELIMIT_WAIT_MAX_S;
    return wait_s * 1000;
}

static void fill_why(struct hub_req *req, int status)
{
    struct hub_why *why = &req->why;
    why->status = status;
    snprintf(why->code, sizeof(why->code), "%s", req->hdrs.error_code);
    snprintf(why->request_id, sizeof(why->request_id), "%s",
             req->hdrs.request_id);
    if (req->hdrs.error_message[0]) {
        snprintf(why->message, sizeof(why->message), "%s",
                 req->hdrs.error_message);
    } else if (req->errbody_len > 0 && req->errbody[0] == '{') {
        /* {"error":"..."}: take the string without a JSON parser */
        const char *k = strstr(req->errbody, "\"error\"");
        const char *q = k ? strchr(k + 7, '"') : NULL;
        if (q) {
            size_t j = 0;
            for (const char *c = q + 1; *c && *c != '"' &&
                                        j + 1 < sizeof(why->message);
                 c++) {
                if (*c == '\\' && c[1])
                    c++;
                why->message[j++] =
                    ((unsigned char)*c < 0x20) ? '?' : *c;
            }
            why->message[j] = '\0';
        }
    }
}

static bool curl_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
        return true;
    default:
        return false;
    }
}

/* Checks a 2xx answer to a range request (invariant 3). */
static enum hub_err check_range(struct hub_req *req)
{
    uint64_t size = req->file->size;
    int st = req->hdrs.status;

    if (st == 206) {
        uint64_t first, last, total;
        if (hub_parse_content_range(req->hdrs.content_range, &first, &last,
                                    &total) != HUB_OK) {
            hub_why_set(&req->why, "bad Content-Range '%s'",
                        req->hdrs.content_range);
            return HUB_E_PROTOCOL;
        }
        if (first != req->off || last != req->off + req->len - 1) {
            hub_why_set(&req->why,
                        "Content-Range '%s' does not match the range "
                        "%llu-%llu asked for",
                        req->hdrs.content_range, (unsigned long long)req->off,
                        (unsigned long long)(req->off + req->len - 1));
            return HUB_E_PROTOCOL;
        }
        if (total != UINT64_MAX && total != size) {
            hub_why_set(&req->why,
                        "served size %llu differs from the listed size %llu",
                        (unsigned long long)total, (unsigned long long)size);
            return HUB_E_PROTOCOL;
        }
        if (req->got != req->len) {
            hub_why_set(&req->why, "short range body: %zu of %zu bytes",
                        req->got, req->len);
            return HUB_E_PROTOCOL;
        }
        return HUB_OK;
    }
    if (st == 200) {
        if (req->hdrs.content_length >= 0 &&
            (uint64_t)req->hdrs.content_length != size) {
            hub_why_set(&req->why,
                        "served size %lld differs from the listed size %llu",
                        (long long)req->hdrs.content_length,
                        (unsigned long long)size);
            return HUB_E_PROTOCOL;
        }
        if (req->got != req->len) {
            hub_why_set(&req->why,
                        "body ended at %llu, before the range %llu-%llu",
                        (unsigned long long)req->stream_pos,
                        (unsigned long long)req->off,
                        (unsigned long long)(req->off + req->len - 1));
            return HUB_E_PROTOCOL;
        }
        return HUB_OK;
    }
    hub_why_set(&req->why, "unexpected HTTP %d to a range request", st);
    return HUB_E_PROTOCOL;
}

static void remember_final_url(struct hub_req *req)
{
    struct hub_file *f = req->file;
    char *copy;

    if (req->hops == 0 && req->using_cached_url)
        return;
    copy = strdup(req->url);
    if (!copy)
        return; /* next read resolves again: slower, still right */
    pthread_mutex_lock(&f->lock);
    free(f->final_url);
    f->final_url = copy;
    pthread_mutex_unlock(&f->lock);
}

static void forget_final_url(struct hub_file *f)
{
    pthread_mutex_lock(&f->lock);
    free(f->final_url);
    f->final_url = NULL;
    pthread_mutex_unlock(&f->lock);
}

static void log_attempt(struct hub_req *req, CURLcode rc)
{
    char u[512];
    if (hfm_log_get_level() < HFM_LOG_DEBUG)
        return;
    hub_url_for_log(req->url, u, sizeof(u));
    if (rc == CURLE_OK || req->took_enough)
        hfm_log(HFM_LOG_DEBUG, "GET %s%s -> %d (%llu ms)", u,
                req->kind == HUB_REQ_RANGE ? " [range]" : "",
                req->hdrs.status,
                (unsigned long long)(now_ms() - req->started_ms));
    else
        hfm_log(HFM_LOG_DEBUG, "GET %s -> %s (%llu ms)", u,
                req->curl_err[0] ? req->curl_err : curl_easy_strerror(rc),
                (unsigned long long)(now_ms() - req->started_ms));
}

static void detach(struct hub *hub, struct hub_req *req)
{
    curl_multi_remove_handle(hub->multi, req->easy);
    if (req->aprev)
        req->aprev->anext = req->anext;
    else
        hub->active = req->anext;
    if (req->anext)
        req->anext->aprev = req->aprev;
    req->aprev = req->anext = NULL;
}

/* An attempt ended: decide what comes next (see the state diagram). */
static void attempt_done(struct hub *hub, struct hub_req *req, CURLcode rc)
{
    enum hub_err err;
    int st;

    detach(hub, req);
    log_attempt(req, rc);
    req->tries++;

    if (rc == CURLE_WRITE_ERROR && req->took_enough)
        rc = CURLE_OK;
    if (rc == CURLE_WRITE_ERROR && req->overflow) {
        hub_why_set(&req->why, req->kind == HUB_REQ_API
                                   ? "answer larger than %zu bytes"
                                   : "more bytes than the %zu asked for",
                    req->kind == HUB_REQ_API ? req->max_body : req->len);
        err = req->kind == HUB_REQ_API ? HUB_E_TOO_BIG : HUB_E_PROTOCOL;
        if (err == HUB_E_PROTOCOL && req->tries < hub->max_tries) {
            schedule_retry(hub, req, backoff_ms(hub, req));
            return;
        }
        finish(hub, req, err);
        return;
    }
    if (rc != CURLE_OK) {
        const char *msg = req->curl_err[0] ? req->curl_err
                                           : curl_easy_strerror(rc);
        char u[512];
        hub_url_for_log(req->url, u, sizeof(u));
        if (curl_retryable(rc) && req->tries < hub->max_tries) {
            schedule_retry(hub, req, backoff_ms(hub, req));
            return;
        }
        hub_why_set(&req->why, "%s (after %d %s to %s)", msg, req->tries,
                    req->tries == 1 ? "try" : "tries", u);
        finish(hub, req, rc == CURLE_OUT_OF_MEMORY ? HUB_E_NOMEM
                                                   : HUB_E_NETWORK);
        return;
    }

    st = req->hdrs.status;
    if (st >= 300 && st < 400 && req->hdrs.location[0]) {
        char next[HUB_URL_MAX];
        if (req->hops >= HUB_MAX_REDIRECTS) {
            hub_why_set(&req->why, "more than %d redirects (a loop?)",
                        HUB_MAX_REDIRECTS);
            req->why.status = st;
            finish(hub, req, HUB_E_PROTOCOL);
            return;
        }
        if (!hub_url_join(req->url, req->hdrs.location, next, sizeof(next)) ||
            !hub_url_origin(next, (char[HUB_URL_MAX]){0}, HUB_URL_MAX)) {
            hub_why_set(&req->why, "unusable redirect target");
            req->why.status = st;
            finish(hub, req, HUB_E_PROTOCOL);
            return;
        }
        snprintf(req->url, sizeof(req->url), "%s", next);
        req->hops++;
        req->tries--; /* a hop is not a try */
        err = start_attempt(hub, req);
        if (err != HUB_OK)
            finish(hub, req, err);
        return;
    }
    if (st >= 200 && st < 300) {
        if (req->kind == HUB_REQ_RANGE) {
            err = check_range(req);
            if (err != HUB_OK) {
                req->why.status = st;
                if (req->tries < hub->max_tries) {
                    hfm_log(HFM_LOG_WARN, "retrying a range read: %s",
                            req->why.line);
                    schedule_retry(hub, req, backoff_ms(hub, req));
                    return;
                }
                finish(hub, req, err);
                return;
            }
            remember_final_url(req);
        }
        finish(hub, req, HUB_OK);
        return;
    }

    fill_why(req, st);
    err = hub_err_classify(st, req->hdrs.error_code[0] ? req->hdrs.error_code
                                                       : NULL,
                           req->why.message[0] ? req->why.message : NULL,
                           req->had_token, hub_url_is_hub(hub, req->url));
    if (req->kind == HUB_REQ_RANGE && !hub_url_is_hub(hub, req->url) &&
        (st == 403 || st == 410 || st == 404) && !req->re_resolved) {
        /* The signed URL expired (or the CDN lost it): resolve again. */
        hfm_log(HFM_LOG_INFO, "download URL answered %d, resolving again", st);
        forget_final_url(req->file);
        req->re_resolved = true;
        req->using_cached_url = false;
        req->hops = 0;
        req->tries--;
        snprintf(req->url, sizeof(req->url), "%s", req->file->resolve_url);
        err = start_attempt(hub, req);
        if (err != HUB_OK)
            finish(hub, req, err);
        return;
    }
    if (hub_status_retryable(st) && req->tries < hub->max_tries) {
        schedule_retry(hub, req,
                       st == 429 ? ratelimit_wait_ms(hub, req)
                                 : backoff_ms(hub, req));
        return;
    }
    if (st == 429 || st >= 500 || st == 408)
        hub_why_set(&req->why, "HTTP %d after %d %s", st, req->tries,
                    req->tries == 1 ? "try" : "tries");
    else
        hub_why_set(&req->why, "HTTP %d", st);
    finish(hub, req, err == HUB_OK ? HUB_E_PROTOCOL : err);
}

/* The file's resolver is done (either way): the reads that waited go on. */
static void release_waiters(struct hub *hub, struct hub_req *req)
{
    hub_file_release_waiters(hub, req->file);
}

static void finish(struct hub *hub, struct hub_req *req, enum hub_err err)
{
    if (req->kind == HUB_REQ_RANGE && req->resolver) {
        req->resolver = false;
        release_waiters(hub, req);
    }
    req->err = err;
    if (err != HUB_OK)
        atomic_fetch_add(&hub->st_errors, 1);
    if (req->easy) {
        curl_easy_cleanup(req->easy);
        req->easy = NULL;
    }
    curl_slist_free_all(req->headers);
    req->headers = NULL;
    req->done(req); /* invariant 4: last touch */
}

/* ---- the network thread ------------------------------------------- */

static void *engine_main(void *arg)
{
    struct hub *hub = arg;

    for (;;) {
        struct hub_req *in, *r, *next, **pp;
        uint64_t now;
        long timeout = 1000;
        int running = 0;
        CURLMsg *msg;
        int left;
        bool stopping;

        pthread_mutex_lock(&hub->lock);
        in = hub->incoming;
        hub->incoming = hub->incoming_tail = NULL;
        stopping = hub->stopping;
        pthread_mutex_unlock(&hub->lock);

        for (r = in; r; r = next) {
            next = r->next;
            r->next = NULL;
            enum hub_err err = stopping ? HUB_E_NETWORK : start_attempt(hub, r);
            if (err != HUB_OK)
                finish(hub, r, err);
        }
        now = now_ms();
        for (pp = &hub->delayed; *pp;) {
            r = *pp;
            if (stopping || r->due_ms <= now) {
                *pp = r->next;
                r->next = NULL;
                enum hub_err err =
                    stopping ? HUB_E_NETWORK : start_attempt(hub, r);
                if (err != HUB_OK) {
                    if (stopping)
                        hub_why_set(&r->why, "unmounting");
                    finish(hub, r, err);
                }
            } else {
                if ((long)(r->due_ms - now) < timeout)
                    timeout = (long)(r->due_ms - now);
                pp = &r->next;
            }
        }

        curl_multi_perform(hub->multi, &running);
        while ((msg = curl_multi_info_read(hub->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct hub_req *req = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &req);
            attempt_done(hub, req, msg->data.result);
        }
        if (stopping) {
            /* fail what is still on the wire */
            bool any = hub->active != NULL;
            while (hub->active) {
                struct hub_req *req = hub->active;
                detach(hub, req);
                hub_why_set(&req->why, "unmounting");
                finish(hub, req, HUB_E_NETWORK);
            }
            pthread_mutex_lock(&hub->lock);
            bool more = hub->incoming != NULL;
            pthread_mutex_unlock(&hub->lock);
            if (!any && !more && !hub->delayed)
                break;
            continue;
        }
        curl_multi_poll(hub->multi, NULL, 0, (int)timeout, NULL);
    }
    return NULL;
}

enum hub_err hub_req_submit(struct hub *hub, struct hub_req *req)
{
    if (hub->offline) {
        hub_why_set(&req->why, "offline (HF_HUB_OFFLINE)");
        return HUB_E_OFFLINE;
    }
    req->hub = hub;
    req->next = NULL;
    req->tries = 0;
    req->hops = 0;
    req->re_resolved = false;
    pthread_mutex_lock(&hub->lock);
    if (hub->stopping) {
        pthread_mutex_unlock(&hub->lock);
        hub_why_set(&req->why, "unmounting");
        return HUB_E_NETWORK;
    }
    if (hub->incoming_tail)
        hub->incoming_tail->next = req;
    else
        hub->incoming = req;
    hub->incoming_tail = req;
    pthread_mutex_unlock(&hub->lock);
    curl_multi_wakeup(hub->multi);
    return HUB_OK;
}

struct waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
};

static void waiter_done(struct hub_req *req)
{
    struct waiter *w = req->arg;
    pthread_mutex_lock(&w->lock);
    w->done = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

enum hub_err hub_req_run(struct hub *hub, struct hub_req *req)
{
    struct waiter w = {.done = false};
    enum hub_err err;

    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    req->done = waiter_done;
    req->arg = &w;
    err = hub_req_submit(hub, req);
    if (err == HUB_OK) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        pthread_mutex_unlock(&w.lock);
        err = req->err;
    } else {
        req->err = err;
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return err;
}

void hub_req_release(struct hub_req *req)
{
    free(req->body);
    req->body = NULL;
    req->body_len = req->body_cap = 0;
}

/* ---- struct hub --------------------------------------------------- */

enum hub_err hub_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? HUB_OK
                                                               : HUB_E_NOMEM;
}

void hub_global_cleanup(void)
{
    curl_global_cleanup();
}

enum hub_err hub_new(const struct hub_config *cfg, struct hub **out)
{
    struct hub *hub;
    const char *ep = cfg->endpoint && cfg->endpoint[0] ? cfg->endpoint
                                                         : HUB_DEFAULT_ENDPOINT;
    size_t n;

    *out = NULL;
    hub = calloc(1, sizeof(*hub));
    if (!hub)
        return HUB_E_NOMEM;
    snprintf(hub->endpoint, sizeof(hub->endpoint), "%s", ep);
    n = strlen(hub->endpoint);
    while (n > 0 && hub->endpoint[n - 1] == '/')
        hub->endpoint[--n] = '\0';
    if (!hub_url_origin(hub->endpoint, hub->origin, sizeof(hub->origin))) {
        free(hub);
        return HUB_E_PROTOCOL;
    }
    hub->offline = cfg->offline;
    hub->max_tries = cfg->max_tries > 0 ? cfg->max_tries : HUB_DEFAULT_TRIES;
    hub->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : HUB_DEFAULT_TIMEOUT_S;
    hub->max_conns = cfg->max_conns > 0 ? cfg->max_conns : HUB_DEFAULT_CONNS;
    snprintf(hub->user_agent, sizeof(hub->user_agent),
             "hfmount/%s; libcurl/%s", HFM_VERSION,
             curl_version_info(CURLVERSION_NOW)->version);
    hub->seed = (unsigned int)time(NULL) ^ (unsigned int)(uintptr_t)hub;
    pthread_mutex_init(&hub->lock, NULL);
    if (cfg->token && cfg->token[0]) {
        hub->token = strdup(cfg->token);
        if (!hub->token)
            goto out_free;
    }
    if (!proxies_copy(hub, cfg))
        goto out_free;
    hub->multi = curl_multi_init();
    if (!hub->multi)
        goto out_free;
    curl_multi_setopt(hub->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      (long)hub->max_conns);
    curl_multi_setopt(hub->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      (long)hub->max_conns * 2);
    curl_multi_setopt(hub->multi, CURLMOPT_MAXCONNECTS,
                      (long)hub->max_conns * 2);
    if (pthread_create(&hub->thread, NULL, engine_main, hub) != 0)
        goto out_free;
    hub->thread_started = true;
    *out = hub;
    return HUB_OK;

out_free:
    if (hub->multi)
        curl_multi_cleanup(hub->multi);
    free(hub->token);
    proxies_free(hub);
    pthread_mutex_destroy(&hub->lock);
    free(hub);
    return HUB_E_NOMEM;
}

void hub_shutdown(struct hub *hub)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->lock);
    hub->stopping = true;
    pthread_mutex_unlock(&hub->lock);
    curl_multi_wakeup(hub->multi);
}

void hub_free(struct hub *hub)
{
    if (!hub)
        return;
    if (hub->thread_started) {
        hub_shutdown(hub);
        pthread_join(hub->thread, NULL);
    }
    curl_multi_cleanup(hub->multi);
    if (hub->token) {
        explicit_bzero(hub->token, strlen(hub->token));
        free(hub->token);
    }
    proxies_free(hub);
    pthread_mutex_destroy(&hub->lock);
    free(hub);
}

enum hub_err hub_set_token(struct hub *hub, const char *token)
{
    char *copy = NULL;
    if (token && token[0]) {
        copy = strdup(token);
        if (!copy)
            return HUB_E_NOMEM;
    }
    pthread_mutex_lock(&hub->lock);
    if (hub->token) {
        explicit_bzero(hub->token, strlen(hub->token));
        free(hub->token);
    }
    hub->token = copy;
    pthread_mutex_unlock(&hub->lock);
    return HUB_OK;
}

bool hub_has_token(struct hub *hub)
{
    bool has;
    pthread_mutex_lock(&hub->lock);
    has = hub->token != NULL;
    pthread_mutex_unlock(&hub->lock);
    return has;
}

bool hub_is_offline(const struct hub *hub)
{
    return hub->offline;
}

const char *hub_endpoint(const struct hub *hub)
{
    return hub->endpoint;
}

void hub_get_stats(struct hub *hub, struct hub_stats *out)
{
    out->requests = atomic_load(&hub->st_requests);
    out->bytes = atomic_load(&hub->st_bytes);
    out->retries = atomic_load(&hub->st_retries);
    out->errors = atomic_load(&hub->st_errors);
}

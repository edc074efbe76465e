/*
 * fuzz_noproxy.c - libFuzzer target for hub_no_proxy_match(): the input's
 * first line is the host, the rest (newlines included) the NO_PROXY list.
 * Aborts when the answer changes between two calls, when a host matches a
 * list but not "*" (every match needs a real host), when an entry put
 * before or after the list loses a match, or when upper-casing the host
 * changes the answer (names and IPv6 hex compare in any case).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/hub_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An entry no host this target builds can match: '\x01' is not in any. */
#define NOMATCH "\x01"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    char *wide = malloc(size + 8);
    char *upper = malloc(size + 1);
    const char *host;
    const char *list;
    char *nl;
    bool m;

    if (!buf || !wide || !upper)
        goto out;
    memcpy(buf, data, size);
    buf[size] = '\0';
    host = buf;
    nl = strchr(buf, '\n');
    list = "";
    if (nl) {
        *nl = '\0';
        list = nl + 1;
    }
    /* the host must not hold the NOMATCH byte for the checks below */
    if (strchr(host, NOMATCH[0]))
        goto out;

    m = hub_no_proxy_match(list, host);
    if (m != hub_no_proxy_match(list, host))
        abort();
    if (m && !hub_no_proxy_match("*", host))
        abort();
    snprintf(wide, size + 8, NOMATCH ",%s," NOMATCH, list);
    if (m && !hub_no_proxy_match(wide, host))
        abort();
    for (size_t i = 0;; i++) {
        char c = host[i];
        upper[i] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
        if (!c)
            break;
    }
    if (m != hub_no_proxy_match(list, upper))
        abort();
out:
    free(upper);
    free(wide);
    free(buf);
    return 0;
}

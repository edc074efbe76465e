/*
 * fuzz_ratelimit.c - libFuzzer target for hub_parse_ratelimit() and
 * hub_parse_retry_after(): the input is a header value. Aborts when a
 * parsed count or delay is below its "absent" value.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/hub_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long r = 7, t = 7, secs = 7;
    char *s = malloc(size + 1);

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (hub_parse_ratelimit(s, &r, &t)) {
        if (r < -1 || t < -1)
            abort();
    } else if (r != -1 || t != -1) {
        abort();
    }
    if (hub_parse_retry_after(s, &secs) ? secs < 0 : secs != 0)
        abort();
    free(s);
    return 0;
}

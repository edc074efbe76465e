/*
 * fuzz_link.c - libFuzzer target for hub_parse_link_next(): the input is a
 * Link header value. Aborts when a returned URI does not fit, holds a space
 * or control byte, or differs between a large and a small output buffer.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/hub_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BIG   4096
#define SMALL 16

static void check_uri(const char *out, size_t cap)
{
    size_t n = strnlen(out, cap);

    if (n == 0 || n >= cap)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)out[i];
        if (c <= 0x20 || c == 0x7f)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char big[BIG], small[SMALL];
    char *s = malloc(size + 1);
    bool ok_big, ok_small;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    ok_big = hub_parse_link_next(s, big, sizeof(big));
    ok_small = hub_parse_link_next(s, small, sizeof(small));
    if (ok_big)
        check_uri(big, sizeof(big));
    else if (big[0] != '\0')
        abort();
    if (ok_small) {
        check_uri(small, sizeof(small));
        if (!ok_big || strcmp(big, small) != 0)
            abort();
    }
    free(s);
    return 0;
}

/*
 * fuzz_content_range.c - libFuzzer target for hub_parse_content_range():
 * the input is a Content-Range value. Aborts when an accepted range breaks
 * first <= last < total, or a refused one leaves outputs set.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/hub_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t first = 1, last = 1, total = 1;
    char *s = malloc(size + 1);
    enum hub_err err;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    err = hub_parse_content_range(s, &first, &last, &total);
    if (err == HUB_OK) {
        if (first > last || (total != UINT64_MAX && last >= total))
            abort();
    } else if (err != HUB_E_PROTOCOL || first || last || total) {
        abort();
    }
    free(s);
    return 0;
}

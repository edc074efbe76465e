/*
 * fuzz_size.c - libFuzzer target for hub_parse_size(): the input is a size
 * option value ("20G", "1.5G", "10GiB"). Aborts when an accepted size is 0
 * or a refused one leaves the output set.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/hub_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    uint64_t v = 7;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    if (hub_parse_size(s, &v) ? v == 0 : v != 0)
        abort();
    free(s);
    return 0;
}

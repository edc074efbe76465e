/*
 * test_sha256.c - SHA-256 against FIPS 180-4 vectors and the portable
 * path, over lengths and split points that cross block boundaries.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/sha256.h"
#include "check.h"

static void hex_of(const void *data, size_t len, char out[65])
{
    struct sha256 c;
    uint8_t d[32];
    sha256_init(&c);
    sha256_update(&c, data, len);
    sha256_final(&c, d);
    sha256_hex(d, out);
}

int main(void)
{
    char h[65];
    static const char *million_a =
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

    hex_of("", 0, h);
    CHECK(strcmp(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
    hex_of("abc", 3, h);
    CHECK(strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
    hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, h);
    CHECK(strcmp(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
    {
        char *a = malloc(1000000);
        memset(a, 'a', 1000000);
        hex_of(a, 1000000, h);
        CHECK(strcmp(h, million_a) == 0);
        /* the same bytes fed in odd pieces */
        struct sha256 c;
        uint8_t d[32];
        size_t off = 0, step = 1;
        sha256_init(&c);
        while (off < 1000000) {
            size_t n = step < 1000000 - off ? step : 1000000 - off;
            sha256_update(&c, a + off, n);
            off += n;
            step = step * 3 + 1;
            if (step > 70000)
                step = 7;
        }
        sha256_final(&c, d);
        sha256_hex(d, h);
        CHECK(strcmp(h, million_a) == 0);
        free(a);
    }
    return check_done("test_sha256");
}

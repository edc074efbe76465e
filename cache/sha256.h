/*
 * sha256.h - SHA-256 for the whole-file check of LFS files (their oid is
 * the sha256 of the content). No dependency beyond the compiler: x86 SHA
 * extensions when the CPU has them, portable C otherwise.
 *
 * Ownership: struct sha256 is caller storage. Threads: one context per
 * caller; the functions are thread-safe.
 */
#ifndef HFM_CACHE_SHA256_H
#define HFM_CACHE_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256 {
    uint32_t s[8];
    uint64_t len;
    uint8_t buf[64];
    size_t nbuf;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
void sha256_final(struct sha256 *c, uint8_t out[32]);
void sha256_hex(const uint8_t digest[32], char out[65]);

#endif /* HFM_CACHE_SHA256_H */

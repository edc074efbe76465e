/*
 * cache_format.h - the chunk file on disk: the one module that reads and
 * writes it (the store, the readers and `hfmount cache ls` all go through
 * here).
 *
 * CACHE_DIR/chunks/KK/KEY.IDX holds chunk IDX (the file's bytes from
 * IDX * CACHE_CHUNK_SIZE, len bytes) of the file whose content key is KEY
 * (KK: its first two characters), or any subset of that chunk's blocks
 * (CACHE_BLOCK_SIZE bytes each, the last one shorter):
 *
 *   0                                  header, zero-padded
 *   CACHE_FMT_DATA_OFF + i * BLOCK     block i, if bit i of present is set;
 *                                      a hole (sparse) if not
 *
 * The header names the chunk (magic, key, idx, len, block size), says
 * which blocks are present, and carries one XXH3-64 per block and one of
 * itself. A block is served only after its own hash matched, so a warm
 * small read reads and checks only the blocks it touches.
 *
 * Crash safety: a new file is written under a temporary name and renamed.
 * Blocks added to an existing file are written first, then the header
 * that lists them, under an exclusive flock on the file (processes
 * sharing the directory add blocks to one file). A crash between leaves
 * the blocks unlisted (never read); a torn header fails its hash and the
 * file is dropped. A reader that sees a header mid-rewrite (its hash
 * fails) looks again under a shared flock before it calls the file bad.
 *
 * Ownership: paths and buffers are the caller's. Threads: every call is
 * thread-safe (no state). Errors: 0 / -errno; -EBADMSG for a file that
 * must not be used (with *why, a static string); -ENOENT for no file.
 */
#ifndef HFM_CACHE_CACHE_FORMAT_H
#define HFM_CACHE_CACHE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h" /* CACHE_CHUNK_SIZE, CACHE_KEY_MAX */

#define CACHE_BLOCK_SIZE (64u * 1024)
#define CACHE_CHUNK_BLOCKS (CACHE_CHUNK_SIZE / CACHE_BLOCK_SIZE) /* <= 64 */
#define CACHE_FMT_DATA_OFF 4096u /* header space: block aligned data */
#define CACHE_FMT_MAGIC "HFMCHNK2"
#define CACHE_FMT_MAGIC_V1 "HFMCHNK1" /* whole-chunk files of 0.x */

struct cache_io; /* cache_internal.h */

/* What a chunk file holds, from its header alone. */
struct cache_fmt_info {
    char key[CACHE_KEY_MAX];
    uint64_t idx;
    uint64_t len;     /* the chunk's length */
    uint64_t present; /* blocks stored */
    uint64_t bytes;   /* what the file takes: cache_fmt_bytes() */
};

int cache_fmt_path(const char *dir, const char *key, uint64_t idx, char *out,
                   size_t cap) HFM_MUST_CHECK;
/* "KEY.IDX" -> key, idx; false for any other name (temporary files too). */
bool cache_fmt_parse_name(const char *name, char key[CACHE_KEY_MAX],
                          uint64_t *idx);
/* Blocks of a chunk of len bytes: all of them; those [off, off+n) touches
 * (offsets within the chunk). */
uint64_t cache_fmt_all(uint64_t len);
uint64_t cache_fmt_blocks(uint64_t len, uint64_t off, uint64_t n);
/* Bytes a file takes that holds blocks present of a chunk of len bytes. */
uint64_t cache_fmt_bytes(uint64_t len, uint64_t present);
struct stat;
uint64_t cache_fmt_file_id(const struct stat *st);
/* Byte offset and length of block b of a chunk of len bytes. */
uint64_t cache_fmt_block_off(uint64_t b);
size_t cache_fmt_block_len(uint64_t len, uint64_t b);

/* Reads into buf (the chunk's bytes, at their offsets) the blocks of want
 * that the file holds, each checked against its hash. *got: the blocks
 * read; *present: the blocks the file holds. -ENOENT: no file (or a 0.x
 * file, which is removed). -EBADMSG: a bad header, a header naming
 * another chunk, a short or failing block (the caller removes the file). */
int cache_fmt_load(const struct cache_io *io, const char *path,
                   const char *key, uint64_t idx, uint64_t len, uint64_t want,
                   char *buf, uint64_t *got, uint64_t *present,
                   uint64_t *file_id, const char **why) HFM_MUST_CHECK;
/* *file_id (cache_fmt_load): which file was read (device and inode), so
 * that a bad one is removed, not a good one stored under its name since. */

/* Stores the blocks add of buf. *grew: bytes the file grew by (what the
 * store's count must add); *created: a new file (one more chunk file);
 * *holds: what the file takes now, cache_fmt_bytes() of every block it
 * holds, whoever stored them (what the store's index records). */
int cache_fmt_store(const struct cache_io *io, const char *path,
                    const char *key, uint64_t idx, uint64_t len, uint64_t add,
                    const char *buf, int64_t *grew, bool *created,
                    uint64_t *holds) HFM_MUST_CHECK;
/* What a file the store counts takes on disk when its header cannot say
 * (the recount's measure): its allocated bytes or its size, the less. */
uint64_t cache_fmt_disk_bytes(const struct stat *st);

/* One file met by cache_fmt_walk(): a chunk file's name (key, idx) or a
 * temporary one (tmp: a write a crash cut short, or one in progress). */
struct cache_fmt_entry {
    const char *path;
    char key[CACHE_KEY_MAX];
    uint64_t idx;
    bool tmp;
};

/* Calls fn for each chunk file and temporary file under dir/chunks/KK/
 * (other names are skipped) until fn returns false. 0, or -errno when
 * dir/chunks cannot be opened (-ENOENT: nothing stored yet). */
int cache_fmt_walk(const char *dir,
                   bool (*fn)(const struct cache_fmt_entry *e, void *arg),
                   void *arg);

/* The header of a chunk file (cache ls, scans): 0, -ENOENT, -EBADMSG. */
int cache_fmt_inspect(const char *path,
                      struct cache_fmt_info *out) HFM_MUST_CHECK;

#endif /* HFM_CACHE_CACHE_FORMAT_H */

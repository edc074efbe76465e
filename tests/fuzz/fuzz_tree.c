/*
 * fuzz_tree.c - libFuzzer target for hub_parse_tree_page() and
 * hub_tree_finish(): the input is one tree page, parsed twice into the same
 * tree (two pages) at the root and in a subdirectory. Aborts when an
 * accepted entry breaks what fs/ relies on: names pass hub_name_ok(),
 * sorted and unique after finish, sizes in range, hex ids lower case, and a
 * failed parse leaves the tree empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/hub_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool lower_hex(const char *s, size_t want1, size_t want2)
{
    size_t n = strlen(s);

    if (n != want1 && n != want2)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void check_line(const struct hub_why *why)
{
    size_t n = strnlen(why->line, sizeof(why->line));

    if (n == sizeof(why->line))
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)why->line[i];
        if (c < 0x20 || c == 0x7f)
            abort();
    }
}

static void check_tree(const struct hub_tree *t, bool finished)
{
    if (t->count > HUB_TREE_MAX_ENTRIES || t->count > t->cap)
        abort();
    for (size_t i = 0; i < t->count; i++) {
        const struct hub_tree_entry *e = &t->entries[i];
        if (!hub_name_ok(e->name, strlen(e->name)))
            abort();
        if (e->size > HUB_FILE_SIZE_MAX || (e->is_dir && e->size != 0))
            abort();
        if (e->oid[0] && !lower_hex(e->oid, 40, 64))
            abort();
        if (e->sha256[0] && !lower_hex(e->sha256, 64, 64))
            abort();
        if (finished && i > 0 && strcmp(t->entries[i - 1].name, e->name) >= 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const dirs[] = {"", "nested/a"};

    for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
        struct hub_tree t;
        struct hub_why why;
        enum hub_err err;
        size_t before;

        hub_tree_init(&t);
        hub_why_clear(&why);
        err = hub_parse_tree_page((const char *)data, size, dirs[d], &t, &why);
        if (err == HUB_OK)
            err = hub_parse_tree_page((const char *)data, size, dirs[d], &t,
                                      &why);
        check_line(&why);
        if (err != HUB_OK) {
            if (t.count || t.entries || t.skipped)
                abort();
            continue;
        }
        check_tree(&t, false);
        before = t.count + t.skipped;
        hub_tree_finish(&t);
        check_tree(&t, true);
        /* finish moves entries to skipped, never loses or invents one */
        if (t.count + t.skipped != before)
            abort();
        hub_tree_release(&t);
        if (t.count || t.entries)
            abort();
    }
    return 0;
}

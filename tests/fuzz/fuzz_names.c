/*
 * fuzz_names.c - libFuzzer target for hub_name_ok(), hub_repo_part_ok(),
 * hub_rev_ok(), hub_parse_repo_spec() and hub_url_escape(). Aborts when an
 * accepted name or spec holds what its contract forbids, or an escape is
 * not pure unreserved bytes and %XX.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/hub_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static void check_name(const char *s, size_t n)
{
    if (n == 0 || n > HUB_NAME_MAX || memchr(s, '/', n))
        abort();
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        abort();
    for (size_t i = 0; i < n; i++)
        if (ctl((unsigned char)s[i]))
            abort();
}

static void check_spec(const struct hub_repo_spec *spec)
{
    const char *slash = strchr(spec->id, '/');
    size_t rl = strlen(spec->rev);

    if (!slash || strchr(slash + 1, '/'))
        abort();
    if (!hub_repo_part_ok(spec->id, (size_t)(slash - spec->id)) ||
        !hub_repo_part_ok(slash + 1, strlen(slash + 1)))
        abort();
    if (rl && !hub_rev_ok(spec->rev, rl))
        abort();
    if (spec->type != HUB_REPO_MODEL && spec->type != HUB_REPO_DATASET &&
        spec->type != HUB_REPO_SPACE)
        abort();
}

static void check_escape(const char *s, bool keep_slash)
{
    size_t cap = strlen(s) * 3 + 1;
    char *out = malloc(cap);
    char tiny[4];

    if (!out)
        return;
    if (!hub_url_escape(s, keep_slash, out, cap))
        abort();
    for (const char *p = out; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool unres = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                     c == '_' || c == '~';
        if (c == '%') {
            if (!p[1] || !p[2])
                abort();
            p += 2;
        } else if (!unres && !(keep_slash && c == '/')) {
            abort();
        }
    }
    if (hub_url_escape(s, keep_slash, tiny, sizeof(tiny)) &&
        strlen(tiny) >= sizeof(tiny))
        abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *raw = (const char *)data;
    struct hub_repo_spec spec;
    char *s;

    if (hub_name_ok(raw, size))
        check_name(raw, size);
    if (hub_repo_part_ok(raw, size) && (size > 96 || memchr(raw, '/', size)))
        abort();
    if (hub_rev_ok(raw, size) && size >= HUB_REV_MAX)
        abort();
    if (hub_parse_repo_spec(raw, size, &spec) == HUB_OK)
        check_spec(&spec);
    else if (spec.id[0] || spec.rev[0])
        abort();

    s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    check_escape(s, false);
    check_escape(s, true);
    free(s);
    return 0;
}
